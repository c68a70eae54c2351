//! Splits and tips (contracts v3): the split history and the split in force, each recipient's earnings per version,
//! tips with their messages byte for byte, supporters, pagination and bad arguments. The split and tip tables are
//! seeded directly (as the indexer fills them) on top of the scene, whose on-chain settlement to alice counts too.

use alloy::primitives::{Address, B256};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{
    harness::{ALICE, BOB, Env, LISTENER},
    subscriptions::Sub,
};

const R1: Address = Address::repeat_byte(0xa1);
const R2: Address = Address::repeat_byte(0xa2);
const R3: Address = Address::repeat_byte(0xa3);
/// Split payees: alice's own v1, track 1's v1 and v2.
const S0V1: Address = Address::repeat_byte(0x50);
const S1V1: Address = Address::repeat_byte(0x51);
const S1V2: Address = Address::repeat_byte(0x52);
const L2: Address = Address::repeat_byte(0xc2);
const L3: Address = Address::repeat_byte(0x03);
const L4: Address = Address::repeat_byte(0xd4);

/// 280 bytes that a careless API would escape, trim or cut: markup, both quotes, a backslash, emoji, a newline.
fn tricky_message() -> String {
    let mut m =
        String::from("<script>alert(\"tip\")</script> it's \"great\" & <b>bold</b> \\ 🎵🔥👩‍🎤\n");
    while m.len() < 280 {
        m.push('x');
    }
    assert_eq!(m.len(), 280);
    m
}

struct Seed<'a> {
    pool: &'a PgPool,
    chain_id: i64,
}

impl Seed<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn split(
        &self,
        node: &[u8],
        track: u64,
        split: Address,
        version: i64,
        recipients: &[Address],
        shares: &[i32],
        set_block: i64,
    ) -> eyre::Result<()> {
        let recipients: Vec<Vec<u8>> = recipients.iter().map(|r| r.to_vec()).collect();
        sqlx::query(
            "INSERT INTO splits (chain_id, split, node, track_id, version, recipients, shares, set_at, set_block,
                                 updated_block)
             VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, to_timestamp(1800000000 + $8), $8, $8)",
        )
        .bind(self.chain_id)
        .bind(split.as_slice())
        .bind(node)
        .bind(track.to_string())
        .bind(version)
        .bind(recipients)
        .bind(shares)
        .bind(set_block)
        .execute(self.pool)
        .await?;
        Ok(())
    }

    async fn in_force(&self, node: &[u8], track: u64, split: Address) -> eyre::Result<()> {
        sqlx::query(
            "INSERT INTO split_in_force (chain_id, node, track_id, split, updated_block)
             VALUES ($1, $2, $3::numeric, $4, 1)",
        )
        .bind(self.chain_id)
        .bind(node)
        .bind(track.to_string())
        .bind(split.as_slice())
        .execute(self.pool)
        .await?;
        Ok(())
    }

    async fn earned(
        &self,
        split: Address,
        recipient: Address,
        earned: u64,
        from_tips: u64,
        payments: i64,
    ) -> eyre::Result<()> {
        sqlx::query(
            "INSERT INTO split_earnings (chain_id, split, recipient, earned, from_tips, payments, updated_block)
             VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6, 1)",
        )
        .bind(self.chain_id)
        .bind(split.as_slice())
        .bind(recipient.as_slice())
        .bind(earned.to_string())
        .bind(from_tips.to_string())
        .bind(payments)
        .execute(self.pool)
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn tip(
        &self,
        (block, log): (i64, i32),
        listener: Address,
        payee: Address,
        tip_id: u64,
        amount: u64,
        fee: u64,
        message: &[u8],
    ) -> eyre::Result<()> {
        sqlx::query(
            "INSERT INTO vault_tips (chain_id, block_number, block_hash, block_time, tx_hash, log_index, grant_id,
                                     listener, payee, tip_id, amount, fee, message)
             VALUES ($1, $2, $3, to_timestamp(1800000000 + $2), $4, $5, $6, $7, $8, $9::numeric, $10::numeric,
                     $11::numeric, $12)",
        )
        .bind(self.chain_id)
        .bind(block)
        .bind(B256::with_last_byte(block as u8).as_slice())
        .bind(B256::repeat_byte(0xee).as_slice())
        .bind(log)
        .bind(B256::left_padding_from(listener.as_slice()).as_slice())
        .bind(listener.as_slice())
        .bind(payee.as_slice())
        .bind(tip_id.to_string())
        .bind(amount.to_string())
        .bind(fee.to_string())
        .bind(message)
        .execute(self.pool)
        .await?;
        Ok(())
    }

    /// A settled pair, as the indexer keeps it from `Settled` events: the grant's settled cumulative to `payee`.
    async fn settled(
        &self,
        listener: Address,
        payee: Address,
        cumulative: u64,
    ) -> eyre::Result<()> {
        sqlx::query(
            "INSERT INTO settled_pairs (chain_id, grant_id, payee, listener, cumulative, updated_block)
             VALUES ($1, $2, $3, $4, $5::numeric, 1)",
        )
        .bind(self.chain_id)
        .bind(B256::left_padding_from(listener.as_slice()).as_slice())
        .bind(payee.as_slice())
        .bind(listener.as_slice())
        .bind(cumulative.to_string())
        .execute(self.pool)
        .await?;
        Ok(())
    }
}

