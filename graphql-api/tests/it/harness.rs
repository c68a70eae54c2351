//! The API over a database filled by the real indexer from a scene played on anvil.

use std::{net::SocketAddr, time::Duration};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use beatstream_graphql_api::{Config, Options, Server};
use beatstream_primitives::{SessionGrant, contracts::BeatStreamRegistry, db::DatabaseArgs};
use beatstream_testkit::{
    Anvil, TestDb,
    scene::{Chain, Player, USDC, store_grant, store_voucher},
};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

pub(crate) const ALICE: usize = 1;
pub(crate) const BOB: usize = 2;
pub(crate) const LISTENER: usize = 3;
pub(crate) const KEEPER: usize = 7;
/// Fixed ids, so snapshots do not move.
pub(crate) const CLOSED_SESSION: &str = "00000000-0000-4000-8000-000000000001";
pub(crate) const LIVE_SESSION: &str = "00000000-0000-4000-8000-000000000002";

pub(crate) struct Env {
    pub(crate) chain: Chain,
    /// Kept alive: dropping it drops the database (or stops the servers).
    _db: Box<dyn std::any::Any + Send>,
    pub(crate) pool: PgPool,
    pub(crate) player: Player,
    pub(crate) api: SocketAddr,
    stop: CancellationToken,
    indexer: JoinHandle<beatstream_indexer::Result<()>>,
    indexer_metrics: beatstream_indexer::Metrics,
    server: JoinHandle<beatstream_graphql_api::Result<()>>,
}

impl Env {
    /// The scene: artists alice (1,000 base units a second, two text records, one track) and bob (500/s, one
    /// track); a listener with 100 USDC deposited and 10 requested back; 3 s of alice settled on-chain, 3 s of bob
    /// vouched but not settled; a closed session on alice's track and a live one on bob's.
    pub(crate) async fn scene() -> eyre::Result<Self> {
        let db = TestDb::new().await?;
        let url = db.url().to_owned();
        Self::scene_on(Box::new(db), &url, DatabaseArgs::new(url.clone())).await
    }

    /// [`scene`](Self::scene) on the migrated database at `url` (where the scene and the indexer write), with the
    /// API reaching Postgres as `api_database` says (a replica, a pooler); `keep` lives as long as the `Env`.
    pub(crate) async fn scene_on(
        keep: Box<dyn std::any::Any + Send>,
        url: &str,
        api_database: DatabaseArgs,
    ) -> eyre::Result<Self> {
        let chain = Chain::with(
            Anvil::spawn()?,
            &[("BEATSTREAM_FEE_BPS", "250"), ("BEATSTREAM_WITHDRAWAL_DELAY", "3600")],
        )
        .await?;
        let pool = PgPool::connect(url).await?;

        let alice = chain.anvil.signer(ALICE);
        let bob = chain.anvil.signer(BOB);
        let alice_node = register(
            &chain,
            &alice,
            "alice",
            1_000,
            &[("genre", "ambient"), ("description", "Tides")],
        )
        .await?;
        publish(&chain, &alice, alice_node, "First Light", 180, 0).await?;
        let bob_node = register(&chain, &bob, "bob", 500, &[("genre", "jazz")]).await?;
        publish(&chain, &bob, bob_node, "Blue Hour", 240, 0).await?;

        let listener = chain.anvil.signer(LISTENER);
        chain.fund(&listener, 100 * USDC).await?;
        let player = fixed_player(&chain, &listener)?;
        store_grant(&pool, &chain, &player).await?;
        store_voucher(&pool, &chain, &player, alice.address(), 3_000).await?;
        store_voucher(&pool, &chain, &player, bob.address(), 1_500).await?;
        let item = player.item(&chain, alice.address(), 3_000)?;
        let receipt = chain
            .vault(&chain.anvil.signer(KEEPER))
            .settleBatch(vec![item])
            .gas(beatstream_primitives::contracts::settle_batch_gas_limit(1))
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(receipt.status(), "settleBatch reverted");
        let r = chain
            .vault(&listener)
            .requestWithdrawal(U256::from(10 * USDC))
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(r.status(), "requestWithdrawal reverted");

        for (id, payee, node, track, seconds, amount, live) in [
            (CLOSED_SESSION, alice.address(), alice_node, 1, 3, 3_000, false),
            (LIVE_SESSION, bob.address(), bob_node, 2, 0, 0, true),
        ] {
            sqlx::query(
                "INSERT INTO sessions (session_id, grant_id, listener, payee, artist_node, track_id, rate_per_second,
                                       base_cumulative, seconds, amount, status, close_reason, relay_id, started_at,
                                       ended_at)
                 VALUES ($1::uuid, $2, $3, $4, $5, $6::numeric, $7::numeric, 0, $8, $9::numeric, $10, $11, 'relay-test',
                         now() - make_interval(secs => $12), CASE WHEN $13 THEN NULL ELSE now() END)",
            )
            .bind(id)
            .bind(player.grant.id().as_slice())
            .bind(listener.address().as_slice())
            .bind(payee.as_slice())
            .bind(node.as_slice())
            .bind(track.to_string())
            .bind(if live { "500" } else { "1000" })
            .bind(seconds)
            .bind(amount.to_string())
            .bind(if live { "live" } else { "closed" })
            .bind(if live { None } else { Some("stop") })
            .bind(if live { 5.0 } else { 60.0 })
            .bind(live)
            .execute(&pool)
            .await?;
        }

