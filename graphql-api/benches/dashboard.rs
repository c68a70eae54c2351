//! Artist-dashboard benchmark: 1,000,000 settlements (and as many sessions) in Postgres, the API in this process,
//! concurrent clients posting the artist-dashboard query over HTTP. Reports p50/p99/max latency and requests/s for
//! the busiest artist (a tenth of all settlements) and for a typical one.
//!
//! The rows are generated with SQL in the shapes the indexer and relay write (a synthetic chain: this measures the
//! API and its indexes, not the indexer). Run: `make bench-api` (or `cargo bench -p beatstream-graphql-api --bench
//! dashboard`; `BENCH_SETTLEMENTS`, `BENCH_CLIENTS`, `BENCH_SECS` override). Prints numbers; asserts nothing.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use beatstream_graphql_api::{Config, Options, Server};
use beatstream_testkit::TestDb;
use hdrhistogram::Histogram;
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

const QUERY: &str = r#"query ArtistDashboard($name: String!) {
  artist(name: $name) {
    name address ratePerSecond { raw usdc } texts { key value }
    earnings { earned { raw usdc } withdrawable { raw usdc } pending { raw usdc } settlements }
    stats { streams seconds uniqueListeners }
    tracks(first: 10) { edges { node { id title stats { streams seconds revenue { raw } } } } }
    topTracks(limit: 5) { track { id title } streams revenue { raw } }
    settlements(first: 20) { edges { cursor node { blockNumber listener amount { raw } net { raw } } } }
    series(interval: DAY) { start amount { raw } settlements }
  }
}"#;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let settlements = env_or("BENCH_SETTLEMENTS", 1_000_000) as i64;
    let clients = env_or("BENCH_CLIENTS", 8) as usize;
    let secs = env_or("BENCH_SECS", 15);
    let db = TestDb::new().await?;
    let pool = PgPool::connect(db.url()).await?;
    let started = Instant::now();
    fill(&pool, settlements).await?;
    eprintln!("generated {settlements} settlements and sessions in {:.0?}", started.elapsed());

    let options = Options { listen: "127.0.0.1:0".parse()?, ..Default::default() };
    let stop = CancellationToken::new();
    let server = Server::bind(
        Config {
            database: beatstream_primitives::db::DatabaseArgs::new(db.url().to_owned()),
            rpc: Default::default(),
            deployment: "unused.json".into(),
            chain_id: Some(31337),
            options,
        },
        stop.clone(),
    )
    .await?;
    let addr = server.local_addr()?;
    let task = tokio::spawn(server.serve());

    println!("\n## Artist dashboard, {settlements} settlements, {secs} s per row\n");
    println!(
        "| artist | settlements | sessions | clients | requests/s | p50 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let runs = [
        ("alice", "busiest (10% of all)", 1),
        ("artist500", "typical", 1),
        ("alice", "busiest (10% of all)", clients),
        ("artist500", "typical", clients),
    ];
    for (name, label, clients) in runs {
        let counts: (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM vault_settlements s JOIN artists a ON a.addr = s.payee
                     WHERE a.label = $1),
                    (SELECT count(*) FROM sessions s JOIN artists a ON a.addr = s.payee WHERE a.label = $1)",
        )
        .bind(name)
        .fetch_one(&pool)
        .await?;
        // Warm up, and check the answer is real.
        let body = request_body(name);
        let (_, first) = post_once(addr, &body).await?;
        eyre::ensure!(
            first.contains("\"earnings\"") && !first.contains("\"errors\""),
            "bad answer: {first}"
        );
        let (rps, hist) = load(addr, &body, clients, Duration::from_secs(secs)).await?;
        println!(
            "| {label} | {} | {} | {clients} | {rps:.0} | {:.1} | {:.1} | {:.1} |",
            counts.0,
            counts.1,
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0,
            hist.max() as f64 / 1000.0
        );
    }
    stop.cancel();
    task.await??;
    Ok(())
}

fn request_body(name: &str) -> String {
    serde_json::json!({ "query": QUERY, "variables": { "name": name } }).to_string()
}

