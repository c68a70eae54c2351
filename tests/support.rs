#![allow(dead_code)] // Each test binary uses its own part of what the end-to-end tests share.
//! What the end-to-end tests share: every service of the node in this process against one chain and database, a
//! relay frame reader and a GraphQL client over plain HTTP.

use std::{net::SocketAddr, time::Duration};

use beatstream_primitives::db::DatabaseArgs;
use beatstream_stream_relay::protocol::ServerFrame;
use beatstream_testkit::{TestDb, scene::Chain};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    task::JoinHandle,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A relay WebSocket.
pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The indexer, relay (250 ms beats), keeper (signing with anvil account `keeper`) and API, running until `stop`.
pub(crate) struct Services {
    pub(crate) relay_addr: SocketAddr,
    pub(crate) api_addr: SocketAddr,
    pub(crate) indexer_metrics: beatstream_indexer::Metrics,
    pub(crate) keeper_metrics: beatstream_keeper::Metrics,
    tasks: Vec<JoinHandle<eyre::Result<()>>>,
}

impl Services {
    /// Starts everything; `keeper_options` is tuned by the test (thresholds, intervals) and given its signer here.
    pub(crate) async fn start(
        chain: &Chain,
        db: &TestDb,
        keeper: usize,
        mut keeper_options: beatstream_keeper::Options,
        stop: &CancellationToken,
    ) -> eyre::Result<Self> {
        let deployment = chain.deployment_file.path().to_owned();
        let database = || DatabaseArgs::new(db.url().to_owned());
        let mut tasks: Vec<JoinHandle<eyre::Result<()>>> = Vec::new();

        let indexer_metrics = beatstream_indexer::Metrics::new();
        let indexer = beatstream_indexer::run_with_metrics(
            beatstream_indexer::Config {
                database: database(),
                rpc: chain.anvil.endpoint_url().into(),
                options: beatstream_indexer::Options {
                    poll_interval_ms: 50,
                    ..beatstream_indexer::Options::new(deployment.clone())
                },
            },
            indexer_metrics.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move { Ok(indexer.await?) }));

        let mut relay_config =
            beatstream_stream_relay::Config::new(db.url().to_owned(), chain.anvil.endpoint_url());
        relay_config.options.listen = "127.0.0.1:0".parse()?;
        relay_config.deployment = Some(deployment.clone());
        relay_config.options.beat_ms = 250;
        let relay = beatstream_stream_relay::Server::bind(relay_config, stop.clone()).await?;
        let relay_addr = relay.local_addr()?;
        tasks.push(tokio::spawn(async move { Ok(relay.serve().await?) }));

        keeper_options.signer.private_key = Some(chain.anvil.private_key_hex(keeper));
        let keeper_metrics = beatstream_keeper::Metrics::new();
        let keeper = beatstream_keeper::run_with_metrics(
            beatstream_keeper::Config {
                database: database(),
                rpc: chain.anvil.endpoint_url().into(),
                deployment: deployment.clone(),
                options: keeper_options,
            },
            keeper_metrics.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move { Ok(keeper.await?) }));

        let api = beatstream_graphql_api::Server::bind(
            beatstream_graphql_api::Config {
                database: database(),
                rpc: Default::default(),
                deployment,
                chain_id: None,
                options: beatstream_graphql_api::Options {
                    listen: "127.0.0.1:0".parse()?,
                    ..Default::default()
                },
            },
            stop.clone(),
        )
        .await?;
        let api_addr = api.local_addr()?;
        tasks.push(tokio::spawn(async move { Ok(api.serve().await?) }));
        Ok(Self { relay_addr, api_addr, indexer_metrics, keeper_metrics, tasks })
    }

    /// Waits until the indexer has mirrored the chain's head.
    pub(crate) async fn indexed(&self, chain: &Chain) -> eyre::Result<()> {
        let head = chain.head().await? as i64;
        for _ in 0..600 {
            if self.indexer_metrics.indexed.get() >= head {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eyre::bail!("the indexer did not reach block {head}")
    }

    /// Waits for every service to end (after `stop` was cancelled); the first failure is returned.
    pub(crate) async fn join(self) -> eyre::Result<()> {
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

/// The relay's next text frame, within 10 s.
pub(crate) async fn recv(ws: &mut Ws) -> eyre::Result<ServerFrame> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await?
            .ok_or_else(|| eyre::eyre!("relay closed the connection"))??;
        if let Message::Text(t) = msg {
            return Ok(serde_json::from_str(t.as_str())?);
        }
    }
}

/// POSTs a query to the API; returns `data`, failing on errors.
pub(crate) async fn graphql(
    addr: SocketAddr,
    query: &str,
    variables: Value,
) -> eyre::Result<Value> {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let (head, body) =
        raw.split_once("\r\n\r\n").ok_or_else(|| eyre::eyre!("no HTTP body: {raw}"))?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let response: Value = serde_json::from_str(&body)?;
    eyre::ensure!(response.get("errors").is_none(), "GraphQL errors: {response}");
    Ok(response["data"].clone())
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