/// Alice's node, from the API.
async fn alice_node(env: &Env) -> eyre::Result<Vec<u8>> {
    let data = env.data("{ artist(name: \"alice\") { node } }", json!({})).await?;
    Ok(alloy::hex::decode(data["artist"]["node"].as_str().unwrap_or_default())?)
}

/// Alice: her own split v1 (R1 70%, R2 30%), track 1's v1 (R1, R3 half each) replaced by v2 (R1, R2 25%, R3 50%).
/// Earnings as the vault's largest-remainder rounding gives them: a settlement of 2,000 (fee 50) to track 1's v1,
/// a tip of 200 (fee 5) to its v2 and one of 3,300 (fee 82) to alice's own split. Tips: five to alice (one to her
/// address with the tricky message, one with bytes that are not UTF-8), one from the listener to bob.
async fn seed(env: &Env) -> eyre::Result<Vec<u8>> {
    let node = alice_node(env).await?;
    let s = Seed { pool: &env.pool, chain_id: env.chain.deployment.chain_id as i64 };
    let (alice, bob, listener) = (env.address(ALICE), env.address(BOB), env.address(LISTENER));
    s.split(&node, 0, S0V1, 1, &[R1, R2], &[7000, 3000], 1000).await?;
    s.split(&node, 1, S1V1, 1, &[R1, R3], &[5000, 5000], 1001).await?;
    s.split(&node, 1, S1V2, 2, &[R1, R2, R3], &[2500, 2500, 5000], 1002).await?;
    s.in_force(&node, 0, S0V1).await?;
    s.in_force(&node, 1, S1V2).await?;
    s.settled(listener, S1V1, 2000).await?;
    s.earned(S1V1, R1, 975, 0, 1).await?;
    s.earned(S1V1, R3, 975, 0, 1).await?;
    s.earned(S1V2, R1, 49, 49, 1).await?;
    s.earned(S1V2, R2, 49, 49, 1).await?;
    s.earned(S1V2, R3, 97, 97, 1).await?;
    s.earned(S0V1, R1, 2253, 2253, 1).await?;
    s.earned(S0V1, R2, 965, 965, 1).await?;
    s.tip((1003, 0), listener, alice, 1, 100, 2, tricky_message().as_bytes()).await?;
    s.tip((1003, 2), listener, S1V2, 2, 200, 5, "thanks ♥".as_bytes()).await?;
    s.tip((1004, 0), L2, S0V1, 1, 3300, 82, &[0xff, 0x00, b'a']).await?;
    s.tip((1004, 1), listener, bob, 3, 999, 24, b"").await?;
    s.tip((1005, 0), L3, alice, 1, 50, 1, b"").await?;
    s.tip((1005, 1), L4, alice, 1, 3300, 82, b"").await?;
    Ok(node)
}

fn nodes(connection: &Value) -> Vec<&Value> {
    connection["edges"]
        .as_array()
        .map(|e| e.iter().map(|e| &e["node"]).collect())
        .unwrap_or_default()
}

