//! The settings of `beatstream simulate`.

use std::path::PathBuf;

use alloy::primitives::Address;
use beatstream_primitives::Deployment;
use url::Url;

use crate::{Error, Result};

/// The vault address relays spawned by the simulator serve, when none is given.
const BENCH_VAULT: Address = Address::new([0xbe; 20]);

/// Settings of the load generator; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateConfig {
    /// Relay WebSocket URL(s), comma-separated; players are spread over them. Not needed with --spawn-relays.
    #[arg(long, env = "BEATSTREAM_SIMULATE_RELAY", value_delimiter = ',')]
    pub relay: Vec<Url>,
    /// Simulated players (listeners), one session each.
    #[arg(long, env = "BEATSTREAM_SIMULATE_LISTENERS", default_value_t = 100)]
    pub listeners: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, env = "BEATSTREAM_SIMULATE_DURATION_SECS", default_value_t = 30)]
    pub duration_secs: u64,
    /// Seconds between the last player starting and the measured window.
    #[arg(long, env = "BEATSTREAM_SIMULATE_WARMUP_SECS", default_value_t = 5)]
    pub warmup_secs: u64,
    /// Players started per second (over all processes).
    #[arg(long, env = "BEATSTREAM_SIMULATE_RAMP_PER_SEC", default_value_t = 2000)]
    pub ramp_per_sec: u64,
    /// Track every player plays.
    #[arg(long, env = "BEATSTREAM_SIMULATE_TRACK_ID", default_value_t = 1)]
    pub track_id: u64,
    /// Chain id of the signing domain.
    #[arg(long, env = "BEATSTREAM_CHAIN_ID", default_value_t = 31337)]
    pub chain_id: u64,
    /// Vault of the signing domain [default: the deployment file's; 0xbebe… for spawned relays].
    #[arg(long, env = "BEATSTREAM_VAULT")]
    pub vault: Option<Address>,
    /// Deployment file to read the vault from [default: deployments/<chainId>.json].
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
    /// Seed of the listener wallets: wallet i is derived from it, so `beatstream dev` can fund the same ones.
    #[arg(long, env = "BEATSTREAM_SIMULATE_SEED", default_value = "beatstream-simulate")]
    pub seed: String,
    /// Cap of each player's grant, in base units.
    #[arg(long, env = "BEATSTREAM_SIMULATE_CAP", default_value_t = 1_000_000_000_000)]
    pub cap: u64,
    /// Postgres URL, for --seed-fixtures and --spawn-relays.
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Write the players' vault accounts and a demo track into the indexer's tables first (benchmarks without a
    /// chain: the rows the indexer would write after the deposits).
    #[arg(long, env = "BEATSTREAM_SIMULATE_SEED_FIXTURES")]
    pub seed_fixtures: bool,
    /// Start this many relay processes (this binary's `relay`) on --database-url and spread players over them.
    #[arg(long, env = "BEATSTREAM_SIMULATE_SPAWN_RELAYS", default_value_t = 0)]
    pub spawn_relays: usize,
    /// Worker processes holding the players (each process may hold about 19,000 sockets here).
    #[arg(long, env = "BEATSTREAM_SIMULATE_PROCESSES", default_value_t = 1)]
    pub processes: usize,
    /// Beat length of the relay in milliseconds (sizes the vouchers signed ahead; passed to spawned relays).
    #[arg(long, env = "BEATSTREAM_RELAY_BEAT_MS", default_value_t = 1000)]
    pub beat_ms: u64,
    /// Seconds spent measuring the signature-recovery ceiling before the run (0 skips it).
    #[arg(long, env = "BEATSTREAM_SIMULATE_CEILING_SECS", default_value_t = 3.0)]
    pub ceiling_secs: f64,
    /// Internal: run as worker `N` of `--workers` (started by the parent simulate process).
    #[arg(long, hide = true)]
    pub worker: Option<usize>,
    /// Internal: number of workers.
    #[arg(long, hide = true, default_value_t = 1)]
    pub workers: usize,
    /// Internal: unique number of this run (fresh grants each run).
    #[arg(long, hide = true)]
    pub run_id: Option<u64>,
}

impl SimulateConfig {
    pub(crate) fn vault(&self) -> Result<Address> {
        if let Some(vault) = self.vault {
            return Ok(vault);
        }
        if self.spawn_relays > 0 {
            return Ok(BENCH_VAULT);
        }
        let path = self
            .deployment
            .clone()
            .unwrap_or_else(|| format!("deployments/{}.json", self.chain_id).into());
        Deployment::load(&path)
            .map(|d| d.contracts.vault)
            .map_err(|e| Error::Config(format!("{e}; pass --vault or --deployment")))
    }

    /// The arguments that make a worker process of this run.
    pub(crate) fn worker_args(
        &self,
        index: usize,
        relays: &[Url],
        vault: Address,
        run_id: u64,
    ) -> Vec<String> {
        let relays: Vec<String> = relays.iter().map(Url::to_string).collect();
        vec![
            "simulate".into(),
            format!("--relay={}", relays.join(",")),
            format!("--listeners={}", self.listeners),
            format!("--duration-secs={}", self.duration_secs),
            format!("--warmup-secs={}", self.warmup_secs),
            format!("--ramp-per-sec={}", self.ramp_per_sec),
            format!("--track-id={}", self.track_id),
            format!("--chain-id={}", self.chain_id),
            format!("--vault={vault}"),
            format!("--seed={}", self.seed),
            format!("--cap={}", self.cap),
            format!("--beat-ms={}", self.beat_ms),
            format!("--worker={index}"),
            format!("--workers={}", self.processes),
            format!("--run-id={run_id}"),
        ]
    }
}
