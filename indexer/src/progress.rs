//! Backfill progress: a bar with rate and ETA on a terminal, a structured log line every few seconds otherwise.

use std::{io::IsTerminal, time::Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// One backfill progress line.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    block: u64,
    target: u64,
    blocks_per_s: u64,
}

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
        if let Some(bar) = &self.bar {
            bar.set_position(block.saturating_sub(self.start) + 1);
            return;
        }
        if let Some(line) = self.line(block, Instant::now()) {
            info!(
                target: "beatstream::indexer",
                block = line.block,
                target = line.target,
                blocks_per_s = line.blocks_per_s,
                "backfilling"
            );
        }
    }

    /// The progress line due at `now`, if one is: only while backfilling (following the head is not progress to
    /// report, and its blocks are past the backfill's target), at most every five seconds.
    fn line(&mut self, block: u64, now: Instant) -> Option<Line> {
        let started = self.started?;
        if self.last_log.is_some_and(|t| now.duration_since(t).as_secs() < 5) {
            return None;
        }
        self.last_log = Some(now);
        let elapsed = now.duration_since(started).as_secs_f64().max(1e-3);
        let done = block.saturating_sub(self.start) + 1;
        Some(Line {
            block,
            target: self.target.max(block),
            blocks_per_s: (done as f64 / elapsed) as u64,
        })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn reports_only_while_backfilling_and_never_past_its_target() {
        let mut p = Progress::new();
        let t0 = Instant::now();
        assert_eq!(p.line(98, t0), None, "following the head before any backfill: nothing");
        p.start(1, 6);
        let line = p.line(3, t0 + Duration::from_secs(1)).expect("a line while backfilling");
        assert_eq!((line.block, line.target), (3, 6));
        assert_eq!(p.line(4, t0 + Duration::from_secs(2)), None, "at most every five seconds");
        p.finish();
        assert_eq!(
            p.line(98, t0 + Duration::from_secs(60)),
            None,
            "caught up: following is not backfilling"
        );
        p.start(99, 120);
        let line = p.line(130, t0 + Duration::from_secs(70)).expect("a new backfill reports again");
        assert!(line.target >= line.block, "{line:?}");
    }
}
