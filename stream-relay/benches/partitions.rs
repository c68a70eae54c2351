//! The relay's hot write on Postgres declarative partitioning: the `vouchers` table as migrations 0001, 0005 and 0014
//! make it (unpartitioned), and `PARTITION BY HASH (listener)` with 8 and 64 partitions, side by side in one
//! database, each filled with the same pairs; then the relay's group commit on each (issue 19, docs/SCALE.md).
//!
//! The write is the relay's `WRITE_HELD` (stream-relay/src/db/commit.rs) with only the table and the conflict key
//! changed: one autocommit statement that checks the batch's listeners' `guard_epochs` and upserts B vouchers from
//! `unnest` arrays `ON CONFLICT ... DO UPDATE ... WHERE cumulative < EXCLUDED.cumulative`, each voucher raising the
//! cumulative of a stored pair (one voucher per pair per batch, the pairs visited round-robin in a shuffled order, as
//! every live listener sends one per second). A primary key of a partitioned table must contain the partition key, so
//! the partitioned tables' key is `(listener, grant_id, payee)`: equivalent to `(grant_id, payee)`, a grant having
//! exactly one listener, and the relay knows every voucher's listener. Led by the listener, it also serves what
//! `vouchers_listener` served, so the partitioned tables drop that index.
//!
//! Prints, per table and batch size: rows/s on one connection, the connection's backend CPU µs per row (its
//! `/proc/<pid>/stat`, so Postgres must run on this machine), statement (= commit) latency p50/p99 as the client sees
//! it, WAL bytes per row (the server's `pg_current_wal_lsn()` over the timed run, started after a `CHECKPOINT`, so it
//! holds the first full-page image of each page touched; and `EXPLAIN (ANALYZE, WAL)` of batches after it, when the
//! pages already have theirs), the share of updates that were heap-only, and then each table's size. Asserts nothing.
//!
//! Run: `make bench-partitions` (or `cargo bench -p beatstream-stream-relay --bench partitions`). The database:
//! `BEATSTREAM_BENCH_DATABASE_URL` if set (the bench works in a schema of its own there and drops it), otherwise a
//! throwaway database from the testkit (`DATABASE_URL`'s server, else 127.0.0.1:5432, else a private cluster).
//! Knobs: `BENCH_PAIRS` (1,000,000), `BENCH_SECS` per configuration (12), `BENCH_BATCHES` (`50,500`),
//! `BENCH_PARTITIONS` (`0,8,64`; 0 is the unpartitioned table). Run under `nice`, the backends it uses take the same
//! niceness (where this process may set it), so the measurement yields to other work on the machine.

use std::{
    fmt::Write as _,
    time::{Duration, Instant},
};

use beatstream_testkit::TestDb;
use hdrhistogram::Histogram;
use sqlx::{Connection, Executor, PgConnection, Row};

/// Pairs per listener (one grant per listener, this many artists paid from it).
const PAYEES_PER_GRANT: u64 = 4;
/// Distinct artists the pairs pay.
const ARTISTS: u64 = 10_000;
/// Chain id of the guard epochs.
const CHAIN_ID: i64 = 31_337;
/// Base units per second a voucher adds (1e15: 0.001 of an 18-decimal token).
const RATE: u128 = 1_000_000_000_000_000;
/// Rows per fill statement.
const FILL_CHUNK: u64 = 50_000;
/// Batches run under `EXPLAIN (ANALYZE, WAL)` after each timed run.
const WAL_SAMPLES: usize = 10;

/// The relay's `WRITE_HELD` with the table (`{t}`) and the conflict key (`{k}`) left open.
const WRITE_HELD: &str = "
    WITH changed AS (
        SELECT t.l FROM unnest($6::bytea[], $7::int8[]) AS t(l, e)
        WHERE coalesce((SELECT g.epoch FROM guard_epochs g WHERE g.chain_id = $8 AND g.listener = t.l), 0) <> t.e
    ), written AS (
        INSERT INTO {t} (grant_id, payee, listener, cumulative, signature)
        SELECT g, p, l, c::numeric, s FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
               AS u(g, p, l, c, s)
        WHERE NOT EXISTS (SELECT 1 FROM changed)
        ON CONFLICT ({k}) DO UPDATE
           SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature, updated_at = now()
           WHERE {t}.cumulative < EXCLUDED.cumulative
        RETURNING 1
    )
    SELECT l FROM changed
    UNION ALL
    SELECT NULL FROM (SELECT pg_notify('beatstream_vouchers', '')) AS n WHERE NOT EXISTS (SELECT 1 FROM changed)";

