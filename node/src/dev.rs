//! `beatstream dev`: the whole node on a laptop with nothing configured.
//!
//! Starts anvil (from the npm-pinned Foundry toolchain, one-second blocks) unless `--rpc-url` is given, deploys the
//! contracts with the real deploy script, takes a fresh database (`DATABASE_URL`, else a local server, else a private
//! throwaway cluster), runs indexer, relay, keeper and API in this process, seeds `demo.beatstream.eth` with three
//! tracks and a funded listener, prints where to look, and with `--listeners N` runs N simulated players streaming
//! real signed vouchers. Ctrl-C stops everything it started and removes the database and chain it created.

use std::{io::IsTerminal, time::Duration};

use alloy::{
    network::EthereumWallet,
    primitives::{U256, keccak256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use beatstream_devkit::{Anvil, TestDb, deploy_to};
use beatstream_primitives::{
    Deployment, VoucherDomain,
    contracts::{
        BeatStreamRegistry::{self, TextRecord, TrackInput},
        BeatStreamVault, MockUSDC,
    },
    units::format_usdc,
};
use beatstream_sim::keys::Identity;
use eyre::WrapErr;
use tokio_util::sync::CancellationToken;
use tracing::info;
use url::Url;

use crate::{cli::DevArgs, tasks::Supervisor};

/// The well-known keys of the default anvil/hardhat dev accounts: 0 deploys and funds, 1 is the demo artist, 2 the
/// demo listener, 9 the keeper.
const DEV_KEYS: [&str; 4] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];
const USDC: u64 = 1_000_000;
/// The demo artist's rate: 0.001 USDC a second.
const DEMO_RATE: u64 = 1_000;
/// Paid seconds per play of a simulated listener before it stops and plays again.
const BEATS_PER_PLAY: u64 = 60;
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
        database_url: database_url.clone(),
        rpc_url: rpc.clone(),
        options: beatstream_indexer::Options {
            poll_interval_ms: 250,
            ..beatstream_indexer::Options::new(path.clone())
        },
    };
    let mut relay = beatstream_stream_relay::Config::new(database_url.clone(), rpc.clone());
    relay.listen = args.relay_listen;
    relay.deployment = Some(path.clone());
    relay.relay_id = Some("dev".into());
    let mut keeper = beatstream_keeper::Options::new(path.clone());
    keeper.signer.private_key = Some(DEV_KEYS[3].into());
    keeper.confirmations = 0;
    keeper.payee_threshold = 10_000; // settle every 0.01 USDC a payee earns: money visibly moves
    keeper.max_interval_secs = 15;
    let keeper = beatstream_keeper::Config {
        database_url: database_url.clone(),
        rpc_url: rpc.clone(),
        options: keeper,
    };
    let mut api = beatstream_graphql_api::Options::new(path.clone());
    api.listen = args.api_listen;
    let api = beatstream_graphql_api::Config {
        database_url: database_url.clone(),
        rpc_url: None,
        options: api,
    };

    let mut tasks = Supervisor::new(shutdown).with_grace(SHUTDOWN_GRACE);
    let relay_server = beatstream_stream_relay::Server::bind(relay, tasks.token())
        .await
        .wrap_err_with(|| format!("binding the relay to {}", args.relay_listen))?;
    let api_server = beatstream_graphql_api::Server::bind(api, tasks.token())
        .await
        .wrap_err_with(|| format!("binding the API to {}", args.api_listen))?;
    tasks.spawn_critical("indexer", beatstream_indexer::run(indexer, tasks.token()));
    tasks.spawn_critical("relay", relay_server.serve());
    tasks.spawn_critical("keeper", beatstream_keeper::run(keeper, tasks.token()));
    tasks.spawn_critical("api", api_server.serve());
    let demo = Demo::new(&rpc, &deployment, &keys);
    tasks.spawn_critical("demo", demo.run(args, rpc, database_url, tasks.token()));

    let stopped = tasks.wait().await;
    println!();
    info!(target: "beatstream::dev", "stopped");
    // The chain and database this run created go only once every service has let go of them.
    drop(anvil);
    drop(db);
    drop(deployment_file);
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

