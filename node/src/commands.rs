//! What each subcommand does; the work itself lives in the library crates.

use eyre::{WrapErr, bail};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{
    cli::{Command, MigrateArgs, NodeArgs},
    tasks::Supervisor,
};

/// Runs one subcommand to completion.
pub(crate) async fn run(command: Command, shutdown: CancellationToken) -> eyre::Result<()> {
    // Before any service makes its metrics registry: each exports `beatstream_build_info` with this commit.
    beatstream_primitives::metrics::set_git_sha(env!("BUILD_GIT_SHA"));
    match command {
        Command::Migrate(args) => migrate(args).await,
        Command::Node(args) => node(args, shutdown).await,
        Command::Indexer(config) => Ok(beatstream_indexer::run(config, shutdown).await?),
        Command::Relay(config) => Ok(beatstream_stream_relay::run(config, shutdown).await?),
        Command::Keeper(config) => Ok(beatstream_keeper::run(config, shutdown).await?),
        Command::Api(config) => Ok(beatstream_graphql_api::run(config, shutdown).await?),
        Command::Simulate(config) => Ok(beatstream_sim::run(config, shutdown).await?),
        Command::Dev(args) => crate::dev::run(args, shutdown).await,
    }
}

async fn migrate(args: MigrateArgs) -> eyre::Result<()> {
    let Some(url) = args.database_url.or_else(|| std::env::var("DATABASE_URL").ok()) else {
        bail!("no database given: pass --database-url or set BEATSTREAM_DATABASE_URL");
    };
    let pool = beatstream_primitives::db::connect(&url).await.wrap_err("connecting to Postgres")?;
    let applied = beatstream_primitives::db::migrate(&pool).await?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for m in &applied {
        println!("applied {} {}", m.version, m.description);
    }
    info!(target: "beatstream::migrate", applied = applied.len(), "migrations done");
    Ok(())
}

/// Runs all services together (each can be switched off) as critical tasks: the first to fail, panic or exit
/// stops the others and the node, with its name and cause.
async fn node(args: NodeArgs, shutdown: CancellationToken) -> eyre::Result<()> {
    let (database, rpc) = (args.database, args.rpc);
    // Checked once here, so a bad URL or CA file stops the node before any service starts.
    rpc.validate()?;
    let deployment = args.indexer.deployment.clone();
    let indexer = beatstream_indexer::Config {
        database: database.clone(),
        rpc: rpc.clone(),
        options: args.indexer,
    };
    let relay = beatstream_stream_relay::Config {
        database: database.clone(),
        rpc: rpc.clone(),
        chain_id: None,
        vault: None,
        deployment: Some(deployment.clone()),
        audio_key: args.audio_key.clone(),
        options: args.relay,
    };
    let has_key = args.keeper.signer.choice().is_set();
    let run_keeper = !args.no_keeper && has_key;
    if !args.no_keeper && !has_key {
        tracing::warn!(target: "beatstream::node", "no keeper key (BEATSTREAM_KEEPER_PRIVATE_KEY, --keeper-keystore or --keeper-aws-kms-key-id): not settling vouchers");
    }
    let keeper = beatstream_keeper::Config {
        database: database.clone(),
        rpc: rpc.clone(),
        deployment: deployment.clone(),
        options: args.keeper,
    };
    let studio = (!args.no_studio).then(|| beatstream_studio::Config {
        database: database.clone(),
        rpc: rpc.clone(),
        deployment: deployment.clone(),
        audio_key: args.audio_key.clone(),
        options: args.studio,
    });
    let api = beatstream_graphql_api::Config {
        database,
        rpc,
        deployment,
        chain_id: None,
        options: args.api,
    };
    let mut tasks = Supervisor::new(shutdown);
    if !args.no_indexer {
        tasks.spawn_critical("indexer", beatstream_indexer::run(indexer, tasks.token()));
    }
    if !args.no_relay {
        tasks.spawn_critical("relay", beatstream_stream_relay::run(relay, tasks.token()));
    }
    if run_keeper {
        tasks.spawn_critical("keeper", beatstream_keeper::run(keeper, tasks.token()));
    }
    if !args.no_api {
        tasks.spawn_critical("api", api_with_studio(api, studio, tasks.token()));
    }
    Ok(tasks.wait().await?)
}

/// The API, with the studio's routes on its address unless it is switched off.
async fn api_with_studio(
    api: beatstream_graphql_api::Config,
    studio: Option<beatstream_studio::Config>,
    shutdown: CancellationToken,
) -> eyre::Result<()> {
    let mut server = beatstream_graphql_api::Server::bind(api, shutdown).await?;
    if let Some(studio) = studio {
        let studio =
            beatstream_studio::Studio::connect(studio).await.wrap_err("starting the studio")?;
        server = server.with_routes(beatstream_studio::router(studio));
    }
    Ok(server.serve().await?)
}