/// The same upsert alone (what writes WAL in `WRITE_HELD`), for `EXPLAIN (ANALYZE, WAL)`.
const UPSERT: &str = "
    INSERT INTO {t} (grant_id, payee, listener, cumulative, signature)
    SELECT g, p, l, c::numeric, s FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::text[], $5::bytea[])
           AS u(g, p, l, c, s)
    ON CONFLICT ({k}) DO UPDATE
       SET cumulative = EXCLUDED.cumulative, signature = EXCLUDED.signature, updated_at = now()
       WHERE {t}.cumulative < EXCLUDED.cumulative";

/// One table layout under test.
#[derive(Clone, Debug)]
struct Layout {
    /// Hash partitions by listener; 0 for the unpartitioned table.
    partitions: u32,
}

impl Layout {
    /// The table's name.
    fn table(&self) -> String {
        match self.partitions {
            0 => "vouchers_plain".to_owned(),
            n => format!("vouchers_hash{n}"),
        }
    }

    /// What the output calls it.
    fn label(&self) -> String {
        match self.partitions {
            0 => "unpartitioned".to_owned(),
            n => format!("hash(listener) × {n}"),
        }
    }

    /// The upsert's conflict key (the primary key).
    fn key(&self) -> &'static str {
        match self.partitions {
            0 => "grant_id, payee",
            _ => "listener, grant_id, payee",
        }
    }

    /// `sql` with the table and key filled in.
    fn statement(&self, sql: &str) -> String {
        sql.replace("{t}", &self.table()).replace("{k}", self.key())
    }

    /// The relations holding rows: the table itself, or its partitions (`pg_partition_tree` returns nothing for a
    /// table that is not partitioned).
    fn leaves_sql(&self) -> String {
        match self.partitions {
            0 => format!("SELECT '{}'::regclass AS relid", self.table()),
            _ => format!("SELECT relid FROM pg_partition_tree('{}') WHERE isleaf", self.table()),
        }
    }
}

/// The pairs and what each has been paid so far.
struct Pairs {
    grant: Vec<[u8; 32]>,
    payee: Vec<[u8; 20]>,
    listener: Vec<[u8; 20]>,
    /// The order batches visit the pairs in (a shuffle of all of them).
    order: Vec<u32>,
}

