//! Subscriptions over graphql-transport-ws: settlements made on anvil arrive, earnings follow, a live session's
//! beats arrive, and a lost LISTEN connection leaves nobody stale.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sqlx::{Connection, PgPool, postgres::PgPoolOptions};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::harness::{ALICE, BOB, Env, LIVE_SESSION};

pub(crate) struct Sub {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Sub {
    pub(crate) async fn open(env: &Env, query: &str) -> eyre::Result<Self> {
        let mut request = format!("ws://{}/graphql/ws", env.api).into_client_request()?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
        let (mut ws, response) = connect_async(request).await?;
        assert_eq!(
            response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
            Some("graphql-transport-ws")
        );
        ws.send(Message::text(json!({ "type": "connection_init" }).to_string())).await?;
        let mut sub = Self { ws };
        let ack = sub.next_message().await?;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
        sub.ws.send(Message::text(subscribe.to_string())).await?;
        Ok(sub)
    }

    pub(crate) async fn next_message(&mut self) -> eyre::Result<Value> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await?
                .ok_or_else(|| eyre::eyre!("closed"))??;
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str())?;
                if v["type"] == "ping" {
                    self.ws.send(Message::text(json!({ "type": "pong" }).to_string())).await?;
                    continue;
                }
                return Ok(v);
            }
        }
    }

    /// Skips payloads until `pred` holds for one; returns it.
    async fn next_until(&mut self, pred: impl Fn(&Value) -> bool) -> eyre::Result<Value> {
        loop {
            let data = self.next().await?;
            if pred(&data) {
                return Ok(data);
            }
        }
    }

    /// The next `next` payload's data.
    pub(crate) async fn next(&mut self) -> eyre::Result<Value> {
        let v = self.next_message().await?;
        eyre::ensure!(v["type"] == "next", "expected next, got {v}");
        eyre::ensure!(v["payload"]["errors"].is_null(), "errors: {v}");
        Ok(v["payload"]["data"].clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_and_earnings_arrive_even_across_a_lost_listen_connection() -> eyre::Result<()>
{
    let env = Env::scene().await?;
    let (alice, bob) = (env.address(ALICE), env.address(BOB));
    let mut settlements = Sub::open(
        &env,
        "subscription { settlements(artist: \"alice\") { cumulative { raw } payee } }",
    )
    .await?;
    let mut earnings =
        Sub::open(&env, "subscription { artistEarnings(artist: \"alice\") { earned { raw } } }")
            .await?;
    // Earnings start with their value now.
    assert_eq!(earnings.next().await?["artistEarnings"]["earned"]["raw"], "2925");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Bob's settlement is not alice's business; hers arrives.
    env.settle(bob, 2_000).await?;
    env.settle(alice, 5_000).await?;
    let got = settlements.next().await?;
    assert_eq!(got["settlements"]["cumulative"]["raw"], "5000");
    assert_eq!(got["settlements"]["payee"], alice.to_checksum(None));
    // Earnings follow (pending moves too, as vouchers are stored before they settle).
    earnings.next_until(|d| d["artistEarnings"]["earned"]["raw"] == "4875").await?;

    // The API's LISTEN connection dies; a settlement lands while it is gone. Nobody is left stale.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'beatstream-api-listen'
           AND datname = current_database()",
    )
    .fetch_one(&env.pool)
    .await?;
    assert_eq!(killed, 1);
    env.settle(alice, 6_000).await?;
    let got = settlements.next().await?;
    assert_eq!(got["settlements"]["cumulative"]["raw"], "6000");
    earnings.next_until(|d| d["artistEarnings"]["earned"]["raw"] == "5850").await?;
    env.stop().await
}

/// The API's connections to the test database (the pool's and the `LISTEN` one), by `application_name`.
const API_BACKENDS: &str = "FROM pg_stat_activity WHERE datname = current_database()
    AND application_name LIKE 'beatstream-api%' AND pid <> pg_backend_pid()";

/// Takes the API off the database and keeps it off: new connections to the test database are refused (for every
/// role, superusers included), then every connection of the API (its `LISTEN` one, and the pool's, one of which it
/// would otherwise listen on again at once) is terminated; returns once none is left. The indexer and the test keep
/// the connections they already have.
async fn cut_the_api_off(env: &Env, held: &PgPool) -> eyre::Result<()> {
    allow_connections(env, held, false).await?;
    // A reconnect really is refused: the server's own check, `database ... is not currently accepting connections`.
    let refused = sqlx::PgConnection::connect_with(&*env.pool.connect_options()).await;
    let code = match &refused {
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        _ => None,
    };
    eyre::ensure!(
        code.as_deref() == Some("55000"),
        "a new connection was not refused: {refused:?}"
    );
    let listening: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) {API_BACKENDS} AND application_name = 'beatstream-api-listen'"
    ))
    .fetch_one(held)
    .await?;
    eyre::ensure!(listening == 1, "the API listens on {listening} connections, not 1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        // Waits (up to 5 s) for each backend to exit, not just for the signal to be sent.
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid, 5000)) {API_BACKENDS}"
        ))
        .fetch_one(held)
        .await?;
        let alive: i64 =
            sqlx::query_scalar(&format!("SELECT count(*) {API_BACKENDS}")).fetch_one(held).await?;
        if left == 0 && alive == 0 {
            return Ok(());
        }
        eyre::ensure!(tokio::time::Instant::now() < deadline, "{alive} API connections survive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets the API connect again.
async fn let_the_api_back(env: &Env, held: &PgPool) -> eyre::Result<()> {
    allow_connections(env, held, true).await
}

/// `ALTER DATABASE <the test database> ALLOW_CONNECTIONS <allow>`, run from the server's maintenance database
/// (Postgres refuses to disallow connections to the database it runs in).
async fn allow_connections(env: &Env, held: &PgPool, allow: bool) -> eyre::Result<()> {
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(held).await?;
    let admin = env.pool.connect_options().as_ref().clone().database("postgres");
    let mut conn = sqlx::PgConnection::connect_with(&admin).await?;
    sqlx::query(&format!(r#"ALTER DATABASE "{name}" ALLOW_CONNECTIONS {allow}"#))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}

/// The promise of docs/API.md: when the `LISTEN` connection is lost, nothing that happened meanwhile is missed.
/// A settlement, and a voucher of a live session, land while the API cannot listen at all: their notifications
/// reach nobody and are gone, so only the re-read after the reconnect can deliver them, and it delivers each
/// exactly once (the next payload is the next change, not the missed one again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_happens_while_the_listen_connection_is_down_arrives_once_it_is_back()
-> eyre::Result<()> {
    let env = Env::scene().await?;
    let (alice, bob) = (env.address(ALICE), env.address(BOB));
    let mut settlements =
        Sub::open(&env, "subscription { settlements(artist: \"alice\") { cumulative { raw } } }")
            .await?;
    let mut earnings = Sub::open(
        &env,
        "subscription { artistEarnings(artist: \"alice\") { earned { raw } pending { raw } } }",
    )
    .await?;
    let query = format!(
        "subscription {{ sessionBeats(id: \"{LIVE_SESSION}\") {{ seconds amount {{ raw }} }} }}"
    );
    let mut beats = Sub::open(&env, &query).await?;
    let earned = |d: &Value| d["artistEarnings"]["earned"]["raw"].as_str().map(str::to_owned);
    assert_eq!(earned(&earnings.next().await?).as_deref(), Some("2925"));
    assert_eq!(beats.next().await?["sessionBeats"]["seconds"], 3);
    // A settlement arrives while listening: every subscription is live (settlements has no first payload).
    env.settle(alice, 5_000).await?;
    assert_eq!(settlements.next().await?["settlements"]["cumulative"]["raw"], "5000");
    earnings.next_until(|d| earned(d).as_deref() == Some("4875")).await?;

    // The API is off the database; a settlement is indexed (its NOTIFY sent) and a voucher stored (the relay's
    // NOTIFY sent) while it cannot listen.
    // The test's own statements meanwhile go through one connection opened before: a pool of one that already
    // has it never needs a new one (a bigger pool may open one while another is on its way back, and be refused).
    let held = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(env.pool.connect_options().as_ref().clone())
        .await?;
    cut_the_api_off(&env, &held).await?;
    env.settle_with(&held, alice, 6_000).await?;
    env.indexed().await?;
    beatstream_testkit::scene::store_voucher(&held, &env.chain, &env.player, bob, 2_000).await?;
    sqlx::query("SELECT pg_notify('beatstream_vouchers', '')").execute(&held).await?;
    let api: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) {API_BACKENDS}")).fetch_one(&held).await?;
    assert_eq!(api, 0, "the API got back in while it should have been cut off");
    let_the_api_back(&env, &held).await?;
    held.close().await;

    // Each subscription gets what it missed, once.
    assert_eq!(settlements.next().await?["settlements"]["cumulative"]["raw"], "6000");
    let now = earnings.next().await?;
    assert_eq!(
        now["artistEarnings"],
        json!({ "earned": { "raw": "5850" }, "pending": { "raw": "0" } })
    );
    let beat = beats.next().await?;
    assert_eq!(beat["sessionBeats"], json!({ "seconds": 4, "amount": { "raw": "2000" } }));
    // The next payloads are the next changes, not what was missed over again.
    env.settle(alice, 7_000).await?;
    assert_eq!(settlements.next().await?["settlements"]["cumulative"]["raw"], "7000");
    assert_eq!(earned(&earnings.next().await?).as_deref(), Some("6825"));
    beatstream_testkit::scene::store_voucher(&env.pool, &env.chain, &env.player, bob, 2_500)
        .await?;
    sqlx::query("SELECT pg_notify('beatstream_vouchers', '')").execute(&env.pool).await?;
    assert_eq!(beats.next().await?["sessionBeats"]["seconds"], 5);
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_session_streams_its_beats() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let bob = env.address(BOB);
    let query = format!(
        "subscription {{ sessionBeats(id: \"{LIVE_SESSION}\") {{ seconds amount {{ raw }} status }} }}"
    );
    let mut beats = Sub::open(&env, &query).await?;
    let first = beats.next().await?;
    assert_eq!(
        first["sessionBeats"],
        json!({ "seconds": 3, "amount": { "raw": "1500" }, "status": "LIVE" })
    );
    // Two more seconds paid, as the relay stores them (it notifies each commit).
    for (cumulative, seconds) in [(2_000, 4), (2_500, 5)] {
        beatstream_testkit::scene::store_voucher(
            &env.pool,
            &env.chain,
            &env.player,
            bob,
            cumulative,
        )
        .await?;
        sqlx::query("SELECT pg_notify('beatstream_vouchers', '')").execute(&env.pool).await?;
        let beat = beats.next().await?;
        assert_eq!(beat["sessionBeats"]["seconds"], seconds);
        assert_eq!(beat["sessionBeats"]["amount"]["raw"], cumulative.to_string());
    }

    // A session that does not exist: NOT_FOUND, saying which.
    let unknown = "00000000-0000-4000-8000-0000000000ff";
    let query = format!("subscription {{ sessionBeats(id: \"{unknown}\") {{ seconds }} }}");
    let reply = Sub::open(&env, &query).await?.next_message().await?;
    let error = if reply["type"] == "error" {
        &reply["payload"][0]
    } else {
        &reply["payload"]["errors"][0]
    };
    assert_eq!(error["extensions"]["code"], "NOT_FOUND", "{reply}");
    assert_eq!(error["message"], format!("no session {unknown}"), "{reply}");
    env.stop().await
}