async fn wait_indexed(database_url: &str, rpc: &Url) -> eyre::Result<()> {
    let pool = sqlx::PgPool::connect(database_url).await?;
    let provider = ProviderBuilder::new().connect(rpc.as_str()).await?;
    let head = provider.get_block_number().await? as i64;
    for _ in 0..600 {
        let indexed: Option<i64> = sqlx::query_scalar("SELECT max(block_number) FROM chain_cursor")
            .fetch_one(&pool)
            .await?;
        if indexed.unwrap_or(-1) >= head {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eyre::bail!("the indexer did not reach block {head} within a minute")
}

/// Prints live totals every two seconds until `shutdown`.
async fn totals(database_url: &str, shutdown: CancellationToken) -> eyre::Result<()> {
    let pool = beatstream_primitives::db::connect(database_url).await?;
    let tty = std::io::stdout().is_terminal();
    let mut last: Option<(U256, std::time::Instant)> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let row: Result<(i64, String, String, i64), _> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sessions WHERE ended_at IS NULL),
                    (SELECT coalesce(sum(cumulative), 0)::text FROM vouchers),
                    (SELECT coalesce(sum(earned_total + fees_total), 0)::text FROM payee_earnings),
                    (SELECT count(*) FROM keeper_batches WHERE status = 'confirmed')",
        )
        .fetch_one(&pool)
        .await;
        let Ok((live, vouched, settled, txs)) = row else { continue };
        let vouched: U256 = vouched.parse().unwrap_or_default();
        let settled: U256 = settled.parse().unwrap_or_default();
        let now = std::time::Instant::now();
        let rate = last.map(|(v, t)| {
            let secs = now.duration_since(t).as_secs_f64().max(0.001);
            (vouched.saturating_sub(v).to::<u128>() as f64 / 1e6) / secs
        });
        last = Some((vouched, now));
        let line = format!(
            "live sessions {live:>4} | streamed {} USDC ({:.4} USDC/s) | settled on-chain {} USDC in {txs} txs",
            format_usdc(vouched),
            rate.unwrap_or_default(),
            format_usdc(settled),
        );
        if tty {
            print!("\r{line}   ");
            use std::io::Write;
            let _ = std::io::stdout().flush();
        } else {
            println!("{line}");
        }
    }
}

/// The demo's chain side.
struct Demo {
    deployment: Deployment,
    domain: VoucherDomain,
    admin: DynProvider,
    artist: DynProvider,
    listener: DynProvider,
    keys: Vec<PrivateKeySigner>,
}

impl Demo {
    fn new(rpc: &Url, deployment: &Deployment, keys: &[PrivateKeySigner]) -> Self {
        let as_ = |k: &PrivateKeySigner| {
            ProviderBuilder::new()
                .wallet(EthereumWallet::from(k.clone()))
                .connect_http(rpc.clone())
                .erased()
        };
        Self {
            deployment: *deployment,
            domain: VoucherDomain::new(deployment.chain_id, deployment.contracts.vault),
            admin: as_(&keys[0]),
            artist: as_(&keys[1]),
            listener: as_(&keys[2]),
            keys: keys.to_vec(),
        }
    }

    /// Seeds the demo, prints where to look, starts the simulated players and prints totals until `shutdown`.
    async fn run(
        self,
        args: DevArgs,
        rpc: Url,
        database_url: String,
        shutdown: CancellationToken,
    ) -> eyre::Result<()> {
        let seeded = async {
            self.seed().await.wrap_err("seeding the demo artist and listener")?;
            wait_indexed(&database_url, &rpc).await
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            seeded = seeded => seeded?,
        }
        let keys = &self.keys;
        let deployment = &self.deployment;

        println!();
        println!("BeatStream dev node is ready.");
        println!("  GraphiQL:   http://{}/graphql", args.api_listen);
        println!("  Subscriptions: ws://{}/graphql/ws", args.api_listen);
        println!("  Relay:      ws://{}/ws/stream", args.relay_listen);
        println!(
            "  Chain:      {rpc} (chain {}), vault {}",
            deployment.chain_id, deployment.contracts.vault
        );
        println!("  Postgres:   {database_url}");
        println!(
            "  Demo:       demo.beatstream.eth (artist {}), listener {}",
            keys[1].address(),
            keys[2].address()
        );
        println!();
        println!("Paste into GraphiQL:");
        println!(
            "  {{ artist(name: \"demo\") {{ name earnings {{ earned {{ usdc }} pending {{ usdc }} }} stats {{ streams seconds \
             uniqueListeners }} tracks {{ edges {{ node {{ id title }} }} }} }} stats {{ liveSessions settled {{ usdc }} }} }}"
        );
        println!();
        if args.listeners > 0 {
            println!("Starting {} simulated listeners; Ctrl-C stops everything.", args.listeners);
            let players = self
                .fund_players(args.listeners)
                .await
                .wrap_err("funding the simulated listeners")?;
            let relay_url: Url = format!("ws://{}/ws/stream", args.relay_listen).parse()?;
            // The sim crate's player: plays a minute at a time, paying every beat, and reconnects after errors.
            for (i, identity) in players.into_iter().enumerate() {
                tokio::spawn(beatstream_sim::client::stream(
                    relay_url.clone(),
                    self.domain.clone(),
                    identity,
                    (i % 3) as u64 + 1,
                    BEATS_PER_PLAY,
                    shutdown.clone(),
                ));
            }
        } else {
            println!(
                "Ctrl-C stops everything. `--listeners N` (make dev ARGS=\"--listeners 10\") adds simulated players."
            );
        }
        totals(&database_url, shutdown).await
    }