const SPLIT: &str = "payee trackId version setAt setBlock clearedAt clearedBlock inForce
    recipients { address share earned { raw } fromTips { raw } payments }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_history_in_force_and_each_recipients_earnings() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let node = seed(&env).await?;
    let q = format!(
        "{{ artist(name: \"alice\") {{ splits(first: 10) {{ totalCount edges {{ node {{ {SPLIT} track {{ id }} artist {{ name }} }} }} }}
              splitsInForce {{ payee trackId version }} }} }}"
    );
    let data = env.data(&q, json!({})).await?;
    let splits = nodes(&data["artist"]["splits"]);
    assert_eq!(data["artist"]["splits"]["totalCount"], 3);
    let ids: Vec<(String, i64, bool)> = splits
        .iter()
        .map(|s| {
            (
                s["payee"].as_str().unwrap().to_owned(),
                s["version"].as_i64().unwrap(),
                s["inForce"] == true,
            )
        })
        .collect();
    assert_eq!(
        ids,
        [(S0V1.to_string(), 1, true), (S1V1.to_string(), 1, false), (S1V2.to_string(), 2, true)]
    );
    // Alice's own split: track 0, no track; the figures exactly as seeded, recipients in SplitSet order.
    assert_eq!(
        *splits[0],
        json!({
            "payee": S0V1.to_string(), "trackId": "0", "version": 1, "setAt": 1_800_001_000, "setBlock": 1000,
            "clearedAt": null, "clearedBlock": null, "inForce": true, "track": null,
            "artist": { "name": "alice.beatstream.eth" },
            "recipients": [
                { "address": R1.to_string(), "share": 7000, "earned": { "raw": "2253" }, "fromTips": { "raw": "2253" }, "payments": 1 },
                { "address": R2.to_string(), "share": 3000, "earned": { "raw": "965" }, "fromTips": { "raw": "965" }, "payments": 1 },
            ],
        })
    );
    // Track 1's v1: R1 and R3 earned from the settlement; v2: all three from the tip, R2 included.
    assert_eq!(splits[1]["track"]["id"], "1");
    let earned = |s: &Value| -> Vec<(i64, String, String)> {
        s["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["share"].as_i64().unwrap(),
                    r["earned"]["raw"].as_str().unwrap().to_owned(),
                    r["fromTips"]["raw"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(i64, &str, &str)]| -> Vec<(i64, String, String)> {
        v.iter().map(|(a, b, c)| (*a, (*b).to_owned(), (*c).to_owned())).collect()
    };
    assert_eq!(earned(splits[1]), pairs(&[(5000, "975", "0"), (5000, "975", "0")]));
    assert_eq!(
        earned(splits[2]),
        pairs(&[(2500, "49", "49"), (2500, "49", "49"), (5000, "97", "97")])
    );
    let in_force: Vec<_> = data["artist"]["splitsInForce"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["trackId"].as_str().unwrap().to_owned(), s["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(in_force, [("0".to_owned(), 1), ("1".to_owned(), 2)]);

    // A track: its own split in force and its history; bob's track has none.
    let track_q = format!(
        "query($id: String!) {{ track(id: $id) {{ split {{ {SPLIT} }} splitHistory {{ edges {{ node {{ payee version inForce }} }} }} }} }}"
    );
    let t1 = env.data(&track_q, json!({ "id": "1" })).await?;
    assert_eq!(t1["track"]["split"]["payee"], S1V2.to_string());
    assert_eq!(t1["track"]["split"]["trackId"], "1");
    let history: Vec<_> = nodes(&t1["track"]["splitHistory"])
        .iter()
        .map(|s| (s["version"].as_i64().unwrap(), s["inForce"] == true))
        .collect();
    assert_eq!(history, [(1, false), (2, true)]);
    let t2 = env.data(&track_q, json!({ "id": "2" })).await?;
    assert_eq!(t2["track"]["split"], Value::Null);
    assert_eq!(t2["track"]["splitHistory"]["edges"], json!([]));

    // Track 1's split cleared: its plays pay alice's own split (the playPayee rule); v2 stays in the history.
    sqlx::query(
        "UPDATE splits SET cleared_at = to_timestamp(1800001006), cleared_block = 1006 WHERE split = $1",
    )
    .bind(S1V2.as_slice())
    .execute(&env.pool)
    .await?;
    sqlx::query("DELETE FROM split_in_force WHERE node = $1 AND track_id = 1")
        .bind(&node)
        .execute(&env.pool)
        .await?;
    let t1 = env.data(&track_q, json!({ "id": "1" })).await?;
    assert_eq!(
        (t1["track"]["split"]["payee"].as_str(), t1["track"]["split"]["trackId"].as_str()),
        (Some(S0V1.to_string().as_str()), Some("0"))
    );
    let v2 = env
        .data("{ artist(name: \"alice\") { splitsInForce { version trackId } } }", json!({}))
        .await?;
    assert_eq!(v2["artist"]["splitsInForce"], json!([{ "version": 1, "trackId": "0" }]));
    let h = env.data(&track_q, json!({ "id": "1" })).await?;
    let last = nodes(&h["track"]["splitHistory"]);
    assert_eq!((last[1]["version"].as_i64(), last[1]["inForce"].as_bool()), (Some(2), Some(false)));
    let cleared = env
        .data(
            "{ artist(name: \"alice\") { splits(last: 1) { edges { node { clearedAt clearedBlock } } } } }",
            json!({}),
        )
        .await?;
    assert_eq!(
        *nodes(&cleared["artist"]["splits"])[0],
        json!({ "clearedAt": 1_800_001_006, "clearedBlock": 1006 })
    );
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_addresss_earnings_per_split_version() -> eyre::Result<()> {
    let env = Env::scene().await?;
    seed(&env).await?;
    let q = "query($a: String!, $after: String) {
        splitEarnings(recipient: $a, first: 2, after: $after) {
            totalCount pageInfo { hasNextPage endCursor }
            edges { node { split { payee trackId version } recipient { address share earned { raw } fromTips { raw } payments } } } }
        listener(address: $a) { splitEarnings(first: 10) { edges { node { split { version trackId } recipient { earned { raw } } } } } } }";
    let p1 = env.data(q, json!({ "a": R1.to_string() })).await?;
    assert_eq!(p1["splitEarnings"]["totalCount"], 3);
    assert_eq!(p1["splitEarnings"]["pageInfo"]["hasNextPage"], true);
    // Newest version first: track 1's v2, its v1, then alice's own split.
    let rows =
        |d: &Value| -> Vec<Value> { nodes(&d["splitEarnings"]).into_iter().cloned().collect() };
    assert_eq!(
        rows(&p1),
        [
            json!({ "split": { "payee": S1V2.to_string(), "trackId": "1", "version": 2 },
                    "recipient": { "address": R1.to_string(), "share": 2500, "earned": { "raw": "49" }, "fromTips": { "raw": "49" }, "payments": 1 } }),
            json!({ "split": { "payee": S1V1.to_string(), "trackId": "1", "version": 1 },
                    "recipient": { "address": R1.to_string(), "share": 5000, "earned": { "raw": "975" }, "fromTips": { "raw": "0" }, "payments": 1 } }),
        ]
    );
    let p2 = env
        .data(
            q,
            json!({ "a": R1.to_string(), "after": p1["splitEarnings"]["pageInfo"]["endCursor"] }),
        )
        .await?;
    assert_eq!(p2["splitEarnings"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        rows(&p2),
        [json!({ "split": { "payee": S0V1.to_string(), "trackId": "0", "version": 1 },
                 "recipient": { "address": R1.to_string(), "share": 7000, "earned": { "raw": "2253" }, "fromTips": { "raw": "2253" }, "payments": 1 } })]
    );
    // The same through the account query.
    let via_listener: Vec<String> = nodes(&p1["listener"]["splitEarnings"])
        .iter()
        .map(|n| n["recipient"]["earned"]["raw"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(via_listener, ["49", "975", "2253"]);
    // R2 is in two versions, R3 in two; an address in none has no rows.
    let r2 = env.data(q, json!({ "a": R2.to_string() })).await?;
    assert_eq!(r2["splitEarnings"]["totalCount"], 2);
    let nobody = env.data(q, json!({ "a": Address::repeat_byte(0x77).to_string() })).await?;
    assert_eq!(nobody["splitEarnings"]["totalCount"], 0);
    env.stop().await
}

const TIP: &str =
    "blockNumber blockTime txHash logIndex grantId tipId listener payee amount { raw } fee { raw }
    net { raw } message messageUtf8 messageHex artist { name }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tips_keep_their_messages_byte_for_byte() -> eyre::Result<()> {
    let env = Env::scene().await?;
    seed(&env).await?;
    let (alice, listener) = (env.address(ALICE), env.address(LISTENER));
    let q = format!(
        "query($after: String, $before: String, $first: Int, $last: Int) {{ artist(name: \"alice\") {{
            tips(first: $first, after: $after, last: $last, before: $before) {{
                totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} edges {{ node {{ {TIP} }} }} }} }} }}"
    );
    let all = env.data(&q, json!({ "first": 10 })).await?;
    let tips = nodes(&all["artist"]["tips"]);
    // Newest first; to alice's address and to her split payees; bob's tip is not hers.
    let order: Vec<(i64, i64)> = tips
        .iter()
        .map(|t| (t["blockNumber"].as_i64().unwrap(), t["logIndex"].as_i64().unwrap()))
        .collect();
    assert_eq!(order, [(1005, 1), (1005, 0), (1004, 0), (1003, 2), (1003, 0)]);
    assert_eq!(all["artist"]["tips"]["totalCount"], 5);

    // The 280-byte message with markup, quotes and emoji comes back exactly, unescaped.
    let tricky = tips[4];
    let message = tricky_message();
    assert_eq!(tricky["message"].as_str(), Some(message.as_str()));
    assert_eq!(tricky["message"].as_str().unwrap().len(), 280);
    assert_eq!(
        tricky["messageHex"].as_str(),
        Some(alloy::hex::encode_prefixed(message.as_bytes()).as_str())
    );
    assert_eq!(tricky["messageUtf8"], true);
    assert_eq!(
        *tricky,
        json!({
            "blockNumber": 1003, "blockTime": 1_800_001_003, "txHash": B256::repeat_byte(0xee).to_string(),
            "logIndex": 0, "grantId": B256::left_padding_from(listener.as_slice()).to_string(), "tipId": "1",
            "listener": listener.to_string(), "payee": alice.to_string(), "amount": { "raw": "100" },
            "fee": { "raw": "2" }, "net": { "raw": "98" }, "message": message, "messageUtf8": true,
            "messageHex": alloy::hex::encode_prefixed(message.as_bytes()), "artist": { "name": "alice.beatstream.eth" },
        })
    );
    // The raw HTTP body carries it as JSON text, not HTML-escaped.
    let body = json!({ "query": q, "variables": { "first": 10 } }).to_string();
    let (_, raw) = crate::harness::post(env.api, "/graphql", &body).await?;
    assert!(raw.contains("<script>alert(\\\"tip\\\")</script>"), "{raw}");
    assert!(!raw.contains("&lt;") && !raw.contains("\\u003c"), "{raw}");
    // A tip to a split payee names the artist too; one that is not UTF-8 is kept in hex.
    assert_eq!(
        (tips[3]["message"].as_str(), tips[3]["payee"].as_str()),
        (Some("thanks ♥"), Some(S1V2.to_string().as_str()))
    );
    assert_eq!(tips[3]["artist"]["name"], "alice.beatstream.eth");
    assert_eq!(
        (
            tips[2]["message"].as_str(),
            tips[2]["messageUtf8"].as_bool(),
            tips[2]["messageHex"].as_str()
        ),
        (Some("\u{fffd}\u{0}a"), Some(false), Some("0xff0061"))
    );

    // Pages of two, forward and back.
    let p1 = env.data(&q, json!({ "first": 2 })).await?;
    let blocks = |d: &Value| -> Vec<(i64, i64)> {
        nodes(&d["artist"]["tips"])
            .iter()
            .map(|t| (t["blockNumber"].as_i64().unwrap(), t["logIndex"].as_i64().unwrap()))
            .collect()
    };
    assert_eq!(blocks(&p1), [(1005, 1), (1005, 0)]);
    let p2 = env
        .data(&q, json!({ "first": 2, "after": p1["artist"]["tips"]["pageInfo"]["endCursor"] }))
        .await?;
    assert_eq!(blocks(&p2), [(1004, 0), (1003, 2)]);
    let p3 = env
        .data(&q, json!({ "first": 2, "after": p2["artist"]["tips"]["pageInfo"]["endCursor"] }))
        .await?;
    assert_eq!(blocks(&p3), [(1003, 0)]);
    assert_eq!(p3["artist"]["tips"]["pageInfo"]["hasNextPage"], false);
    let back = env
        .data(&q, json!({ "last": 2, "before": p2["artist"]["tips"]["pageInfo"]["startCursor"] }))
        .await?;
    assert_eq!(blocks(&back), [(1005, 1), (1005, 0)]);

    // The listener's sent tips: its three, bob's included, newest first.
    let sent = env
        .data(
            "query($a: String!) { listener(address: $a) { tips { totalCount edges { node { tipId payee amount { raw } artist { name } } } } } }",
            json!({ "a": listener.to_string() }),
        )
        .await?;
    let sent: Vec<(String, String)> = nodes(&sent["listener"]["tips"])
        .iter()
        .map(|t| {
            (
                t["tipId"].as_str().unwrap().to_owned(),
                t["artist"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("3".to_owned(), "bob.beatstream.eth".to_owned()),
            ("2".to_owned(), "alice.beatstream.eth".to_owned()),
            ("1".to_owned(), "alice.beatstream.eth".to_owned()),
        ]
    );
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supporters_rank_by_streams_and_tips_with_ties_in_a_fixed_order() -> eyre::Result<()> {
    let env = Env::scene().await?;
    seed(&env).await?;
    let listener = env.address(LISTENER);
    let q = "query($after: String, $before: String, $first: Int, $last: Int) { artist(name: \"alice\") {
        supporters(first: $first, after: $after, last: $last, before: $before) {
            totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            edges { node { listener streamed { raw } tipped { raw } total { raw } tips } } } } }";
    let all = env.data(q, json!({ "first": 10 })).await?;
    let row = |l: Address, streamed: &str, tipped: &str, total: &str, tips: i64| {
        json!({ "listener": l.to_string(), "streamed": { "raw": streamed }, "tipped": { "raw": tipped },
                "total": { "raw": total }, "tips": tips })
    };
    // The listener: 3,000 settled on-chain to alice's address and 2,000 to track 1's v1; tips of 100 and 200 (its
    // tip to bob does not count). L4 and L2 tie at 3,300: the higher address first.
    let expected = vec![
        row(listener, "5000", "300", "5300", 2),
        row(L4, "0", "3300", "3300", 1),
        row(L2, "0", "3300", "3300", 1),
        row(L3, "0", "50", "50", 1),
    ];
    let got: Vec<Value> = nodes(&all["artist"]["supporters"]).into_iter().cloned().collect();
    assert_eq!(got, expected);
    assert_eq!(all["artist"]["supporters"]["totalCount"], 4);
    // Pages of two split the tie where the order puts it, and walk back.
    let p1 = env.data(q, json!({ "first": 2 })).await?;
    let p2 = env
        .data(
            q,
            json!({ "first": 2, "after": p1["artist"]["supporters"]["pageInfo"]["endCursor"] }),
        )
        .await?;
    let p1: Vec<Value> = nodes(&p1["artist"]["supporters"]).into_iter().cloned().collect();
    let p2d: Vec<Value> = nodes(&p2["artist"]["supporters"]).into_iter().cloned().collect();
    assert_eq!(p1, expected[..2]);
    assert_eq!(p2d, expected[2..]);
    assert_eq!(p2["artist"]["supporters"]["pageInfo"]["hasNextPage"], false);
    let back = env
        .data(
            q,
            json!({ "last": 1, "before": p2["artist"]["supporters"]["pageInfo"]["startCursor"] }),
        )
        .await?;
    let back: Vec<Value> = nodes(&back["artist"]["supporters"]).into_iter().cloned().collect();
    assert_eq!(back, expected[1..2]);
    // Bob's supporters: the listener's tip only (its vouchers to bob are not settled).
    let bob = env
        .data("{ artist(name: \"bob\") { supporters { edges { node { listener total { raw } tips } } } } }", json!({}))
        .await?;
    assert_eq!(
        bob["artist"]["supporters"]["edges"],
        json!([{ "node": { "listener": listener.to_string(), "total": { "raw": "999" }, "tips": 1 } }])
    );
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_get_the_stable_codes() -> eyre::Result<()> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let env = Env::scene().await?;
    seed(&env).await?;
    let code =
        |r: &Value| r["errors"][0]["extensions"]["code"].as_str().unwrap_or_default().to_owned();
    let message = |r: &Value| r["errors"][0]["message"].as_str().unwrap_or_default().to_owned();

    let r = env.query("{ splitEarnings(recipient: \"0x12\") { totalCount } }", json!({})).await?;
    assert_eq!(
        (code(&r), message(&r)),
        ("BAD_USER_INPUT".into(), "not an address: 0x12".into()),
        "{r}"
    );
    let r = env.query("{ listener(address: \"nope\") { tips { totalCount } } }", json!({})).await?;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    let r = env
        .query("{ artist(name: \"alice\") { tips(first: 1001) { totalCount } } }", json!({}))
        .await?;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    let r = env
        .query("{ artist(name: \"alice\") { supporters(last: -1) { totalCount } } }", json!({}))
        .await?;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    // Forged cursors: wrong arity, a key that is no number, bytes that are not `\x` hex. Refused before any SQL.
    for keys in
        [json!(["1"]), json!(["abc", "\\xc2"]), json!(["3300", "c2"]), json!(["3300", "\\x0"])]
    {
        let forged = URL_SAFE_NO_PAD.encode(keys.to_string());
        let r = env
            .query(
                "query($c: String) { artist(name: \"alice\") { supporters(after: $c) { totalCount } } }",
                json!({ "c": forged }),
            )
            .await?;
        assert_eq!(
            (code(&r), message(&r)),
            ("BAD_USER_INPUT".into(), "invalid cursor".into()),
            "{keys}: {r}"
        );
    }
    let forged = URL_SAFE_NO_PAD.encode(json!(["x", "\\xa1"]).to_string());
    let r = env
        .query(
            "query($c: String, $a: String!) { splitEarnings(recipient: $a, after: $c) { totalCount } }",
            json!({ "c": forged, "a": R1.to_string() }),
        )
        .await?;
    assert_eq!((code(&r), message(&r)), ("BAD_USER_INPUT".into(), "invalid cursor".into()), "{r}");
    // An artist nobody registered: no splits, tips or supporters, and no error.
    let r = env.data("{ artist(name: \"nobody\") { splits { totalCount } } }", json!({})).await?;
    assert_eq!(r["artist"], Value::Null);
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_arrives_on_the_artists_subscription() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let node = alice_node(&env).await?;
    let s = Seed { pool: &env.pool, chain_id: env.chain.deployment.chain_id as i64 };
    s.split(&node, 1, S1V1, 1, &[R1, R3], &[5000, 5000], 1001).await?;
    // An old tip: not sent again.
    s.tip((1003, 0), env.address(LISTENER), env.address(ALICE), 1, 100, 2, b"old").await?;
    let mut sub = Sub::open(
        &env,
        "subscription { tipReceived(artist: \"alice\") { tipId payee message amount { raw } } }",
    )
    .await?;
    // Nothing arrives until the subscription has started; give it a moment to read where it starts.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Tips to alice's split payee and to bob; then the indexer's notification for the batch.
    s.tip((1010, 0), L2, S1V1, 7, 500, 12, tricky_message().as_bytes()).await?;
    s.tip((1010, 1), L2, env.address(BOB), 8, 500, 12, b"bob").await?;
    // An earnings notification alone does not wake it; the indexer's tips notification does.
    sqlx::query("SELECT pg_notify('beatstream_earnings', '{\"block\":1010}')")
        .execute(&env.pool)
        .await?;
    let early = tokio::time::timeout(std::time::Duration::from_millis(700), sub.next()).await;
    assert!(early.is_err(), "woken by an earnings notification: {early:?}");
    sqlx::query("SELECT pg_notify('beatstream_tips', '{\"block\":1010}')")
        .execute(&env.pool)
        .await?;
    let next = sub.next().await?;
    assert_eq!(
        next["tipReceived"],
        json!({ "tipId": "7", "payee": S1V1.to_string(), "message": tricky_message(), "amount": { "raw": "500" } })
    );
    // An unknown artist: NOT_FOUND, as a `next` with the error and no data.
    let mut unknown =
        Sub::open(&env, "subscription { tipReceived(artist: \"nobody\") { tipId } }").await?;
    let error = unknown.next_message().await?;
    assert_eq!(
        (
            error["payload"]["data"].clone(),
            error["payload"]["errors"][0]["extensions"]["code"].as_str()
        ),
        (Value::Null, Some("NOT_FOUND")),
        "{error}"
    );
    env.stop().await
}
