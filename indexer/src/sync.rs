//! The loop: backfill in adaptive, pipelined ranges committed strictly in block order, then follow the head;
//! detect reorgs by block hash and roll back to the common ancestor.

use std::{collections::HashMap, sync::Arc, time::Duration};

use alloy::{primitives::B256, rpc::types::Log};
use beatstream_primitives::rpc::{is_rate_limited, suggested_wait};
use futures_util::{FutureExt, StreamExt, stream::FuturesOrdered};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    Error, Metrics, Result,
    chain::{BlockRef, Cursor},
    db::Db,
    error::joined,
    events::{Event, Sources},
    progress::Progress,
    ranges::{RangeSize, is_too_many_results, suggested_range},
    source::ChainSource,
    state::{Remembered, Root},
    write::{self, Batch},
};

/// The number of logs per `eth_getLogs` response the range size aims at: large enough to amortise the round trip,
/// small enough to keep memory flat (each in-flight response is held until its batch commits).
const TARGET_LOGS_PER_RESPONSE: usize = 20_000;

/// Decoded events of consecutive ranges, and their headers, ascending.
struct Decoded {
    events: Vec<Event>,
    headers: Vec<BlockRef>,
}

impl Decoded {
    fn last(&self) -> &BlockRef {
        self.headers.last().expect("the last block's header is always fetched")
    }

    fn append(&mut self, next: Decoded) {
        self.events.extend(next.events);
        self.headers.extend(next.headers);
    }
}

/// Settings of the loop.
#[derive(Clone, Debug)]
pub(crate) struct SyncConfig {
    pub(crate) start_block: u64,
    pub(crate) confirmations: u64,
    pub(crate) reorg_window: u64,
    pub(crate) concurrency: usize,
    /// Events per transaction during a backfill.
    pub(crate) batch_events: usize,
    pub(crate) poll_interval: Duration,
}

/// The indexer of one chain.
pub(crate) struct Syncer<S> {
    pub(crate) source: Arc<S>,
    pub(crate) db: Db,
    pub(crate) chain_id: i64,
    pub(crate) root: Root,
    pub(crate) sources: Sources,
    pub(crate) config: SyncConfig,
    pub(crate) ranges: Arc<RangeSize>,
    pub(crate) metrics: Metrics,
    /// Derived rows as committed, kept across batches; emptied on any failure and on rollbacks.
    pub(crate) known: tokio::sync::Mutex<Remembered>,
}

/// What a step achieved.
enum Step {
    /// Nothing new to index.
    CaughtUp,
    /// Wrote or rolled back something; step again at once.
    Advanced,
}

/// The logs and headers of a block range, fetched and checked.
struct Fetched {
    logs: Vec<Log>,
    /// Headers of `from`, of the blocks above `finalized` (all linked), and of `to`, ascending.
    headers: Vec<BlockRef>,
}

