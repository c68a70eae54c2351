//! Backfill progress: a bar with rate and ETA on a terminal, a structured log line every few seconds otherwise.

use std::{io::IsTerminal, time::Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// Reports backfill progress.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    start: u64,
    target: u64,
    started: Option<Instant>,
    last_log: Option<Instant>,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self { bar: None, start: 0, target: 0, started: None, last_log: None }
    }

    /// Starts (or extends) a backfill from `from` to `target`.
    pub(crate) fn start(&mut self, from: u64, target: u64) {
        if self.started.is_none() {
            self.start = from;
            self.started = Some(Instant::now());
            if std::io::stderr().is_terminal() && target.saturating_sub(from) > 1_000 {
                let bar = ProgressBar::new(target - from + 1);
                bar.set_style(
                    ProgressStyle::with_template(
                        "indexing {bar:40.cyan/blue} {pos}/{len} blocks  {per_sec}  eta {eta}",
                    )
                    .expect("valid template"),
                );
                self.bar = Some(bar);
            }
        }
        self.target = target;
        if let Some(bar) = &self.bar {
            bar.set_length(target.saturating_sub(self.start) + 1);
        }
    }

    /// The last indexed block is now `block`.
    pub(crate) fn set(&mut self, block: u64) {
        let done = block.saturating_sub(self.start) + 1;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let now = Instant::now();
        if self.last_log.is_none_or(|t| now.duration_since(t).as_secs() >= 5) {
            self.last_log = Some(now);
            let elapsed =
                self.started.map_or(0.0, |s| now.duration_since(s).as_secs_f64()).max(1e-3);
            info!(
                target: "beatstream::indexer",
                block,
                target = self.target,
                blocks_per_s = (done as f64 / elapsed) as u64,
                "backfilling"
            );
        }
    }

    /// Caught up.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.started.take().is_some() {
            info!(target: "beatstream::indexer", block = self.target, "caught up with the head");
        }
    }
}
