//! The studio's audio paths over HTTP, on anvil with the real contracts, a real Postgres and a directory store (the
//! integration tests' harness): upload throughput in seconds of audio per second of wall time per format, through
//! `POST /studio/artists/{label}/tracks` with a signed-in artist; and chunk serving, `GET /audio/{root}/{index}`,
//! to many concurrent listeners next to the machine's own ceiling in the same run: the same chunk bytes as files,
//! served by a minimal static-file route (read the file, answer it) on the same runtime and the same load
//! generator. Prints numbers; asserts nothing.
//!
//! `cargo bench -p beatstream-studio --bench audio` (release profile; `BENCH_SECS` sets each serving row's window,
//! default 10; `BENCH_LISTENERS`, default `10,100,1000`). Figures in docs/BENCHMARKS.md, "Audio".

#[allow(dead_code, unreachable_pub)]
#[path = "../tests/it/harness.rs"]
mod harness;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy::primitives::B256;
use axum::{
    extract::{Path as UrlPath, State},
    http::{StatusCode as Status, header},
    response::IntoResponse,
};
use beatstream_audio::{demo, encode_chunk};
use hdrhistogram::Histogram;
use reqwest::StatusCode;

use crate::harness::Env;

/// Seconds of generated audio in the WAV and FLAC uploads.
const SECONDS: u32 = 300;
const RUNS: usize = 3;
/// The fixtures are 2–3 s long: each run uploads them this many times, one after the other.
const FIXTURE_REPEAT: usize = 20;
const LABEL: &str = "bench";

#[tokio::main]
async fn main() -> eyre::Result<()> {
    let env = Env::new().await?;
    let key = env.chain.anvil.signer(1);
    env.chain.register(&key, LABEL, 10).await?;
    let token = env.sign_in(&key).await?;
    let cores = std::thread::available_parallelism()?.get();
    println!("studio, anvil, Postgres and this load generator on one machine: {cores} cores\n");

    let wav = demo::track(1, SECONDS);
    let flac = encode_chunk(demo::SAMPLE_RATE, 2, &demo::pcm(1, SECONDS));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../audio/tests/fixtures");
    let sources = [
        ("WAV 44.1 kHz stereo (demo, 300 s)", wav.clone(), 1),
        ("FLAC 44.1 kHz stereo (demo, 300 s)", flac, 1),
        ("MP3 64 kb/s (fixture, 2.3 s)", std::fs::read(fixtures.join("tone.mp3"))?, FIXTURE_REPEAT),
        (
            "Opus 48 kb/s (fixture, 2.7 s)",
            std::fs::read(fixtures.join("tone.opus"))?,
            FIXTURE_REPEAT,
        ),
    ];
    println!("upload over HTTP, one upload at a time, best of {RUNS} runs");
    println!("{:<38} {:>10} {:>14} {:>12}", "source", "MB", "audio s/s", "best run s");
    for (name, body, repeat) in &sources {
        let mut fastest = Duration::MAX;
        let mut seconds = 0.0;
        for _ in 0..RUNS {
            let start = Instant::now();
            for _ in 0..*repeat {
                let (status, answer) = env.upload(Some(&token), LABEL, body.clone()).await?;
                eyre::ensure!(status == StatusCode::CREATED, "upload: {status} {answer}");
                seconds = answer["durationMs"].as_f64().expect("durationMs") / 1000.0;
            }
            fastest = fastest.min(start.elapsed());
        }
        let audio = seconds * *repeat as f64;
        println!(
            "{:<38} {:>10.2} {:>14.0} {:>12.3}",
            name,
            body.len() as f64 * *repeat as f64 / 1e6,
            audio / fastest.as_secs_f64(),
            fastest.as_secs_f64()
        );
    }

    // Serving: the 300 s WAV track's chunks, by index from the studio and as files from the static route.
    let (status, answer) = env.upload(Some(&token), LABEL, wav).await?;
    eyre::ensure!(status == StatusCode::CREATED, "upload: {status} {answer}");
    let root: B256 = answer["root"].as_str().expect("root").parse()?;
    let chunk_count = answer["chunkCount"].as_u64().expect("chunkCount") as u32;
    let files = tempfile::tempdir()?;
    let mut total = 0;
    for index in 0..chunk_count {
        let fetched = env.fetch(&format!("/audio/{root}/{index}"), &[]).await?;
        eyre::ensure!(fetched.status == StatusCode::OK, "chunk {index}: {}", fetched.status);
        total += fetched.body.len();
        std::fs::write(files.path().join(index.to_string()), &fetched.body)?;
    }
    let static_addr = serve_static(files.path().to_owned()).await?;

    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let listeners: Vec<usize> = std::env::var("BENCH_LISTENERS")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .map(|n| n.trim().parse().expect("BENCH_LISTENERS: numbers"))
        .collect();
    println!(
        "\nchunk serving: {chunk_count} chunks of {:.1} KB on average; each listener fetches chunks in sequence on \
         its own keep-alive HTTP/1.1 connection; {secs} s per row after 2 s of warm-up",
        total as f64 / f64::from(chunk_count) / 1e3
    );
    println!(
        "{:<10} {:>9} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "listeners", "server", "requests/s", "MB/s", "p50 ms", "p99 ms", "max ms"
    );
    for n in listeners {
        for (server, base) in [
            ("studio", format!("http://{}/audio/{root}", env.addr)),
            ("static", format!("http://{static_addr}/static")),
        ] {
            let row = load(&base, chunk_count, n, Duration::from_secs(secs)).await?;
            println!(
                "{:<10} {:>9} {:>12.0} {:>10.1} {:>10.2} {:>10.2} {:>10.2}",
                n,
                server,
                row.requests as f64 / row.window.as_secs_f64(),
                row.bytes as f64 / row.window.as_secs_f64() / 1e6,
                row.latency.value_at_quantile(0.5) as f64 / 1e3,
                row.latency.value_at_quantile(0.99) as f64 / 1e3,
                row.latency.max() as f64 / 1e3,
            );
        }
    }
    Ok(())
}

