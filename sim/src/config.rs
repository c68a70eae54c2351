//! The settings of `beatstream simulate`.

use std::path::PathBuf;

use alloy::primitives::Address;
use beatstream_primitives::Deployment;
use url::Url;

use crate::{Error, Result};

/// The vault address relays spawned by the simulator serve, when none is given.
const BENCH_VAULT: Address = Address::new([0xbe; 20]);

/// Default `--listeners`.
pub const DEFAULT_LISTENERS: usize = 100;
/// Default `--duration-secs`.
pub const DEFAULT_DURATION_SECS: u64 = 30;
/// Default `--warmup-secs`.
pub const DEFAULT_WARMUP_SECS: u64 = 5;
/// Default `--ramp-per-sec`.
pub const DEFAULT_RAMP_PER_SEC: u64 = 2000;
/// Default `--track-id`.
pub const DEFAULT_TRACK_ID: u64 = 1;
/// Default `--chain-id` (anvil).
pub const DEFAULT_CHAIN_ID: u64 = 31337;
/// Default `--seed`.
pub const DEFAULT_SEED: &str = "beatstream-simulate";
/// Default `--cap`, in base units.
pub const DEFAULT_CAP: u64 = 1_000_000_000_000;
/// Default `--spawn-relays`.
pub const DEFAULT_SPAWN_RELAYS: usize = 0;
/// Default `--processes`.
pub const DEFAULT_PROCESSES: usize = 1;
/// Default `--relay-beat-ms`.
pub const DEFAULT_BEAT_MS: u64 = 1000;
/// Default `--ceiling-secs`.
pub const DEFAULT_CEILING_SECS: f64 = 3.0;
/// Default of the internal `--workers`.
pub const DEFAULT_WORKERS: usize = 1;

