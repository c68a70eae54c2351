//! The queries an artist dashboard and a listener dashboard make, snapshotted, and checked against the chain.

use alloy::primitives::{Address, U256};
use serde_json::json;

use crate::harness::{ALICE, BOB, Env, LISTENER};

const ARTIST_DASHBOARD: &str = r#"
query ArtistDashboard($name: String!) {
  artist(name: $name) {
    name label address ratePerSecond { raw usdc }
    texts { key value }
    description: text(key: "description")
    earnings { earned { raw usdc } fees { raw } withdrawable { raw } pending { raw usdc } settlements }
    stats { streams seconds uniqueListeners }
    tracks(first: 10) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage }
      edges { cursor node { id title duration ratePerSecond { raw } published stats { streams seconds revenue { raw } } } }
    }
    topTracks(limit: 3) { track { id title } streams seconds revenue { raw } }
    settlements(first: 5) {
      totalCount
      edges { node { listener payee amount { raw } fee { raw } net { raw } cumulative { raw } } }
    }
  }
}"#;

const LISTENER_DASHBOARD: &str = r#"
query ListenerDashboard($address: String!) {
  listener(address: $address) {
    address
    balance { available { raw usdc } thawing { raw } deposited { raw } spent { raw } withdrawn { raw } }
    grants { id sessionKey cap { raw } expiresAt spent { raw } vouched { raw } }
    spendPerArtist { payee artist { name } settled { raw } vouched { raw } }
    sessions(first: 10) {
      totalCount
      edges { node { id trackId seconds amount { raw } status closeReason artist { name } track { title } } }
    }
    deposits(first: 5) { totalCount edges { node { amount { raw } sender } } }
    settlements(first: 5) { edges { node { payee amount { raw } artist { name } } } }
  }
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_artist_dashboard_matches_the_chain() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let data = env.data(ARTIST_DASHBOARD, json!({ "name": "alice.beatstream.eth" })).await?;
    insta::assert_json_snapshot!("artist_dashboard", data);

    // The figures are the vault's.
    let vault = env.chain.vault(&env.chain.anvil.signer(0));
    let earned = vault.earningsOf(env.address(ALICE)).call().await?;
    assert_eq!(data["artist"]["earnings"]["withdrawable"]["raw"], earned.to_string());
    assert_eq!(earned, U256::from(3_000 * 975 / 1000));
    // The short name, and the address, find the same artist.
    let by_label = env.data(ARTIST_DASHBOARD, json!({ "name": "alice" })).await?;
    assert_eq!(by_label, data);
    let by_address = env
        .data(
            "query($a: String!) { artist(address: $a) { name } }",
            json!({ "a": env.address(ALICE).to_string() }),
        )
        .await?;
    assert_eq!(by_address["artist"]["name"], "alice.beatstream.eth");
    // Bob's earnings are pending only: vouched, not settled.
    let bob = env
        .data(
            "{ artist(name: \"bob\") { earnings { earned { raw } pending { raw } } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        bob["artist"]["earnings"],
        json!({ "earned": { "raw": "0" }, "pending": { "raw": "1500" } })
    );
    let _ = BOB;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_dashboard_matches_the_chain() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let listener = env.address(LISTENER).to_string();
    let data = env.data(LISTENER_DASHBOARD, json!({ "address": listener })).await?;
    insta::assert_json_snapshot!("listener_dashboard", data);

    let vault = env.chain.vault(&env.chain.anvil.signer(0));
    let account = vault.accountOf(env.address(LISTENER)).call().await?;
    let balance = &data["listener"]["balance"];
    assert_eq!(balance["available"]["raw"], account.available.to_string());
    assert_eq!(balance["thawing"]["raw"], account.thawing.to_string());
    // The live session's seconds come from its newest voucher: 1,500 at 500 a second.
    let live = &data["listener"]["sessions"]["edges"][0]["node"];
    assert_eq!((live["status"].as_str(), live["seconds"].as_i64()), (Some("LIVE"), Some(3)));
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_forward_and_backward_with_keyset_cursors() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let alice = env.address(ALICE);
    for c in [4_000, 5_000, 6_000, 7_000] {
        env.settle(alice, c).await?;
    }
    env.indexed().await?;
    let q = r#"query($first: Int, $after: String, $last: Int, $before: String) {
        settlements(first: $first, after: $after, last: $last, before: $before) {
            totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            edges { node { cumulative { raw } } } } }"#;
    let cumulative = |d: &serde_json::Value| -> Vec<String> {
        d["settlements"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["cumulative"]["raw"].as_str().unwrap().to_owned())
            .collect()
    };
    let p1 = env.data(q, json!({ "first": 2 })).await?;
    assert_eq!(cumulative(&p1), ["7000", "6000"]);
    assert_eq!(p1["settlements"]["totalCount"], 5);
    assert_eq!(p1["settlements"]["pageInfo"]["hasNextPage"], true);
    let end = p1["settlements"]["pageInfo"]["endCursor"].clone();
    let p2 = env.data(q, json!({ "first": 2, "after": end })).await?;
    assert_eq!(cumulative(&p2), ["5000", "4000"]);
    let p3 = env
        .data(q, json!({ "first": 2, "after": p2["settlements"]["pageInfo"]["endCursor"] }))
        .await?;
    assert_eq!(cumulative(&p3), ["3000"]);
    assert_eq!(p3["settlements"]["pageInfo"]["hasNextPage"], false);
    // Backward from the end of page 2.
    let back = env
        .data(q, json!({ "last": 2, "before": p2["settlements"]["pageInfo"]["startCursor"] }))
        .await?;
    assert_eq!(cumulative(&back), ["7000", "6000"]);
    assert_eq!(back["settlements"]["pageInfo"]["hasPreviousPage"], false);
    // Oldest first.
    let oldest = env
        .data(
            "{ settlements(orderBy: OLDEST, first: 1) { edges { node { cumulative { raw } } } } }",
            json!({}),
        )
        .await?;
    assert_eq!(oldest["settlements"]["edges"][0]["node"]["cumulative"]["raw"], "3000");
    // A forged cursor is an error, not a crash.
    let bad = env.query(q, json!({ "first": 2, "after": "bm90LWEtY3Vyc29y" })).await?;
    assert!(bad["errors"][0]["message"].as_str().unwrap().contains("cursor"), "{bad}");
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yellow_session_reads_like_a_vault_session() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let listener = env.address(LISTENER);
    let bob = env.address(BOB);
    // What the relay writes for a live Yellow play of bob's track 2: the app session with its newest stored
    // allocation to bob (2,000 base units), and the session row under the app session id.
    let app = alloy::primitives::B256::repeat_byte(0x7e);
    sqlx::query(
        "INSERT INTO yellow_app_sessions (app_session_id, listener, payee, operator, asset, definition, deposit,
                                          version, paid, submitted, relay_id)
         VALUES ($1, $2, $3, $4, 'usdc', '{}', 1000000, 6, 2000, 6, 'relay-test')",
    )
    .bind(app.as_slice())
    .bind(listener.as_slice())
    .bind(bob.as_slice())
    .bind(Address::repeat_byte(0x0b).as_slice())
    .execute(&env.pool)
    .await?;
    sqlx::query(
        "INSERT INTO sessions (session_id, grant_id, listener, payee, track_id, rate_per_second, base_cumulative,
                               status, relay_id, channel)
         VALUES ('00000000-0000-4000-8000-0000000000ee', $1, $2, $3, 2, 500, 0, 'live', 'relay-test', 'yellow')",
    )
    .bind(app.as_slice())
    .bind(listener.as_slice())
    .bind(bob.as_slice())
    .execute(&env.pool)
    .await?;

    let q = r#"query($address: String!) { listener(address: $address) { sessions(first: 10) {
        edges { node { id grantId channel seconds amount { raw } status track { title } } } } } }"#;
    let data = env.data(q, json!({ "address": listener.to_string() })).await?;
    let edges = data["listener"]["sessions"]["edges"].as_array().unwrap();
    let yellow = edges
        .iter()
        .map(|e| &e["node"])
        .find(|n| n["channel"] == "YELLOW")
        .expect("the Yellow session is listed with the others");
    assert_eq!(yellow["grantId"], app.to_string());
    // Live amount and seconds come from the newest stored update, as a vault session's come from its voucher.
    assert_eq!(
        (yellow["amount"]["raw"].as_str(), yellow["seconds"].as_i64()),
        (Some("2000"), Some(4))
    );
    assert_eq!(yellow["status"], "LIVE");
    assert!(edges.iter().filter(|e| e["node"]["channel"] == "VAULT").count() >= 2);
    env.stop().await
}