/// `clients` keep-alive connections posting `body` back to back for `duration`.
async fn load(
    addr: SocketAddr,
    body: &str,
    clients: usize,
    duration: Duration,
) -> eyre::Result<(f64, Histogram<u64>)> {
    let body: Arc<str> = body.into();
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).expect("valid");
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut conn = BufReader::new(stream);
            while Instant::now() < deadline {
                let t = Instant::now();
                request(&mut conn, &body).await?;
                hist.record(t.elapsed().as_micros() as u64)?;
            }
            Ok::<_, eyre::Report>(hist)
        }));
    }
    let mut total = Histogram::<u64>::new(3)?;
    for t in tasks {
        total.add(t.await??)?;
    }
    Ok((total.len() as f64 / duration.as_secs_f64(), total))
}

/// One request on a keep-alive connection; returns the response body.
async fn request(conn: &mut BufReader<tokio::net::TcpStream>, body: &str) -> eyre::Result<String> {
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.get_mut().write_all(head.as_bytes()).await?;
    conn.get_mut().write_all(body.as_bytes()).await?;
    let mut length = None;
    let mut chunked = false;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = Some(v.trim().parse::<usize>()?);
        }
        chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
    }
    let mut out = Vec::new();
    if let Some(n) = length {
        out.resize(n, 0);
        conn.read_exact(&mut out).await?;
    } else if chunked {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size).await?;
            let n = usize::from_str_radix(size.trim(), 16)?;
            let mut chunk = vec![0; n + 2];
            conn.read_exact(&mut chunk).await?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(String::from_utf8(out)?)
}

async fn post_once(addr: SocketAddr, body: &str) -> eyre::Result<((), String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let mut conn = BufReader::new(stream);
    Ok(((), request(&mut conn, body).await?))
}