impl<S: ChainSource + 'static> Syncer<S> {
    /// Runs until `shutdown`, or until a fatal error.
    pub(crate) async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let mut cursor = self.db.cursor(self.chain_id).await?;
        let mut reload_cursor = false;
        let mut backoff = Duration::from_millis(250);
        let mut progress = Progress::new();
        loop {
            self.metrics.heartbeat.beat();
            let step = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                step = async {
                    // A step that failed may have failed after its transaction committed (the connection lost
                    // while COMMIT was answered): the database, not memory, says where indexing stands.
                    if reload_cursor {
                        cursor = self.db.cursor(self.chain_id).await?;
                        reload_cursor = false;
                    }
                    self.step(&mut cursor, &mut progress, &shutdown).await
                } => step,
            };
            if step.is_ok() {
                self.metrics.set_last_error(None);
            }
            match step {
                Ok(Step::Advanced) => backoff = Duration::from_millis(250),
                Ok(Step::CaughtUp) => {
                    backoff = Duration::from_millis(250);
                    progress.finish();
                    self.metrics.set_ready(true);
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                    }
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
                    reload_cursor = true;
                    self.known.lock().await.clear();
                    self.metrics.set_last_error(Some(e.to_string()));
                    match &e {
                        Error::Rpc(_) | Error::Inconsistent(_) => self.metrics.rpc_errors.inc(),
                        Error::Decode { .. } => self.metrics.decode_errors.inc(),
                        _ => {}
                    }
                    warn!(target: "beatstream::indexer", error = %e, retry_in = ?backoff, "indexing step failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    async fn step(
        &self,
        cursor: &mut Option<Cursor>,
        progress: &mut Progress,
        shutdown: &CancellationToken,
    ) -> Result<Step> {
        let head = head(&*self.source, &self.metrics).await?;
        self.metrics.head.set(head as i64);
        let indexed = cursor.map(|c| c.number);
        if let Some(c) = indexed {
            // Also after a restart or a cursor re-read, before anything is committed.
            self.metrics.indexed.set(c as i64);
            self.metrics.behind.set(head.saturating_sub(c) as i64);
            if head < c {
                // A lagging node (or a load balancer over several): wait for it, this is not a reorg.
                debug!(target: "beatstream::indexer", head, indexed = c, "rpc head is behind the cursor; waiting");
                return Ok(Step::CaughtUp);
            }
        }
        let finalized = head.saturating_sub(self.config.reorg_window);
        // A reorg that replaced the cursor block shows as a different hash at the cursor. Checked even below the
        // window: a reorg deeper than the window must stop the indexer, not pass unnoticed.
        if let Some(c) = *cursor
            && header(&*self.source, &self.metrics, c.number).await?.hash != c.hash
        {
            self.reorg(cursor).await?;
            return Ok(Step::Advanced);
        }
        let target = head.saturating_sub(self.config.confirmations);
        let mut next = indexed.map_or(self.config.start_block, |c| c + 1);
        if next > target {
            return Ok(Step::CaughtUp);
        }
        if !self.metrics.is_ready() {
            progress.start(next, target);
        }

        let mut inflight = FuturesOrdered::new();
        let mut pending: Option<Decoded> = None;
        // The batch written but not yet committed (see `write::Staged`), and the last block handed to the writer.
        let mut staged: Option<write::Staged> = None;
        let mut tip = *cursor;
        // Time spent waiting for fetches, for the debug log.
        let mut fetch_wait = Duration::ZERO;
        let permits = Arc::new(tokio::sync::Semaphore::new(self.config.concurrency));
        let queued =
            self.config.concurrency + self.config.batch_events.div_ceil(TARGET_LOGS_PER_RESPONSE);
        // The first batches of a step are small and double up to `batch_events`: the writers start after the first
        // response rather than after a full batch, and the fetches get ahead of them while they are still quick.
        let mut batch_events = TARGET_LOGS_PER_RESPONSE.min(self.config.batch_events);
        loop {
            // Fetches (and the decoding of what they fetched) run as tasks, so they overlap with committing; at most
            // `concurrency` talk to the node at once, and finished ones wait in order, enough of them to fill the
            // next transaction.
            while next <= target && inflight.len() < queued {
                let to = (next + self.ranges.get() - 1).min(target);
                let permits = permits.clone();
                let fetch = self.fetch(next, to, finalized);
                let fetch = tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("never closed");
                    fetch.await
                });
                inflight.push_back(async move { joined("fetch", fetch.await)? });
                next = to + 1;
            }
            // A staged batch waits for the next to be fetched, so the two are written at once; but when the next is
            // not here yet, it need not wait.
            let fetched = match inflight.next().now_or_never() {
                Some(fetched) => fetched,
                None => {
                    if let Some(before) = staged.take() {
                        self.finish(before, cursor, progress).await?;
                    }
                    let waiting = std::time::Instant::now();
                    let fetched = inflight.next().await;
                    fetch_wait += waiting.elapsed();
                    fetched
                }
            };
            let Some(fetched) = fetched else { break };
            let fetched = fetched?;
            // Each range must extend the one before it, and the first the cursor; otherwise the chain moved.
            let first =
                fetched.headers.first().expect("the first block's header is always fetched");
            match (&pending, tip) {
                (Some(p), _) if first.parent_hash != p.last().hash => {
                    return Err(Error::Inconsistent(format!(
                        "block {} does not extend the range before it",
                        first.number
                    )));
                }
                // A staged batch is dropped (rolled back) with the error; the retry starts from the cursor.
                (None, Some(t)) if first.parent_hash != t.hash && tip != *cursor => {
                    return Err(Error::Inconsistent(format!(
                        "block {} does not extend the batch before it",
                        first.number
                    )));
                }
                (None, Some(c)) if first.parent_hash != c.hash => {
                    self.reorg(cursor).await?;
                    return Ok(Step::Advanced);
                }
                _ => {}
            }
            let batch = match pending.take() {
                Some(mut p) => {
                    p.append(fetched);
                    p
                }
                None => fetched,
            };
            // Several ranges per transaction: a derived row touched by many events in a batch is written once.
            let last_range = next > target && inflight.is_empty();
            if batch.events.len() >= batch_events || last_range || shutdown.is_cancelled() {
                batch_events = (batch_events * 2).min(self.config.batch_events);
                let batch = self.batch(batch, tip, finalized);
                tip = Some(batch.cursor);
                debug!(
                    target: "beatstream::indexer::store",
                    parent: &batch.span,
                    events = batch.events.len(),
                    fetch_wait_ms = std::mem::take(&mut fetch_wait).as_millis() as u64,
                    "batch fetched"
                );
                // This batch's raw rows go in on their own connection while the batch before it completes.
                let span = batch.span.clone();
                let stage = tokio::spawn(write::stage(self.db.clone(), batch).instrument(span));
                let finished = match staged.take() {
                    Some(before) => self.finish(before, cursor, progress).await,
                    None => Ok(()),
                };
                let stage = joined("stage", stage.await);
                finished?;
                staged = Some(stage??);
            } else {
                pending = Some(batch);
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
        // The last batch, or the one staged when shutdown came, has no successor to wait for.
        if let Some(staged) = staged {
            self.finish(staged, cursor, progress).await?;
        }
        Ok(Step::Advanced)
    }

    /// Fetches logs of `[from, to]` (splitting the range when the node says the answer is too large) and the
    /// headers the commit needs, checks that they describe one chain, and decodes the logs.
    fn fetch(
        &self,
        from: u64,
        to: u64,
        finalized: u64,
    ) -> impl Future<Output = Result<Decoded>> + Send + 'static + use<S> {
        let source = self.source.clone();
        let ranges = self.ranges.clone();
        let sources = self.sources;
        let addresses = sources.addresses();
        let metrics = self.metrics.clone();
        async move {
            let logs = fetch_logs(&*source, &ranges, &metrics, &addresses, from, to).await?;
            // Headers: the first block (its parent must be the cursor), every block inside the unfinalised window,
            // and the last one (the new cursor's hash).
            let mut numbers: Vec<u64> = vec![from];
            numbers.extend(from.max(finalized + 1)..=to);
            numbers.push(to);
            numbers.dedup();
            let mut headers = Vec::with_capacity(numbers.len());
            for chunk in numbers.chunks(16) {
                let got = futures_util::future::join_all(
                    chunk.iter().map(|n| header(&*source, &metrics, *n)),
                )
                .await;
                for h in got {
                    headers.push(h?);
                }
            }
            for pair in headers.windows(2) {
                if pair[1].number == pair[0].number + 1 && pair[1].parent_hash != pair[0].hash {
                    return Err(Error::Inconsistent(format!(
                        "block {} does not extend block {}",
                        pair[1].number, pair[0].number
                    )));
                }
            }
            let by_number: HashMap<u64, B256> =
                headers.iter().map(|h| (h.number, h.hash)).collect();
            for log in &logs {
                if let (Some(n), Some(hash)) = (log.block_number, log.block_hash)
                    && let Some(expected) = by_number.get(&n)
                    && *expected != hash
                {
                    return Err(Error::Inconsistent(format!(
                        "logs of block {n} are from another fork"
                    )));
                }
            }
            decode(&*source, &metrics, &sources, Fetched { logs, headers }).await
        }
    }

    /// The writer's batch of `decoded`, which extends `previous`, with its span.
    fn batch(&self, decoded: Decoded, previous: Option<Cursor>, finalized: u64) -> Batch {
        let last = *decoded.last();
        let first = decoded.headers.first().map_or(last.number, |h| h.number);
        Batch {
            span: info_span!(target: "beatstream::indexer", "batch", from = first, to = last.number),
            chain_id: self.chain_id,
            events: decoded.events,
            headers: decoded.headers.into_iter().filter(|h| h.number >= finalized).collect(),
            previous,
            cursor: Cursor { number: last.number, hash: last.hash },
            finalized,
        }
    }

    /// Completes and commits a staged batch, then moves `cursor` (and the progress shown) over it.
    async fn finish(
        &self,
        staged: write::Staged,
        cursor: &mut Option<Cursor>,
        progress: &mut Progress,
    ) -> Result<()> {
        let new_cursor = staged.cursor();
        let span = staged.span();
        let mut known = self.known.lock().await;
        let written =
            write::finish(staged, &self.root, &mut known).instrument(span.clone()).await?;

        *cursor = Some(new_cursor);
        progress.set(new_cursor.number);
        self.metrics.events.inc_by(written.events as u64);
        self.metrics.inconsistencies.inc_by(written.inconsistencies);
        self.metrics.batches.inc();
        self.metrics.heartbeat.beat();
        self.metrics.indexed.set(new_cursor.number as i64);
        self.metrics.behind.set((self.metrics.head.get() - new_cursor.number as i64).max(0));
        debug!(target: "beatstream::indexer", parent: &span, events = written.events, "committed");
        Ok(())
    }

    /// Walks back from the cursor to the newest block whose stored hash the node still has, and rolls back to it.
    async fn reorg(&self, cursor: &mut Option<Cursor>) -> Result<()> {
        let Some(c) = *cursor else { return Ok(()) };
        let lowest = self.db.lowest_kept_block(self.chain_id).await?.unwrap_or(c.number);
        let mut n = c.number;
        let ancestor = loop {
            let Some(stored) = self.db.block_hash(self.chain_id, n).await? else {
                return Err(Error::ReorgBeyondWindow { block: c.number, lowest });
            };
            // A node that does not (yet) have a block we stored is lagging: retry later rather than roll back.
            let canonical = self
                .source
                .header(n)
                .await?
                .ok_or_else(|| Error::Rpc(format!("node lacks block {n}")))?;
            if canonical.hash == stored {
                break Cursor { number: n, hash: stored };
            }
            if n <= lowest {
                return Err(Error::ReorgBeyondWindow { block: c.number, lowest });
            }
            n -= 1;
        };
        self.known.lock().await.clear();
        let restored = self.db.rollback(self.chain_id, c, ancestor).await?;
        self.metrics.reorgs.inc();
        self.metrics.indexed.set(ancestor.number as i64);
        info!(
            target: "beatstream::indexer",
            from = c.number,
            ancestor = ancestor.number,
            depth = c.number - ancestor.number,
            restored,
            "reorg rolled back"
        );
        *cursor = Some(ancestor);
        Ok(())
    }
}

