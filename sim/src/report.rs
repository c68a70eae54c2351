//! What a simulation measured, per worker process and merged.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::ceiling::Ceiling;

/// One worker process's figures over the measurement window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Players started.
    pub players: usize,
    /// Players whose session started.
    pub sessions: usize,
    /// Players with an ack in the last two seconds of the window: sessions held.
    pub held: usize,
    /// Acks received in the window.
    pub acks: u64,
    /// Length of the window in seconds.
    pub window_secs: f64,
    /// Ack latency histogram, as (microseconds, count) pairs.
    pub latency_us: Vec<(u64, u64)>,
    /// Error frames (and connection failures) by code.
    pub errors: BTreeMap<String, u64>,
    /// `paused` frames.
    pub paused: u64,
}

/// A new latency histogram: 1 µs to 60 s, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds")
}

/// The merged report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Simulated players.
    pub listeners: usize,
    /// Sessions started.
    pub sessions: usize,
    /// Sessions held at the end of the window.
    pub sessions_held: usize,
    /// Acked vouchers per second over the window.
    pub vouchers_per_sec: f64,
    /// Ack latency percentiles, milliseconds.
    pub ack_p50_ms: f64,
    /// 99th percentile.
    pub ack_p99_ms: f64,
    /// 99.9th percentile.
    pub ack_p999_ms: f64,
    /// Maximum.
    pub ack_max_ms: f64,
    /// Acks measured.
    pub acks: u64,
    /// Errors by code.
    pub errors: BTreeMap<String, u64>,
    /// `paused` frames.
    pub paused: u64,
    /// Signature recovery ceiling, if measured.
    pub ceiling: Option<Ceiling>,
    /// Vouchers per second as a fraction of the relay-path ceiling on all cores.
    pub fraction_of_ceiling: Option<f64>,
    /// CPU used during the window.
    pub cpu: Option<Cpu>,
}

/// CPU microseconds per acked voucher-second (one voucher per session per second).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PerVoucherSecond {
    /// The spawned relay processes.
    pub relay_us: f64,
    /// The benchmark database's Postgres backends.
    pub postgres_us: f64,
    /// The whole Postgres server (backends, WAL writer, checkpointer, autovacuum), when local.
    pub postgres_server_us: Option<f64>,
    /// This simulator and its workers.
    pub simulator_us: f64,
    /// One voucher signature recovery on one thread (the relay's path), measured in the same run.
    pub recovery_us: Option<f64>,
}

/// CPU used during the measured window, in cores (1.0 = one core busy).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Cpu {
    /// The relay processes, if this simulator spawned them.
    pub relay: Option<f64>,
    /// This simulator and its workers.
    pub simulator: f64,
    /// The Postgres backends connected to the benchmark's database (not the WAL writer or other databases).
    pub postgres: f64,
    /// The whole Postgres server on this machine: the postmaster and all its processes (backends of every
    /// database, WAL writer, checkpointer, autovacuum). `None` when the server is not a local process.
    pub postgres_server: Option<f64>,
    /// The whole machine, all processes and the kernel.
    pub machine: f64,
}

impl Report {
    /// Merges worker figures.
    pub fn merge(listeners: usize, workers: &[WorkerStats], ceiling: Option<Ceiling>) -> Self {
        let mut hist = histogram();
        let mut errors = BTreeMap::new();
        let (mut sessions, mut held, mut acks, mut paused, mut window) = (0, 0, 0, 0, 0f64);
        for w in workers {
            for &(v, n) in &w.latency_us {
                let _ = hist.record_n(v.max(1), n);
            }
            for (code, n) in &w.errors {
                *errors.entry(code.clone()).or_insert(0) += n;
            }
            sessions += w.sessions;
            held += w.held;
            acks += w.acks;
            paused += w.paused;
            window = window.max(w.window_secs);
        }
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        let vouchers_per_sec = if window > 0.0 { acks as f64 / window } else { 0.0 };
        Self {
            listeners,
            sessions,
            sessions_held: held,
            vouchers_per_sec,
            ack_p50_ms: ms(0.5),
            ack_p99_ms: ms(0.99),
            ack_p999_ms: ms(0.999),
            ack_max_ms: hist.max() as f64 / 1000.0,
            acks,
            errors,
            paused,
            fraction_of_ceiling: ceiling.map(|c| vouchers_per_sec / c.relay_per_sec),
            ceiling,
            cpu: None,
        }
    }

    /// CPU per acked voucher-second of each component, and the signature recovery measured in the same run
    /// (one thread), when the CPU was sampled and vouchers were acked.
    pub fn per_voucher_second(&self) -> Option<PerVoucherSecond> {
        let cpu = self.cpu?;
        if self.vouchers_per_sec <= 0.0 {
            return None;
        }
        let us = |cores: f64| cores * 1e6 / self.vouchers_per_sec;
        Some(PerVoucherSecond {
            relay_us: us(cpu.relay.unwrap_or(0.0)),
            postgres_us: us(cpu.postgres),
            postgres_server_us: cpu.postgres_server.map(us),
            simulator_us: us(cpu.simulator),
            recovery_us: self.ceiling.map(|c| 1e6 / c.relay_per_sec_one_thread),
        })
    }

    /// Human-readable lines.
    pub fn print(&self) {
        println!("listeners          {}", self.listeners);
        println!("sessions started   {}", self.sessions);
        println!("sessions held      {}", self.sessions_held);
        println!("vouchers/s         {:.0}", self.vouchers_per_sec);
        println!(
            "ack latency ms     p50 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  ({} acks)",
            self.ack_p50_ms, self.ack_p99_ms, self.ack_p999_ms, self.ack_max_ms, self.acks
        );
        println!("paused             {}", self.paused);
        println!("errors             {:?}", self.errors);
        if let Some(c) = self.ceiling {
            println!(
                "recovery ceiling   {:.0}/s on {} threads ({:.0}/s on one; alloy k256 {:.0}/s on one)",
                c.relay_per_sec, c.threads, c.relay_per_sec_one_thread, c.k256_per_sec_one_thread
            );
        }
        if let Some(f) = self.fraction_of_ceiling {
            println!("vouchers/ceiling   {:.1}%", f * 100.0);
        }
        if let Some(c) = self.cpu {
            let relay = c.relay.unwrap_or(0.0);
            println!(
                "CPU (cores)        relay {relay:.2}  simulator {:.2}  postgres {:.2}  rest {:.2}  machine {:.2}",
                c.simulator,
                c.postgres,
                (c.machine - relay - c.simulator - c.postgres).max(0.0),
                c.machine
            );
            if let Some(server) = c.postgres_server {
                println!(
                    "postgres server    {server:.2} cores (every process of the server, all databases)"
                );
            }
        }
        if let Some(per) = self.per_voucher_second() {
            let recovery = per.recovery_us.map_or_else(String::new, |r| {
                format!("  recovery {r:.1} (relay {:.2}x recovery)", per.relay_us / r)
            });
            let server =
                per.postgres_server_us.map_or_else(String::new, |s| format!(" (server {s:.1})"));
            println!(
                "µs per voucher-s   relay {:.1}  postgres {:.1}{server}  simulator {:.1}{recovery}",
                per.relay_us, per.postgres_us, per.simulator_us
            );
        }
        println!("json {}", serde_json::to_string(self).unwrap_or_default());
    }
}
