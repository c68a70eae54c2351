//! What each subcommand does; the work itself lives in the library crates.

use std::future::Future;

use eyre::{WrapErr, bail};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::cli::{Command, MigrateArgs, NodeArgs};

/// Runs one subcommand to completion.
pub(crate) async fn run(command: Command, shutdown: CancellationToken) -> eyre::Result<()> {
    match command {
        Command::Migrate(args) => migrate(args).await,
        Command::Node(args) => node(args, shutdown).await,
        Command::Indexer(config) => Ok(beatstream_indexer::run(config, shutdown).await?),
        Command::Relay(config) => Ok(beatstream_stream_relay::run(config, shutdown).await?),
        Command::Keeper(config) => Ok(beatstream_keeper::run(config, shutdown).await?),
        Command::Api(config) => Ok(beatstream_graphql_api::run(config, shutdown).await?),
        Command::Simulate(config) => Ok(beatstream_stream_relay::sim::run(config, shutdown).await?),
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

/// Runs all services together (each can be switched off); the first to fail stops the others.
async fn node(args: NodeArgs, shutdown: CancellationToken) -> eyre::Result<()> {
    let (database_url, rpc_url) = (args.database_url, args.rpc_url);
    let deployment = args.indexer.deployment.clone();
    let indexer = beatstream_indexer::Config {
        database_url: database_url.clone(),
        rpc_url: rpc_url.clone(),
        options: args.indexer,
    };
    let mut relay = beatstream_stream_relay::Config::new(database_url.clone(), rpc_url.clone());
    relay.listen = args.relay_listen;
    relay.yellow = args.yellow.clone();
    relay.deployment = Some(deployment.clone());
    let has_key = args.keeper_signer.private_key.is_some() || args.keeper_signer.keystore.is_some();
    let run_keeper = !args.no_keeper && has_key;
    if !args.no_keeper && !has_key {
        tracing::warn!(target: "beatstream::node", "no keeper key (BEATSTREAM_KEEPER_PRIVATE_KEY): not settling vouchers");
    }
    let mut keeper_options = beatstream_keeper::Options::new(deployment.clone());
    keeper_options.signer = args.keeper_signer;
    let keeper = beatstream_keeper::Config {
        database_url: database_url.clone(),
        rpc_url: rpc_url.clone(),
        options: keeper_options,
    };
    let mut api_options = beatstream_graphql_api::Options::new(deployment);
    api_options.listen = args.api_listen;
    let api = beatstream_graphql_api::Config {
        database_url,
        rpc_url: Some(rpc_url),
        options: api_options,
    };
    let (run_indexer, run_relay, run_api) = (!args.no_indexer, !args.no_relay, !args.no_api);
    let results = tokio::join!(
        service(
            "indexer",
            optional(run_indexer, beatstream_indexer::run(indexer, shutdown.clone())),
            &shutdown
        ),
        service(
            "relay",
            optional(run_relay, beatstream_stream_relay::run(relay, shutdown.clone())),
            &shutdown
        ),
        service(
            "keeper",
            optional(run_keeper, beatstream_keeper::run(keeper, shutdown.clone())),
            &shutdown
        ),
        service(
            "api",
            optional(run_api, beatstream_graphql_api::run(api, shutdown.clone())),
            &shutdown
        ),
    );
    let mut errors =
        [results.0, results.1, results.2, results.3].into_iter().filter_map(Result::err);
    let Some(first) = errors.next() else { return Ok(()) };
    for other in errors {
        error!(target: "beatstream::node", error = %format_args!("{other:#}"), "service failed");
    }
    Err(first)
}

/// Runs `service` when `on`, else returns at once.
async fn optional<E>(on: bool, service: impl Future<Output = Result<(), E>>) -> Result<(), E> {
    if on { service.await } else { Ok(()) }
}

/// Awaits one service; on failure cancels `shutdown` so the others stop too.
async fn service<E>(
    name: &'static str,
    fut: impl Future<Output = Result<(), E>>,
    shutdown: &CancellationToken,
) -> eyre::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let result = fut.await.wrap_err_with(|| format!("{name} stopped"));
    if result.is_err() {
        shutdown.cancel();
    }
    result
}