/// A synthetic mirror: 1,000 artists with five tracks each, 100,000 listeners with a grant each, `n` settlements
/// (a tenth to `alice`, the rest spread over the others) with their derived rows, and `n` closed sessions in the
/// same proportions, plus a pending voucher per pair.
async fn fill(pool: &PgPool, n: i64) -> eyre::Result<()> {
    let statements = [
        "INSERT INTO chain_cursor (chain_id, block_number, block_hash) VALUES (31337, $1 / 100 + 1, decode(repeat('00', 32), 'hex'))",
        // Artists 1..1000; artist 1 is alice. node and addr are the number, padded.
        "INSERT INTO artists (chain_id, node, label, name, owner, addr, rate_per_second, registered_at, registered_block, updated_block)
         SELECT 31337, decode(lpad(to_hex(i), 64, '0'), 'hex'), l, l || '.beatstream.eth',
                decode(lpad(to_hex(i), 40, '0'), 'hex'), decode(lpad(to_hex(i), 40, '0'), 'hex'), 1000, now(), i, i
         FROM (SELECT i, CASE WHEN i = 1 THEN 'alice' ELSE 'artist' || i END AS l FROM generate_series(1, 1000) i) x",
        "INSERT INTO artist_texts (chain_id, node, key, value, updated_block)
         SELECT 31337, decode(lpad(to_hex(i), 64, '0'), 'hex'), k, k || ' of ' || i, 1
         FROM generate_series(1, 1000) i, unnest(ARRAY['avatar', 'description', 'genre']) k",
        "INSERT INTO tracks (chain_id, track_id, artist_node, title, duration, rate_per_second, content_hash, metadata_uri, published, published_at, updated_block)
         SELECT 31337, (a - 1) * 5 + t, decode(lpad(to_hex(a), 64, '0'), 'hex'), 'track ' || ((a - 1) * 5 + t), 180, 0,
                decode(lpad(to_hex((a - 1) * 5 + t), 64, '0'), 'hex'), 'ipfs://x', true, now(), 1
         FROM generate_series(1, 1000) a, generate_series(1, 5) t",
        "INSERT INTO grants (grant_id, chain_id, vault, listener, session_key, cap, expires_at, nonce, signature)
         SELECT decode('ff' || lpad(to_hex(l), 62, '0'), 'hex'), 31337, decode(repeat('aa', 20), 'hex'),
                decode('ee' || lpad(to_hex(l), 38, '0'), 'hex'), decode('dd' || lpad(to_hex(l), 38, '0'), 'hex'), 1000000000,
                now() + interval '1 day', 1, decode(repeat('11', 65), 'hex')
         FROM generate_series(1, 100000) l",
        // Settlement i: payee alice for every tenth, else one of artists 2..1000; listener i % 100000.
        "CREATE TEMP TABLE gen AS
         SELECT i, CASE WHEN i % 10 = 0 THEN 1 ELSE 2 + (i % 999) END AS artist, 1 + (i % 100000) AS listener
         FROM generate_series(1, $1) i",
        "INSERT INTO vault_settlements (chain_id, block_number, block_hash, block_time, tx_hash, log_index, grant_id, listener, payee, amount, cumulative, fee)
         SELECT 31337, i / 100, decode(lpad(to_hex(i / 100), 64, '0'), 'hex'),
                now() - interval '30 days' + make_interval(secs => i * 2.5), decode('cc' || lpad(to_hex(i / 100), 62, '0'), 'hex'),
                i % 100, decode('ff' || lpad(to_hex(listener), 62, '0'), 'hex'), decode('ee' || lpad(to_hex(listener), 38, '0'), 'hex'),
                decode(lpad(to_hex(artist), 40, '0'), 'hex'), 1000, i * 1000, 25
         FROM gen",
        "ALTER TABLE sessions DISABLE TRIGGER USER",
        "INSERT INTO sessions (session_id, grant_id, listener, payee, artist_node, track_id, rate_per_second, base_cumulative, seconds, amount, status, close_reason, relay_id, started_at, ended_at)
         SELECT md5(i::text)::uuid, decode('ff' || lpad(to_hex(listener), 62, '0'), 'hex'), decode('ee' || lpad(to_hex(listener), 38, '0'), 'hex'),
                decode(lpad(to_hex(artist), 40, '0'), 'hex'), decode(lpad(to_hex(artist), 64, '0'), 'hex'),
                (artist - 1) * 5 + 1 + i % 5, 1000, 0, 60, 60000, 'closed', 'stop', 'bench',
                now() - interval '30 days' + make_interval(secs => i * 2.5), now() - interval '30 days' + make_interval(secs => i * 2.5 + 60)
         FROM gen",
        // The listening totals as the migration backfills them (a million sessions in one statement through the
        // per-row trigger would measure bulk loading, not the API).
        "INSERT INTO payee_listeners SELECT DISTINCT payee, listener FROM sessions",
        "INSERT INTO track_listeners SELECT DISTINCT track_id, listener FROM sessions",
        "INSERT INTO payee_listening (payee, streams, seconds, amount, listeners)
         SELECT s.payee, count(*), sum(s.seconds), sum(s.amount), (SELECT count(*) FROM payee_listeners l WHERE l.payee = s.payee)
         FROM sessions s GROUP BY s.payee",
        "INSERT INTO track_listening (track_id, payee, streams, seconds, amount, listeners)
         SELECT s.track_id, (array_agg(s.payee))[1], count(*), sum(s.seconds), sum(s.amount),
                (SELECT count(*) FROM track_listeners l WHERE l.track_id = s.track_id)
         FROM sessions s GROUP BY s.track_id",
        "INSERT INTO track_listening_daily (day, track_id, streams, seconds, amount)
         SELECT (started_at AT TIME ZONE 'UTC')::date, track_id, count(*), sum(seconds), sum(amount) FROM sessions GROUP BY 1, 2",
        "ALTER TABLE sessions ENABLE TRIGGER USER",
        "INSERT INTO settled_pairs (chain_id, grant_id, payee, listener, cumulative, updated_block)
         SELECT 31337, grant_id, payee, (array_agg(listener))[1], max(cumulative), 1 FROM vault_settlements GROUP BY grant_id, payee",
        "INSERT INTO vouchers (grant_id, payee, listener, cumulative, signature)
         SELECT grant_id, payee, listener, cumulative + 1000, decode(repeat('22', 65), 'hex') FROM settled_pairs",
        "INSERT INTO payee_earnings (chain_id, payee, earned_total, fees_total, withdrawable, settlements, updated_block)
         SELECT 31337, payee, sum(amount - fee), sum(fee), sum(amount - fee), count(*), 1 FROM vault_settlements GROUP BY payee",
        "INSERT INTO settlement_hourly (chain_id, hour, payee, amount, fees, settlements)
         SELECT 31337, date_trunc('hour', block_time), payee, sum(amount - fee), sum(fee), count(*)
         FROM vault_settlements GROUP BY 2, 3",
        "INSERT INTO listener_accounts (chain_id, listener, available, deposited_total, updated_block)
         SELECT 31337, decode('ee' || lpad(to_hex(l), 38, '0'), 'hex'), 1000000, 1000000, 1 FROM generate_series(1, 100000) l",
        "ANALYZE",
    ];
    // One connection: `gen` is a temporary table.
    let mut conn = pool.acquire().await?;
    for sql in statements {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(n) } else { q };
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
