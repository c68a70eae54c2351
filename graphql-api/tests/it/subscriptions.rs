//! Subscriptions over graphql-transport-ws: settlements made on anvil arrive, earnings follow, a live session's
//! beats arrive, and a lost LISTEN connection leaves nobody stale.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::harness::{ALICE, BOB, Env, LIVE_SESSION};

struct Sub {
    ws: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Sub {
    async fn open(env: &Env, query: &str) -> eyre::Result<Self> {
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

    async fn next_message(&mut self) -> eyre::Result<Value> {
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
    async fn next(&mut self) -> eyre::Result<Value> {
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