/// Decodes a fetched range into events in chain order.
async fn decode<S: ChainSource>(
    source: &S,
    metrics: &Metrics,
    sources: &Sources,
    fetched: Fetched,
) -> Result<Decoded> {
    let Fetched { logs, headers } = fetched;
    let times = block_times(source, metrics, &logs, &headers).await?;
    let mut events: Vec<Event> = Vec::with_capacity(logs.len());
    for log in &logs {
        let n = log.block_number.ok_or(Error::PendingLog)?;
        let time = log.block_timestamp.or_else(|| times.get(&n).copied()).unwrap_or_default();
        if let Some(event) = sources.decode(log, time)? {
            events.push(event);
        }
    }
    events.sort_by_key(|e| (e.at.block_number, e.at.log_index));
    crate::events::check_split_payments(&events)?;
    Ok(Decoded { events, headers })
}

/// Block timestamps for logs that do not carry `blockTimestamp`.
async fn block_times<S: ChainSource>(
    source: &S,
    metrics: &Metrics,
    logs: &[Log],
    headers: &[BlockRef],
) -> Result<HashMap<u64, u64>> {
    let mut times: HashMap<u64, u64> = headers.iter().map(|h| (h.number, h.timestamp)).collect();
    let mut missing: Vec<u64> = logs
        .iter()
        .filter(|l| l.block_timestamp.is_none())
        .filter_map(|l| l.block_number)
        .filter(|n| !times.contains_key(n))
        .collect();
    missing.dedup();
    for chunk in missing.chunks(16) {
        let got =
            futures_util::future::join_all(chunk.iter().map(|n| header(source, metrics, *n))).await;
        for h in got {
            let h = h?;
            times.insert(h.number, h.timestamp);
        }
    }
    Ok(times)
}