/// Serves the files of `dir` at `/static/{name}` on a free port: read the file, answer its bytes.
async fn serve_static(dir: PathBuf) -> eyre::Result<std::net::SocketAddr> {
    async fn file(
        State(dir): State<Arc<PathBuf>>,
        UrlPath(name): UrlPath<u32>,
    ) -> impl IntoResponse {
        match tokio::fs::read(dir.join(name.to_string())).await {
            Ok(bytes) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes)),
            Err(_) => Err(Status::NOT_FOUND),
        }
    }
    let app = axum::Router::new()
        .route("/static/{name}", axum::routing::get(file))
        .with_state(Arc::new(dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await.expect("static serves") });
    Ok(addr)
}

/// One row's result.
struct Row {
    requests: u64,
    bytes: u64,
    window: Duration,
    /// Microseconds.
    latency: Histogram<u64>,
}

/// `n` listeners fetch `{base}/{index}` in sequence (each from its own starting chunk) for 2 s of warm-up, then
/// `window` measured.
async fn load(base: &str, chunk_count: u32, n: usize, window: Duration) -> eyre::Result<Row> {
    let warm = Instant::now() + Duration::from_secs(2);
    let end = warm + window;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let base = base.to_owned();
            tokio::spawn(async move {
                // A client per listener: its own connection, kept alive.
                let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
                let mut latency = Histogram::<u64>::new(3)?;
                let (mut requests, mut bytes) = (0u64, 0u64);
                let mut index = (i as u32 * 7) % chunk_count;
                loop {
                    let start = Instant::now();
                    if start >= end {
                        break;
                    }
                    let response = http.get(format!("{base}/{index}")).send().await?;
                    eyre::ensure!(response.status() == StatusCode::OK, "{}", response.status());
                    let body = response.bytes().await?;
                    if start >= warm {
                        latency.record(start.elapsed().as_micros() as u64)?;
                        requests += 1;
                        bytes += body.len() as u64;
                    }
                    index = (index + 1) % chunk_count;
                }
                Ok::<_, eyre::Report>((requests, bytes, latency))
            })
        })
        .collect();
    let mut row = Row { requests: 0, bytes: 0, window, latency: Histogram::new(3)? };
    for task in tasks {
        let (requests, bytes, latency) = task.await??;
        row.requests += requests;
        row.bytes += bytes;
        row.latency.add(latency)?;
    }
    Ok(row)
}