        let stop = CancellationToken::new();
        let indexer_metrics = beatstream_indexer::Metrics::new();
        let indexer = tokio::spawn(beatstream_indexer::run_with_metrics(
            beatstream_indexer::Config {
                database: DatabaseArgs::new(url.to_owned()),
                rpc: chain.anvil.endpoint_url().into(),
                options: beatstream_indexer::Options {
                    poll_interval_ms: 50,
                    ..beatstream_indexer::Options::new(chain.deployment_file.path().to_owned())
                },
            },
            indexer_metrics.clone(),
            stop.clone(),
        ));
        let options = Options { listen: "127.0.0.1:0".parse()?, ..Default::default() };
        let server = Server::bind(
            Config {
                database: api_database,
                rpc: Default::default(),
                deployment: chain.deployment_file.path().to_owned(),
                chain_id: None,
                options,
            },
            stop.clone(),
        )
        .await?;
        let api = server.local_addr()?;
        let server = tokio::spawn(server.serve());
        let env =
            Self { chain, _db: keep, pool, player, api, stop, indexer, indexer_metrics, server };
        env.indexed().await?;
        Ok(env)
    }

    pub(crate) async fn indexed(&self) -> eyre::Result<()> {
        let head = self.chain.head().await? as i64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.indexer_metrics.indexed.get() < head {
            eyre::ensure!(!self.indexer.is_finished(), "indexer stopped");
            eyre::ensure!(tokio::time::Instant::now() < deadline, "indexer did not catch up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub(crate) fn address(&self, index: usize) -> Address {
        self.chain.anvil.signer(index).address()
    }

    /// Runs a query; returns the whole response (`data` and `errors`).
    pub(crate) async fn query(&self, query: &str, variables: Value) -> eyre::Result<Value> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let (status, body) = post(self.api, "/graphql", &body).await?;
        eyre::ensure!(status == 200, "HTTP {status}: {body}");
        Ok(serde_json::from_str(&body)?)
    }

    /// Runs a query that must succeed; returns `data`.
    pub(crate) async fn data(&self, query: &str, variables: Value) -> eyre::Result<Value> {
        let response = self.query(query, variables).await?;
        eyre::ensure!(response.get("errors").is_none(), "errors: {response}");
        Ok(response["data"].clone())
    }

    /// Settles `cumulative` of the scene's grant for `payee` on-chain, as the keeper would.
    pub(crate) async fn settle(&self, payee: Address, cumulative: u64) -> eyre::Result<()> {
        self.settle_with(&self.pool, payee, cumulative).await
    }

    /// [`settle`](Self::settle), storing the voucher through `pool`.
    pub(crate) async fn settle_with(
        &self,
        pool: &PgPool,
        payee: Address,
        cumulative: u64,
    ) -> eyre::Result<()> {
        store_voucher(pool, &self.chain, &self.player, payee, cumulative).await?;
        let item = self.player.item(&self.chain, payee, cumulative)?;
        let vault = self.chain.vault(&self.chain.anvil.signer(KEEPER));
        let receipt = vault
            .settleBatch(vec![item])
            .gas(beatstream_primitives::contracts::settle_batch_gas_limit(1))
            .send()
            .await?
            .get_receipt()
            .await?;
        eyre::ensure!(receipt.status(), "settleBatch reverted");
        Ok(())
    }

    pub(crate) async fn stop(self) -> eyre::Result<()> {
        self.stop.cancel();
        self.server.await??;
        self.indexer.await??;
        Ok(())
    }
}

async fn register(
    chain: &Chain,
    artist: &PrivateKeySigner,
    label: &str,
    rate: u64,
    texts: &[(&str, &str)],
) -> eyre::Result<B256> {
    let registry = chain.registry(artist);
    let records: Vec<_> = texts
        .iter()
        .map(|(k, v)| BeatStreamRegistry::TextRecord { key: (*k).into(), value: (*v).into() })
        .collect();
    Ok(beatstream_primitives::register_artist(
        &registry,
        artist.address(),
        label,
        U256::from(rate),
        records,
    )
    .await?)
}

async fn publish(
    chain: &Chain,
    artist: &PrivateKeySigner,
    node: B256,
    title: &str,
    duration: u32,
    rate: u128,
) -> eyre::Result<()> {
    let input = BeatStreamRegistry::TrackInput {
        title: title.into(),
        duration,
        ratePerSecond: rate,
        contentHash: keccak256(title.as_bytes()),
        metadataURI: format!("ipfs://{title}"),
    };
    let r = chain.registry(artist).publishTrack(node, input).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "publishTrack reverted");
    Ok(())
}

/// A player with a fixed session key and grant, so ids are the same on every run.
fn fixed_player(chain: &Chain, listener: &PrivateKeySigner) -> eyre::Result<Player> {
    let key: PrivateKeySigner =
        "0x1111111111111111111111111111111111111111111111111111111111111111".parse()?;
    let grant = SessionGrant {
        listener: listener.address(),
        sessionKey: key.address(),
        cap: U256::from(50 * USDC),
        expiresAt: 4_000_000_000,
        nonce: 1,
    };
    let grant_sig = chain.domain().sign_grant(listener, &grant)?;
    Ok(Player { key, grant, grant_sig })
}

/// A plain HTTP/1.1 POST of JSON; returns (status, body).
pub(crate) async fn post(addr: SocketAddr, path: &str, body: &str) -> eyre::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head.split_whitespace().nth(1).unwrap_or("0").parse()?;
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
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