/// Attempts per request before a step gives up and backs off as a whole.
const ATTEMPTS: u32 = 5;
/// Rate-limited answers in a row before a step gives up (about two minutes of waiting at the default pauses).
const RATE_LIMITED_ATTEMPTS: u32 = 12;

/// The node's head, retrying a failing node.
async fn head<S: ChainSource>(source: &S, metrics: &Metrics) -> Result<u64> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match source.head().await {
            Ok(head) => return Ok(head),
            Err(e) if attempt == ATTEMPTS => return Err(e),
            Err(e) => {
                metrics.rpc_errors.inc();
                debug!(target: "beatstream::indexer", error = %e, "head request failed; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

/// The header of a block the node must have (it is at or below its head), retrying a failing or lagging node.
async fn header<S: ChainSource>(source: &S, metrics: &Metrics, number: u64) -> Result<BlockRef> {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=ATTEMPTS {
        match source.header(number).await {
            Ok(Some(h)) => return Ok(h),
            Ok(None) if attempt == ATTEMPTS => {
                return Err(Error::Rpc(format!("node does not have block {number} yet")));
            }
            Err(e) if attempt == ATTEMPTS => return Err(e),
            Ok(None) => {}
            Err(e) => {
                metrics.rpc_errors.inc();
                debug!(target: "beatstream::indexer", number, error = %e, "header request failed; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

/// `eth_getLogs` over `[from, to]`, split as often as the node's answers require.
async fn fetch_logs<S: ChainSource>(
    source: &S,
    ranges: &RangeSize,
    metrics: &Metrics,
    addresses: &[alloy::primitives::Address],
    from: u64,
    to: u64,
) -> Result<Vec<Log>> {
    let mut out = Vec::new();
    let mut start = from;
    let mut size = to - from + 1;
    let mut attempts = 0;
    let mut rate_limited = 0u32;
    while start <= to {
        let end = (start + size - 1).min(to);
        match source.logs(addresses, start, end).await {
            Ok(logs) => {
                rate_limited = 0;
                ranges.succeeded(end - start + 1, logs.len(), TARGET_LOGS_PER_RESPONSE);
                out.extend(logs);
                start = end + 1;
                size = to.saturating_sub(end).max(1);
            }
            // A rate limit outlasting the RPC layer's own retries (`--rpc-retries`): the same range again after a
            // pause (what the provider asks for, else doubling from 250 ms up to 30 s). Splitting would only send
            // more requests into the limit.
            Err(Error::Rpc(message)) if is_rate_limited(&message) => {
                metrics.rpc_errors.inc();
                rate_limited += 1;
                if rate_limited > RATE_LIMITED_ATTEMPTS {
                    return Err(Error::Rpc(message));
                }
                let wait = suggested_wait(&message).unwrap_or_else(|| {
                    Duration::from_millis(250 << (rate_limited - 1).min(7))
                        .min(Duration::from_secs(30))
                });
                warn!(target: "beatstream::indexer", start, end, wait_ms = wait.as_millis() as u64, error = %message, "rate-limited by the RPC provider; waiting");
                tokio::time::sleep(wait).await;
            }
            Err(Error::Rpc(message)) if is_too_many_results(&message) && end > start => {
                metrics.rpc_errors.inc();
                size = ranges.failed(end - start + 1, suggested_range(&message));
                debug!(target: "beatstream::indexer", start, size, "range too large; splitting");
            }
            Err(e) => {
                metrics.rpc_errors.inc();
                attempts += 1;
                size = ranges.failed(end - start + 1, None);
                if attempts >= ATTEMPTS {
                    return Err(e);
                }
                debug!(target: "beatstream::indexer", start, error = %e, "getLogs failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 << attempts)).await;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use alloy::primitives::Address;

    use super::*;

    /// A provider that rate-limits the first `limited` `eth_getLogs` calls, then answers with no logs; it records
    /// every range asked for.
    struct RateLimited {
        limited: usize,
        message: &'static str,
        asked: Mutex<Vec<(u64, u64)>>,
    }

    impl ChainSource for RateLimited {
        async fn chain_id(&self) -> Result<u64> {
            Ok(1)
        }
        async fn head(&self) -> Result<u64> {
            Ok(1_000)
        }
        async fn header(&self, _: u64) -> Result<Option<BlockRef>> {
            Ok(None)
        }
        async fn logs(&self, _: &[Address], from: u64, to: u64) -> Result<Vec<Log>> {
            let mut asked = self.asked.lock().expect("not poisoned");
            asked.push((from, to));
            if asked.len() <= self.limited {
                return Err(Error::Rpc(format!("eth_getLogs: {}", self.message)));
            }
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn a_rate_limit_waits_and_asks_for_the_same_range_again() {
        let source = RateLimited {
            limited: 3,
            message: "HTTP error 429 with body: exceeded its compute units per second capacity, try again in 20ms",
            asked: Mutex::new(Vec::new()),
        };
        let ranges = RangeSize::new(100, 1, 1_000);
        let started = std::time::Instant::now();
        let logs =
            fetch_logs(&source, &ranges, &Metrics::new(), &[], 1, 100).await.expect("retried");
        assert!(logs.is_empty());
        assert_eq!(*source.asked.lock().unwrap(), vec![(1, 100); 4], "the same range, never split");
        assert!(started.elapsed() >= Duration::from_millis(60), "waited as asked, three times");
        assert_eq!(ranges.get(), 200, "only the success moved the range size");
    }

    #[tokio::test]
    async fn a_size_error_still_splits_the_range() {
        let source = RateLimited {
            limited: 1,
            message: "query returned more than 10000 results",
            asked: Mutex::new(Vec::new()),
        };
        let ranges = RangeSize::new(100, 1, 1_000);
        fetch_logs(&source, &ranges, &Metrics::new(), &[], 1, 100).await.expect("split");
        let asked = source.asked.lock().unwrap().clone();
        assert_eq!(asked[0], (1, 100));
        assert_eq!(asked[1], (1, 50), "halved");
    }

    #[tokio::test]
    async fn a_provider_that_never_stops_limiting_is_an_error_in_the_end() {
        let source = RateLimited {
            limited: usize::MAX,
            message: "429 Too Many Requests, retry in 1ms",
            asked: Mutex::new(Vec::new()),
        };
        let ranges = RangeSize::new(100, 1, 1_000);
        let err = fetch_logs(&source, &ranges, &Metrics::new(), &[], 1, 100).await.unwrap_err();
        assert!(err.to_string().contains("429"), "{err}");
        assert_eq!(source.asked.lock().unwrap().len(), RATE_LIMITED_ATTEMPTS as usize + 1);
    }
}
