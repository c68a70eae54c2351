//! `beatstream dev`: the whole node on a laptop with nothing configured.
//!
//! Starts anvil (from the npm-pinned Foundry toolchain, one-second blocks) unless `--rpc-url` is given, deploys the
//! contracts with the real deploy script, takes a fresh database (`DATABASE_URL`, else a local server, else a private
//! throwaway cluster), runs indexer, relay, keeper, API and studio in this process, seeds `demo.beatstream.eth` with
//! three tracks of generated music (uploaded through the studio with a real sign-in, published with their roots) and a
//! funded listener, prints where to look, and with `--listeners N` runs N simulated players streaming real signed
//! vouchers and fetching, verifying and decrypting the chunks the relay's acks release. Ctrl-C stops everything it started and removes the database and chain it created.

use std::time::Duration;

use alloy::signers::local::PrivateKeySigner;
use beatstream_devkit::{Anvil, TestDb, deploy_to};
use eyre::WrapErr;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::{cli::DevArgs, tasks::Supervisor};

mod demo;
mod totals;
mod web;

/// The well-known keys of the default anvil/hardhat dev accounts: 0 deploys and funds, 1 is the demo artist, 2 the
/// demo listener, 9 the keeper.
const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];
/// How long the services get to stop after Ctrl-C before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs the demo until `shutdown`.
pub(crate) async fn run(args: DevArgs, shutdown: CancellationToken) -> eyre::Result<()> {
    // ----- Chain -----
    let anvil = match &args.rpc_url {
        Some(_) => None,
        None => Some(start_anvil().wrap_err("starting anvil (run `make setup` first)")?),
    };
    let rpc = match (&args.rpc_url, &anvil) {
        (Some(url), _) => url.clone(),
        (None, Some(anvil)) => anvil.endpoint_url(),
        (None, None) => unreachable!("anvil started above"),
    };
    let keys: Vec<PrivateKeySigner> =
        DEV_KEYS.iter().map(|k| k.parse().expect("valid dev key")).collect();
    info!(target: "beatstream::dev", %rpc, "deploying the contracts");
    let deployment = deploy_to(
        rpc.as_str(),
        DEV_KEYS[0],
        &format!("dev-{}", std::process::id()),
        &[("BEATSTREAM_WITHDRAWAL_DELAY", "300")],
    )
    .await
    .wrap_err("deploying the contracts (run `make contracts` first)")?;
    let deployment_file = tempfile::NamedTempFile::new()?;
    std::fs::write(deployment_file.path(), serde_json::to_string_pretty(&deployment)?)?;

    // ----- Database -----
    let db = TestDb::new().await.wrap_err("getting a Postgres database")?;
    let database_url = db.url().to_owned();

    // ----- Services -----
    let path = deployment_file.path().to_owned();
    let indexer = beatstream_indexer::Config {
        database: beatstream_primitives::db::DatabaseArgs::new(database_url.clone()),
        rpc: rpc.clone().into(),
        options: beatstream_indexer::Options {
            poll_interval_ms: 250,
            ..beatstream_indexer::Options::new(path.clone())
        },
    };
    let mut relay = beatstream_stream_relay::Config::new(database_url.clone(), rpc.clone());
    relay.options.listen = args.relay_listen;
    relay.deployment = Some(path.clone());
    relay.options.relay_id = Some("dev".into());
    // A fresh audio key per run (the database is fresh too): it seals the demo tracks' secrets in the studio and
    // opens them in the relay.
    let audio_key = beatstream_primitives::audio_key::AudioKeyArgs {
        audio_key_file: None,
        audio_key: Some(alloy::hex::encode(
            alloy::signers::local::PrivateKeySigner::random().to_bytes(),
        )),
    };
    relay.audio_key = audio_key.clone();
    let mut keeper = beatstream_keeper::Options::default();
    keeper.signer.private_key = Some(DEV_KEYS[3].into());
    keeper.confirmations = 0;
    keeper.payee_threshold = 10_000; // settle every 0.01 USDC a payee earns: money visibly moves
    keeper.max_interval_secs = 15;
    let keeper = beatstream_keeper::Config {
        database: beatstream_primitives::db::DatabaseArgs::new(database_url.clone()),
        rpc: rpc.clone().into(),
        deployment: path.clone(),
        options: keeper,
    };
    let api = beatstream_graphql_api::Config {
        database: beatstream_primitives::db::DatabaseArgs::new(database_url.clone()),
        rpc: Default::default(),
        deployment: path.clone(),
        chain_id: None,
        options: beatstream_graphql_api::Options { listen: args.api_listen, ..Default::default() },
    };

    let mut tasks = Supervisor::new(shutdown).with_grace(SHUTDOWN_GRACE);
    let relay_server = beatstream_stream_relay::Server::bind(relay, tasks.token())
        .await
        .wrap_err_with(|| format!("binding the relay to {}", args.relay_listen))?;
    // The demo's audio lives as long as its database: a directory removed when `dev` stops.
    let audio_dir = tempfile::tempdir().wrap_err("creating the demo's audio directory")?;
    let studio = beatstream_studio::Studio::connect(beatstream_studio::Config {
        database: beatstream_primitives::db::DatabaseArgs::new(database_url.clone()),
        rpc: rpc.clone().into(),
        deployment: path.clone(),
        audio_key: audio_key.clone(),
        options: beatstream_studio::Options {
            domain: args.api_listen.to_string(),
            storage_url: audio_dir.path().to_string_lossy().into_owned(),
            ..Default::default()
        },
    })
    .await
    .wrap_err("starting the studio")?;
    let api_server = beatstream_graphql_api::Server::bind(api, tasks.token())
        .await
        .wrap_err_with(|| format!("binding the API to {}", args.api_listen))?
        .with_routes(beatstream_studio::router(studio))
        .with_routes(web::routes(
            &deployment,
            &rpc,
            &format!("ws://{}/ws/stream", args.relay_listen).parse()?,
            beatstream_primitives::rpc::client(&rpc.clone().into())?,
        )?);
    tasks.spawn_critical("indexer", beatstream_indexer::run(indexer, tasks.token()));
    tasks.spawn_critical("relay", relay_server.serve());
    tasks.spawn_critical("keeper", beatstream_keeper::run(keeper, tasks.token()));
    tasks.spawn_critical("api", api_server.serve());
    let demo = demo::Demo::new(&rpc, &deployment, &keys)?;
    tasks.spawn_critical("demo", demo.run(args, rpc, database_url, tasks.token()));

    let stopped = tasks.wait().await;
    println!();
    info!(target: "beatstream::dev", "stopped");
    // The chain and database this run created go only once every service has let go of them.
    drop(anvil);
    drop(db);
    drop(deployment_file);
    drop(audio_dir);
    Ok(stopped?)
}

/// Anvil with one-second blocks, on 8545 when it is free.
fn start_anvil() -> eyre::Result<Anvil> {
    let preferred = std::net::TcpListener::bind("127.0.0.1:8545").is_ok();
    Ok(Anvil::spawn_with(|b| {
        let b = b.block_time(1u64);
        if preferred { b.port(8545u16) } else { b }
    })?)
}