    /// `demo.beatstream.eth` with records and three tracks; a listener with 100 USDC deposited.
    async fn seed(&self) -> eyre::Result<()> {
        let registry = BeatStreamRegistry::new(self.deployment.contracts.registry, &self.artist);
        let records = vec![
            TextRecord {
                key: "avatar".into(),
                value: "https://beatstream.example/demo.png".into(),
            },
            TextRecord { key: "description".into(), value: "The BeatStream demo artist".into() },
            TextRecord { key: "genre".into(), value: "electronic".into() },
        ];
        let node = beatstream_primitives::register_artist(
            &registry,
            self.keys[1].address(),
            "demo",
            U256::from(DEMO_RATE),
            records,
        )
        .await?;
        for (title, duration) in [("Genesis Block", 180u32), ("Gas Lights", 210), ("Finality", 240)]
        {
            let input = TrackInput {
                title: title.into(),
                duration,
                ratePerSecond: 0,
                contentHash: keccak256(title),
                metadataURI: format!("ipfs://demo/{}", title.to_lowercase().replace(' ', "-")),
            };
            ensure(registry.publishTrack(node, input).send().await?).await?;
        }
        let amount = U256::from(100 * USDC);
        let usdc = MockUSDC::new(self.deployment.contracts.usdc, &self.listener);
        ensure(usdc.mint(self.keys[2].address(), amount).send().await?).await?;
        ensure(usdc.approve(self.deployment.contracts.vault, amount).send().await?).await?;
        let vault = BeatStreamVault::new(self.deployment.contracts.vault, &self.listener);
        ensure(vault.deposit(amount).send().await?).await?;
        Ok(())
    }

    /// Fresh wallets with 10 USDC each deposited by account 0, and a grant and session key each.
    async fn fund_players(&self, n: usize) -> eyre::Result<Vec<Identity>> {
        let per = U256::from(10 * USDC);
        let usdc = MockUSDC::new(self.deployment.contracts.usdc, &self.admin);
        let total = per * U256::from(n);
        ensure(usdc.mint(self.keys[0].address(), total).send().await?).await?;
        ensure(usdc.approve(self.deployment.contracts.vault, total).send().await?).await?;
        let vault = BeatStreamVault::new(self.deployment.contracts.vault, &self.admin);
        let expires_at = beatstream_primitives::unix_now() + 7 * 86_400;
        // A fresh seed per run: new wallets and keys every time, as random keys would be.
        let seed = format!("dev/{}", PrivateKeySigner::random().address());
        let secp = secp256k1::Secp256k1::signing_only();
        let mut players = Vec::with_capacity(n);
        let mut pending = Vec::new();
        for i in 0..n {
            let identity = Identity::new(&secp, &self.domain, &seed, 0, i, per, expires_at);
            pending.push(vault.depositFor(identity.wallet.address, per).send().await?);
            players.push(identity);
        }
        for tx in pending {
            ensure(tx).await?;
        }
        Ok(players)
    }
}

async fn ensure(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> eyre::Result<()> {
    let receipt = pending.get_receipt().await?;
    eyre::ensure!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
    Ok(())
}