/// Settings of the load generator; every flag can also come from its `BEATSTREAM_*` variable.
#[derive(Clone, Debug, clap::Args)]
pub struct SimulateConfig {
    /// Relay WebSocket URL(s), comma-separated; players are spread over them. Not needed with --spawn-relays.
    #[arg(long, env = "BEATSTREAM_SIMULATE_RELAY", value_delimiter = ',')]
    pub relay: Vec<Url>,
    /// Simulated players (listeners), one session each.
    #[arg(long, env = "BEATSTREAM_SIMULATE_LISTENERS", default_value_t = DEFAULT_LISTENERS)]
    pub listeners: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, env = "BEATSTREAM_SIMULATE_DURATION_SECS", default_value_t = DEFAULT_DURATION_SECS)]
    pub duration_secs: u64,
    /// Seconds between the last player starting and the measured window.
    #[arg(long, env = "BEATSTREAM_SIMULATE_WARMUP_SECS", default_value_t = DEFAULT_WARMUP_SECS)]
    pub warmup_secs: u64,
    /// Players started per second (over all processes).
    #[arg(long, env = "BEATSTREAM_SIMULATE_RAMP_PER_SEC", default_value_t = DEFAULT_RAMP_PER_SEC)]
    pub ramp_per_sec: u64,
    /// Track every player plays.
    #[arg(long, env = "BEATSTREAM_SIMULATE_TRACK_ID", default_value_t = DEFAULT_TRACK_ID)]
    pub track_id: u64,
    /// Chain id of the signing domain.
    #[arg(long, env = "BEATSTREAM_CHAIN_ID", default_value_t = DEFAULT_CHAIN_ID)]
    pub chain_id: u64,
    /// Vault of the signing domain [default: the deployment file's; 0xbebe… for spawned relays].
    #[arg(long, env = "BEATSTREAM_VAULT")]
    pub vault: Option<Address>,
    /// Deployment file to read the vault from [default: deployments/<chainId>.json].
    #[arg(long, env = "BEATSTREAM_DEPLOYMENT")]
    pub deployment: Option<PathBuf>,
    /// Seed of the listener wallets: wallet i is derived from it, so `beatstream dev` can fund the same ones.
    #[arg(long, env = "BEATSTREAM_SIMULATE_SEED", default_value = DEFAULT_SEED)]
    pub seed: String,
    /// Players `2j` and `2j + 1` for `j` below this share listener `2j`'s wallet, each with its own session key and
    /// grant: with two relays they play on both at once, so the relays' balance guard is shared by one listener.
    #[arg(long, env = "BEATSTREAM_SIMULATE_SHARED_LISTENERS", default_value_t = 0)]
    pub shared_listeners: usize,
    /// Play quiet sessions (`play` with `beats: false`): the relay sends only the beat that starts a session, and
    /// each player pays the later seconds on its own clock, one frame fewer per second.
    #[arg(long, env = "BEATSTREAM_SIMULATE_QUIET_BEATS")]
    pub quiet_beats: bool,
    /// Cap of each player's grant, in base units.
    #[arg(long, env = "BEATSTREAM_SIMULATE_CAP", default_value_t = DEFAULT_CAP)]
    pub cap: u64,
    /// Postgres URL, for --seed-fixtures and --spawn-relays.
    #[arg(long, env = "BEATSTREAM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Write the players' vault accounts and a demo track into the indexer's tables first (benchmarks without a
    /// chain: the rows the indexer would write after the deposits).
    #[arg(long, env = "BEATSTREAM_SIMULATE_SEED_FIXTURES")]
    pub seed_fixtures: bool,
    /// Start this many relay processes (this binary's `relay`) on --database-url and spread players over them.
    #[arg(long, env = "BEATSTREAM_SIMULATE_SPAWN_RELAYS", default_value_t = DEFAULT_SPAWN_RELAYS)]
    pub spawn_relays: usize,
    /// Worker processes holding the players (each process may hold about 19,000 sockets here).
    #[arg(long, env = "BEATSTREAM_SIMULATE_PROCESSES", default_value_t = DEFAULT_PROCESSES)]
    pub processes: usize,
    /// Beat length of the relay in milliseconds (sizes the vouchers signed ahead; passed to spawned relays).
    #[arg(long = "relay-beat-ms", env = "BEATSTREAM_RELAY_BEAT_MS", default_value_t = DEFAULT_BEAT_MS)]
    pub beat_ms: u64,
    /// Seconds spent measuring the signature-recovery ceiling before the run (0 skips it).
    #[arg(long, env = "BEATSTREAM_SIMULATE_CEILING_SECS", default_value_t = DEFAULT_CEILING_SECS)]
    pub ceiling_secs: f64,
    /// Internal: run as worker `N` of `--workers` (started by the parent simulate process).
    #[arg(long, hide = true)]
    pub worker: Option<usize>,
    /// Internal: number of workers.
    #[arg(long, hide = true, default_value_t = DEFAULT_WORKERS)]
    pub workers: usize,
    /// Internal: unique number of this run (fresh grants each run).
    #[arg(long, hide = true)]
    pub run_id: Option<u64>,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        Self {
            relay: Vec::new(),
            listeners: DEFAULT_LISTENERS,
            duration_secs: DEFAULT_DURATION_SECS,
            warmup_secs: DEFAULT_WARMUP_SECS,
            ramp_per_sec: DEFAULT_RAMP_PER_SEC,
            track_id: DEFAULT_TRACK_ID,
            chain_id: DEFAULT_CHAIN_ID,
            vault: None,
            deployment: None,
            seed: DEFAULT_SEED.into(),
            cap: DEFAULT_CAP,
            shared_listeners: 0,
            quiet_beats: false,
            database_url: None,
            seed_fixtures: false,
            spawn_relays: DEFAULT_SPAWN_RELAYS,
            processes: DEFAULT_PROCESSES,
            beat_ms: DEFAULT_BEAT_MS,
            ceiling_secs: DEFAULT_CEILING_SECS,
            worker: None,
            workers: DEFAULT_WORKERS,
            run_id: None,
        }
    }
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
        let mut args = vec![
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
            format!("--shared-listeners={}", self.shared_listeners),
            format!("--relay-beat-ms={}", self.beat_ms),
            format!("--worker={index}"),
            format!("--workers={}", self.processes),
            format!("--run-id={run_id}"),
        ];
        if self.quiet_beats {
            args.push("--quiet-beats".into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: SimulateConfig,
    }

    #[test]
    fn parsing_no_flags_equals_the_default() {
        let parsed = Cli::try_parse_from(["simulate"]).unwrap().config;
        assert_eq!(format!("{parsed:?}"), format!("{:?}", SimulateConfig::default()));
    }
}