impl Pairs {
    /// `n` pairs: listener `i / PAYEES_PER_GRANT` with its one grant, paying that many distinct artists.
    fn new(n: u64) -> Self {
        let mut grant = Vec::with_capacity(n as usize);
        let mut payee = Vec::with_capacity(n as usize);
        let mut listener = Vec::with_capacity(n as usize);
        for i in 0..n {
            let l = i / PAYEES_PER_GRANT;
            let k = i % PAYEES_PER_GRANT;
            grant.push(bytes::<32>(l, 1));
            listener.push(bytes::<20>(l, 2));
            // 7919 k mod 10,000 differs for k < 4: a grant's payees are distinct.
            payee.push(bytes::<20>((mix(l) + k * 7919) % ARTISTS, 3));
        }
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut state = 0x5eed;
        for i in (1..order.len()).rev() {
            state = mix(state);
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        Self { grant, payee, listener, order }
    }

    fn len(&self) -> usize {
        self.grant.len()
    }
}

/// splitmix64: a well-mixed 64-bit function of `x`.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `N` pseudo-random bytes for (`seed`, `salt`): stands in for a hash or an address.
fn bytes<const N: usize>(seed: u64, salt: u64) -> [u8; N] {
    let mut out = [0u8; N];
    for (j, chunk) in out.chunks_mut(8).enumerate() {
        let word = mix(seed ^ mix(salt.wrapping_mul(0x100) + j as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    out
}

/// A writer's place in the pairs and the seconds each pair has been paid for, per layout.
struct Cursor {
    next: usize,
    seconds: Vec<u32>,
    nonce: u64,
}

impl Cursor {
    fn new(pairs: usize) -> Self {
        Self { next: 0, seconds: vec![0; pairs], nonce: 0 }
    }
}

/// The statement's arrays for the next `b` vouchers.
struct Batch {
    grant: Vec<Vec<u8>>,
    payee: Vec<Vec<u8>>,
    listener: Vec<Vec<u8>>,
    cumulative: Vec<String>,
    signature: Vec<Vec<u8>>,
    epoch_listener: Vec<Vec<u8>>,
    epoch: Vec<i64>,
}

impl Batch {
    fn next(pairs: &Pairs, cursor: &mut Cursor, b: usize) -> Self {
        let mut batch = Self {
            grant: Vec::with_capacity(b),
            payee: Vec::with_capacity(b),
            listener: Vec::with_capacity(b),
            cumulative: Vec::with_capacity(b),
            signature: Vec::with_capacity(b),
            epoch_listener: Vec::new(),
            epoch: Vec::new(),
        };
        for _ in 0..b {
            let i = pairs.order[cursor.next] as usize;
            cursor.next = (cursor.next + 1) % pairs.len();
            cursor.seconds[i] += 1;
            cursor.nonce += 1;
            batch.grant.push(pairs.grant[i].to_vec());
            batch.payee.push(pairs.payee[i].to_vec());
            batch.listener.push(pairs.listener[i].to_vec());
            batch.cumulative.push((RATE * (1 + u128::from(cursor.seconds[i]))).to_string());
            batch.signature.push(bytes::<65>(cursor.nonce, 4).to_vec());
        }
        let mut listeners = batch.listener.clone();
        listeners.sort_unstable();
        listeners.dedup();
        batch.epoch = vec![1; listeners.len()];
        batch.epoch_listener = listeners;
        batch
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.grant.clone())
            .bind(self.payee.clone())
            .bind(self.listener.clone())
            .bind(self.cumulative.clone())
            .bind(self.signature.clone())
    }
}

/// A connection and its backend process.
struct Backend {
    conn: PgConnection,
    pid: i32,
}

impl Backend {
    async fn connect(url: &str, schema: &str) -> eyre::Result<Self> {
        let mut conn = PgConnection::connect(url).await?;
        conn.execute(format!("SET search_path = {schema}, public").as_str()).await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut conn).await?;
        follow_niceness(pid);
        Ok(Self { conn, pid })
    }

    /// The backend's user + system CPU time so far, if its `/proc` entry is readable here.
    fn cpu(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Some(Duration::from_micros(ticks * 1_000_000 / hz))
    }

    async fn lsn(&mut self) -> eyre::Result<i64> {
        Ok(sqlx::query_scalar("SELECT (pg_current_wal_lsn() - '0/0')::int8")
            .fetch_one(&mut self.conn)
            .await?)
    }
}

/// Gives backend `pid` this process's niceness when that is above 0 (so `nice make bench-partitions` also yields
/// on the Postgres side); silently nothing where it may not.
fn follow_niceness(pid: i32) {
    // SAFETY: plain syscalls on a process id; failures are reported through the return value only.
    unsafe {
        let own = libc::getpriority(libc::PRIO_PROCESS, 0);
        if own > 0 {
            libc::setpriority(libc::PRIO_PROCESS, pid as libc::id_t, own);
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().replace('_', "").parse().ok()).unwrap_or(default)
}

fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// Creates the schema's domains, `grants`, `guard_epochs` and the tables of `layouts`, and fills them with `pairs`.
async fn setup(db: &mut Backend, pairs: &Pairs, layouts: &[Layout]) -> eyre::Result<()> {
    db.conn
        .execute(
            "CREATE DOMAIN address AS BYTEA CHECK (octet_length(VALUE) = 20);
             CREATE DOMAIN hash32 AS BYTEA CHECK (octet_length(VALUE) = 32);
             CREATE DOMAIN amount AS NUMERIC(78, 0) CHECK (VALUE >= 0);
             CREATE TABLE grants (grant_id hash32 PRIMARY KEY, listener address NOT NULL);
             CREATE TABLE guard_epochs (chain_id BIGINT NOT NULL, listener address NOT NULL,
                                        epoch BIGINT NOT NULL DEFAULT 1, PRIMARY KEY (chain_id, listener))",
        )
        .await?;
    let columns = "grant_id   hash32 NOT NULL,
                   payee      address NOT NULL,
                   listener   address NOT NULL,
                   cumulative amount NOT NULL,
                   signature  BYTEA NOT NULL CHECK (octet_length(signature) = 65),
                   updated_at TIMESTAMPTZ NOT NULL DEFAULT now()";
    for layout in layouts {
        let t = layout.table();
        let mut ddl = String::new();
        if layout.partitions == 0 {
            write!(ddl, "CREATE TABLE {t} ({columns}) WITH (fillfactor = 70);")?;
        } else {
            write!(ddl, "CREATE TABLE {t} ({columns}) PARTITION BY HASH (listener);")?;
            for r in 0..layout.partitions {
                write!(
                    ddl,
                    "CREATE TABLE {t}_{r} PARTITION OF {t} FOR VALUES WITH (MODULUS {}, REMAINDER {r})
                     WITH (fillfactor = 70);",
                    layout.partitions
                )?;
            }
        }
        db.conn.execute(ddl.as_str()).await?;
    }

    // Grants and epochs: one per listener.
    let listeners = pairs.len() as u64 / PAYEES_PER_GRANT;
    let mut start = 0;
    while start < listeners {
        let end = (start + FILL_CHUNK).min(listeners);
        let idx =
            (start * PAYEES_PER_GRANT..end * PAYEES_PER_GRANT).step_by(PAYEES_PER_GRANT as usize);
        let g: Vec<Vec<u8>> = idx.clone().map(|i| pairs.grant[i as usize].to_vec()).collect();
        let l: Vec<Vec<u8>> = idx.map(|i| pairs.listener[i as usize].to_vec()).collect();
        sqlx::query("INSERT INTO grants SELECT * FROM unnest($1::bytea[], $2::bytea[])")
            .bind(&g)
            .bind(&l)
            .execute(&mut db.conn)
            .await?;
        sqlx::query("INSERT INTO guard_epochs SELECT $2, l, 1 FROM unnest($1::bytea[]) AS l")
            .bind(&l)
            .bind(CHAIN_ID)
            .execute(&mut db.conn)
            .await?;
        start = end;
    }

    // The first table from the client, the others copied from it on the server.
    let first = layouts[0].table();
    let mut start = 0;
    while start < pairs.len() as u64 {
        let end = (start + FILL_CHUNK).min(pairs.len() as u64) as usize;
        let range = start as usize..end;
        sqlx::query(&format!(
            "INSERT INTO {first} (grant_id, payee, listener, cumulative, signature)
             SELECT g, p, l, {RATE}, sha512(g) || substr(sha256(p), 1, 1)
             FROM unnest($1::bytea[], $2::bytea[], $3::bytea[]) AS u(g, p, l)"
        ))
        .bind(pairs.grant[range.clone()].iter().map(|b| b.to_vec()).collect::<Vec<_>>())
        .bind(pairs.payee[range.clone()].iter().map(|b| b.to_vec()).collect::<Vec<_>>())
        .bind(pairs.listener[range].iter().map(|b| b.to_vec()).collect::<Vec<_>>())
        .execute(&mut db.conn)
        .await?;
        start = end as u64;
    }
    for layout in &layouts[1..] {
        let t = layout.table();
        db.conn.execute(format!("INSERT INTO {t} SELECT * FROM {first}").as_str()).await?;
    }

    // Keys and indexes after the rows (as a restore would), then statistics and the visibility map.
    for layout in layouts {
        let t = layout.table();
        let mut ddl = format!(
            "ALTER TABLE {t} ADD PRIMARY KEY ({});
             CREATE INDEX {t}_payee ON {t} (payee);
             ALTER TABLE {t} ADD FOREIGN KEY (grant_id) REFERENCES grants (grant_id);",
            layout.key()
        );
        if layout.partitions == 0 {
            write!(ddl, "CREATE INDEX {t}_listener ON {t} (listener);")?;
        }
        db.conn.execute(ddl.as_str()).await?;
    }
    db.conn.execute("VACUUM ANALYZE").await?;
    Ok(())
}

/// Heap and index bytes of a layout, and its largest leaf's index bytes.
async fn sizes(db: &mut Backend, layout: &Layout) -> eyre::Result<(i64, i64, i64)> {
    let row = sqlx::query(&format!(
        "SELECT sum(pg_table_size(relid))::int8, sum(pg_indexes_size(relid))::int8,
                max(pg_indexes_size(relid))::int8
         FROM ({}) AS leaves",
        layout.leaves_sql()
    ))
    .fetch_one(&mut db.conn)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

/// Updates and heap-only updates of a layout's leaves so far.
async fn hot_counts(db: &mut Backend, layout: &Layout) -> eyre::Result<(i64, i64)> {
    // Flush this backend's pending counters at the end of the next statement, then read them.
    let _ = db.conn.execute("SELECT pg_stat_force_next_flush()").await;
    db.conn.execute("SELECT 1").await?;
    let row = sqlx::query(&format!(
        "SELECT coalesce(sum(n_tup_upd), 0)::int8, coalesce(sum(n_tup_hot_upd), 0)::int8
         FROM pg_stat_user_tables WHERE relid IN ({})",
        layout.leaves_sql()
    ))
    .fetch_one(&mut db.conn)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// One configuration's figures.
struct Figures {
    rows_per_s: f64,
    commits_per_s: f64,
    cpu_us_per_row: Option<f64>,
    cpu_share: Option<f64>,
    p50_ms: f64,
    p99_ms: f64,
    wal_per_row: f64,
    wal_steady_per_row: f64,
    fpi_steady_per_row: f64,
    hot_share: f64,
}

/// Runs batches of `b` on `layout` for `secs`, then [`WAL_SAMPLES`] under `EXPLAIN (ANALYZE, WAL)`.
async fn run(
    db: &mut Backend,
    layout: &Layout,
    pairs: &Pairs,
    cursor: &mut Cursor,
    b: usize,
    secs: u64,
) -> eyre::Result<Figures> {
    let write = layout.statement(WRITE_HELD);
    let upsert = format!("EXPLAIN (ANALYZE, WAL, COSTS OFF) {}", layout.statement(UPSERT));
    // Warm the prepared statement and the plan cache (a generic plan after five runs), untimed.
    for _ in 0..6 {
        let batch = Batch::next(pairs, cursor, b);
        batch
            .bind(sqlx::query(&write))
            .bind(batch.epoch_listener.clone())
            .bind(batch.epoch.clone())
            .bind(CHAIN_ID)
            .fetch_all(&mut db.conn)
            .await?;
    }
    let _ = db.conn.execute("CHECKPOINT").await;
    let (upd0, hot0) = hot_counts(db, layout).await?;

    let mut latency = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?;
    let mut rows = 0u64;
    let mut commits = 0u64;
    let lsn0 = db.lsn().await?;
    let cpu0 = db.cpu();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        let batch = Batch::next(pairs, cursor, b);
        let query = batch
            .bind(sqlx::query(&write))
            .bind(batch.epoch_listener.clone())
            .bind(batch.epoch.clone())
            .bind(CHAIN_ID);
        let t = Instant::now();
        let changed = query.fetch_all(&mut db.conn).await?;
        latency.record(t.elapsed().as_micros().max(1) as u64)?;
        eyre::ensure!(
            changed.iter().all(|r| r.try_get::<Option<Vec<u8>>, _>(0).ok().flatten().is_none()),
            "an epoch check failed: the bench's epochs are constant"
        );
        rows += b as u64;
        commits += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu1 = db.cpu();
    let lsn1 = db.lsn().await?;
    let (upd1, hot1) = hot_counts(db, layout).await?;

    let (mut wal_bytes, mut fpi, mut sampled) = (0u64, 0u64, 0u64);
    for _ in 0..WAL_SAMPLES {
        let batch = Batch::next(pairs, cursor, b);
        let plan: Vec<String> = batch
            .bind(sqlx::query(&upsert))
            .fetch_all(&mut db.conn)
            .await?
            .iter()
            .filter_map(|r| r.try_get(0).ok())
            .collect();
        // The top node's WAL line covers the whole statement.
        let line =
            plan.iter().find(|l| l.trim_start().starts_with("WAL:")).cloned().unwrap_or_default();
        for part in line.split_whitespace() {
            if let Some(v) = part.strip_prefix("bytes=") {
                wal_bytes += v.parse::<u64>().unwrap_or(0);
            } else if let Some(v) = part.strip_prefix("fpi=") {
                fpi += v.parse::<u64>().unwrap_or(0);
            }
        }
        sampled += b as u64;
    }

    let cpu = cpu0.zip(cpu1).map(|(a, z)| (z - a).as_secs_f64());
    let (h50, h99) = (latency.value_at_quantile(0.5), latency.value_at_quantile(0.99));
    Ok(Figures {
        rows_per_s: rows as f64 / wall,
        commits_per_s: commits as f64 / wall,
        cpu_us_per_row: cpu.map(|c| c * 1e6 / rows as f64),
        cpu_share: cpu.map(|c| c / wall),
        p50_ms: h50 as f64 / 1000.0,
        p99_ms: h99 as f64 / 1000.0,
        wal_per_row: (lsn1 - lsn0) as f64 / rows as f64,
        wal_steady_per_row: wal_bytes as f64 / sampled as f64,
        fpi_steady_per_row: fpi as f64 / sampled as f64,
        hot_share: if upd1 > upd0 { (hot1 - hot0) as f64 / (upd1 - upd0) as f64 } else { f64::NAN },
    })
}

fn mb(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let n = env_or("BENCH_PAIRS", 1_000_000).max(PAYEES_PER_GRANT * 100);
    let n = n - n % PAYEES_PER_GRANT;
    let secs = env_or("BENCH_SECS", 12).max(1);
    let batches = env_list("BENCH_BATCHES", &[50, 500]);
    let layouts: Vec<Layout> = env_list("BENCH_PARTITIONS", &[0, 8, 64])
        .into_iter()
        .map(|p| Layout { partitions: p as u32 })
        .collect();

    // The database: a given one (in a schema of our own), or a throwaway one.
    let schema = format!("partbench_{}", std::process::id());
    let (_throwaway, url) = match std::env::var("BEATSTREAM_BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => (None, url),
        _ => {
            let db = TestDb::empty().await?;
            let url = db.url().to_owned();
            (Some(db), url)
        }
    };
    let mut admin = PgConnection::connect(&url).await?;
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await?;
    let result = bench(&url, &schema, n, secs, &batches, &layouts).await;
    admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await?;
    result
}

async fn bench(
    url: &str,
    schema: &str,
    n: u64,
    secs: u64,
    batches: &[u64],
    layouts: &[Layout],
) -> eyre::Result<()> {
    let mut db = Backend::connect(url, schema).await?;
    let settings: Vec<String> = sqlx::query_scalar(
        "SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings
         WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'shared_buffers', 'wal_level',
                        'full_page_writes', 'wal_compression', 'checkpoint_timeout', 'max_wal_size')
         ORDER BY name",
    )
    .fetch_all(&mut db.conn)
    .await?;
    let local = db.cpu().is_some();

    let started = Instant::now();
    let pairs = Pairs::new(n);
    setup(&mut db, &pairs, layouts).await?;
    println!(
        "\n## Voucher upserts on declarative hash partitions: {n} pairs ({} listeners × {PAYEES_PER_GRANT} payees), \
         {secs} s per row\n",
        n / PAYEES_PER_GRANT
    );
    println!("Postgres: {}", settings.join(", "));
    println!(
        "Filled {} tables in {:.0} s. One connection; each batch is one autocommit statement (the relay's \
         WRITE_HELD). Backend CPU from /proc/<pid>/stat{}.\n",
        layouts.len(),
        started.elapsed().as_secs_f64(),
        if local { "" } else { " (not readable: Postgres is not on this machine)" }
    );

    let mut cursors: Vec<Cursor> = layouts.iter().map(|_| Cursor::new(pairs.len())).collect();
    println!(
        "| table | B | rows/s | commits/s | backend µs/row | backend CPU | p50 ms | p99 ms | WAL B/row (after checkpoint) \
         | WAL B/row (steady) | FPI/row (steady) | HOT updates |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &b in batches {
        for (layout, cursor) in layouts.iter().zip(cursors.iter_mut()) {
            let f = run(&mut db, layout, &pairs, cursor, b as usize, secs).await?;
            println!(
                "| {} | {b} | {:.0} | {:.0} | {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.3} | {:.0}% |",
                layout.label(),
                f.rows_per_s,
                f.commits_per_s,
                f.cpu_us_per_row.map_or("n/a".to_owned(), |c| format!("{c:.1}")),
                f.cpu_share.map_or("n/a".to_owned(), |c| format!("{:.0}%", c * 100.0)),
                f.p50_ms,
                f.p99_ms,
                f.wal_per_row,
                f.wal_steady_per_row,
                f.fpi_steady_per_row,
                f.hot_share * 100.0,
            );
        }
    }

    println!("\n| table | heap MB | index MB | total MB | largest partition's indexes MB |");
    println!("|---|---:|---:|---:|---:|");
    for layout in layouts {
        let (heap, index, largest) = sizes(&mut db, layout).await?;
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} |",
            layout.label(),
            mb(heap),
            mb(index),
            mb(heap + index),
            mb(largest)
        );
    }
    println!(
        "\nWAL B/row (after checkpoint): pg_current_wal_lsn() over the timed run, started right after a CHECKPOINT, \
         so it holds the first full-page image of each page touched and the commit records (server-wide: other \
         writers on the server count too). WAL B/row (steady): EXPLAIN (ANALYZE, WAL) of {WAL_SAMPLES} more batches \
         of the upsert alone, after the run (no commit record)."
    );
    Ok(())
}
