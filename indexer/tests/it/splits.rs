//! Splits and tips (contracts v3): the raw rows, `splits`, `split_in_force` and `split_earnings`, and the earnings,
//! funds and grant spend they move, equal to the vault's own views to the base unit; and a reorg through them
//! leaves what a fresh index of the canonical chain has.

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    rpc::types::TransactionReceipt,
    signers::local::PrivateKeySigner,
    sol_types::SolEventInterface,
};
use beatstream_primitives::contracts::{
    BeatStreamRegistry,
    BeatStreamVault::{self, BeatStreamVaultEvents as Vault},
    settle_batch_gas_limit,
};
use beatstream_testkit::TestDb;

use crate::harness::{Chain, Player, Running, USDC, assert_same, config, dump, fresh_index};

/// A message of non-ASCII UTF-8 (a NUL, a tab, a quote and a backslash among it), stored as the bytes signed.
const UNICODE: &str = "thanks for the bridge ♥ — 🎵 \"ok\" \\ \t\0 日本語";

/// Exactly 280 bytes (the vault's maximum): 140 two-byte characters.
fn longest() -> String {
    "é".repeat(140)
}

/// A signed tip of `player` to `payee`.
fn tip(
    chain: &Chain,
    player: &Player,
    payee: Address,
    tip_id: u64,
    amount: u64,
    message: &str,
) -> eyre::Result<BeatStreamVault::TipItem> {
    let sig = chain.domain().sign_tip(
        &player.key,
        player.grant.id(),
        payee,
        U256::from(tip_id),
        U256::from(amount),
        message.as_bytes(),
    )?;
    Ok(BeatStreamVault::TipItem {
        grant: player.grant.clone().into(),
        grantSignature: Bytes::copy_from_slice(&player.grant_sig),
        payee,
        tipId: U256::from(tip_id),
        amount: U256::from(amount),
        message: message.to_owned(),
        tipSignature: Bytes::copy_from_slice(&sig),
    })
}

/// `settleBatchWithTips(items, tips)` as `keeper`, with gas for splits; the receipt.
async fn settle(
    chain: &Chain,
    keeper: &PrivateKeySigner,
    items: Vec<BeatStreamVault::SettlementItem>,
    tips: Vec<BeatStreamVault::TipItem>,
) -> eyre::Result<TransactionReceipt> {
    let gas = settle_batch_gas_limit(items.len() + tips.len()) + 1_000_000;
    let r = chain
        .vault(keeper)
        .settleBatchWithTips(items, tips)
        .gas(gas)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "settleBatchWithTips reverted");
    Ok(r)
}

/// `setSplit` as `manager`; the new version's payee.
async fn set_split(
    chain: &Chain,
    manager: &PrivateKeySigner,
    node: B256,
    track: U256,
    shares: &[(Address, u16)],
) -> eyre::Result<(Address, TransactionReceipt)> {
    let vault = chain.vault(manager);
    let (recipients, bps): (Vec<Address>, Vec<u16>) = shares.iter().copied().unzip();
    let r = vault.setSplit(node, track, recipients, bps).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "setSplit reverted");
    let (split, _) = {
        let c = vault.currentSplit(node, track).call().await?;
        (c.split, c.version)
    };
    Ok((split, r))
}

/// What the vault's events in `receipts` paid each (split, recipient): (earned, from tips, payments), read from the
/// `SplitPaid` events and the event before each, independently of the indexer.
fn paid_by_chain(
    chain: &Chain,
    receipts: &[TransactionReceipt],
) -> BTreeMap<(Address, Address), (U256, U256, i64)> {
    let mut recipients: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    let mut paid: BTreeMap<(Address, Address), (U256, U256, i64)> = BTreeMap::new();
    for r in receipts {
        let mut before: Option<Vault> = None;
        for log in r.inner.logs() {
            if log.address() != chain.deployment.contracts.vault {
                continue;
            }
            let Ok(event) = Vault::decode_raw_log(log.topics(), &log.data().data) else { continue };
            match &event {
                Vault::SplitSet(e) => {
                    recipients.insert(e.split, e.recipients.clone());
                }
                Vault::SplitPaid(e) => {
                    let tip = matches!(before, Some(Vault::Tipped(_)));
                    for (to, part) in recipients[&e.split].iter().zip(&e.parts) {
                        let row = paid.entry((e.split, *to)).or_default();
                        row.0 += *part;
                        if tip {
                            row.1 += *part;
                        }
                        row.2 += 1;
                    }
                }
                _ => {}
            }
            before = Some(event);
        }
    }
    paid
}

/// A `split_earnings` row: split, recipient, earned, from tips, payments.
type SplitEarningsRow = (Vec<u8>, Vec<u8>, String, String, i64);

/// A `splits` row: split, version, recipients, shares, whether cleared.
type SplitRow = (Vec<u8>, i64, Vec<Vec<u8>>, Vec<i32>, bool);

async fn num(db: &TestDb, sql: &str, key: &[&[u8]]) -> eyre::Result<U256> {
    let mut q = sqlx::query_scalar::<_, String>(sql);
    for k in key {
        q = q.bind(*k);
    }
    Ok(q.fetch_optional(db.pool()).await?.map_or(Ok(U256::ZERO), |s| s.parse())?)
}

/// `payee_earnings.withdrawable` of `payee` (zero without a row).
async fn withdrawable(db: &TestDb, payee: Address) -> eyre::Result<U256> {
    num(db, "SELECT withdrawable::text FROM payee_earnings WHERE payee = $1", &[payee.as_slice()])
        .await
}

/// Asserts the mirror equals the vault: every payee's earnings, the listeners' funds, the grants' spend, and
/// `split_earnings` equal what the chain's `SplitPaid` events paid.
async fn assert_matches_chain(
    chain: &Chain,
    db: &TestDb,
    payees: &[Address],
    players: &[&Player],
    receipts: &[TransactionReceipt],
) -> eyre::Result<()> {
    let vault = chain.vault(&chain.anvil.signer(0));
    for payee in payees {
        let on_chain = vault.earningsOf(*payee).call().await?;
        assert_eq!(withdrawable(db, *payee).await?, on_chain, "earnings of {payee}");
    }
    for player in players {
        let listener = player.grant.listener;
        let account = vault.accountOf(listener).call().await?;
        let (available, thawing): (String, String) = sqlx::query_as(
            "SELECT available::text, thawing::text FROM listener_accounts WHERE listener = $1",
        )
        .bind(listener.as_slice())
        .fetch_one(db.pool())
        .await?;
        let (available, thawing): (U256, U256) = (available.parse()?, thawing.parse()?);
        assert_eq!(
            (available, thawing),
            (account.available, account.thawing),
            "funds of {listener}"
        );
        assert_eq!(available, vault.spendableOf(listener).call().await?, "spendableOf {listener}");
        let id = player.grant.id();
        let spent =
            num(db, "SELECT spent::text FROM grant_spend WHERE grant_id = $1", &[id.as_slice()])
                .await?;
        assert_eq!(spent, vault.grantSpent(id).call().await?, "grantSpent of {id}");
    }
    let rows: Vec<SplitEarningsRow> = sqlx::query_as(
        "SELECT split, recipient, earned::text, from_tips::text, payments FROM split_earnings",
    )
    .fetch_all(db.pool())
    .await?;
    let mirrored: BTreeMap<(Address, Address), (U256, U256, i64)> = rows
        .into_iter()
        .map(|(s, r, e, t, n)| {
            let key = (Address::from_slice(&s), Address::from_slice(&r));
            (key, (e.parse().expect("a number"), t.parse().expect("a number"), n))
        })
        .collect();
    assert_eq!(mirrored, paid_by_chain(chain, receipts));
    Ok(())
}

#[tokio::test]
async fn splits_and_tips_match_the_vault() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let [keeper, artist, alice, r1, r2]: [_; 5] = std::array::from_fn(|i| chain.anvil.signer(i));
    let r3 = Address::repeat_byte(0x33);
    let node = chain.register(&artist, "splitter", 10).await?;
    chain.fund(&alice, 100 * USDC).await?;
    let player = Player::new(&chain, alice.clone(), 1).await?;
    let mut receipts = Vec::new();

    // Version 1, and a settlement to it (an amount whose parts need rounding).
    let (v1, r) = set_split(
        &chain,
        &artist,
        node,
        U256::ZERO,
        &[(r1.address(), 7_000), (r2.address(), 3_000)],
    )
    .await?;
    receipts.push(r);
    receipts
        .push(settle(&chain, &keeper, vec![player.item(&chain, v1, 1_000_003)?], vec![]).await?);
    indexer.catch_up(&chain).await?;
    let in_force: Vec<u8> =
        sqlx::query_scalar("SELECT split FROM split_in_force WHERE node = $1 AND track_id = 0")
            .bind(node.as_slice())
            .fetch_one(db.pool())
            .await?;
    assert_eq!(Address::from_slice(&in_force), v1);

    // Version 2; plays started under version 1 still settle to it, and new ones to version 2.
    let (v2, r) = set_split(
        &chain,
        &artist,
        node,
        U256::ZERO,
        &[(r1.address(), 3_333), (r2.address(), 3_333), (r3, 3_334)],
    )
    .await?;
    assert_ne!(v1, v2);
    receipts.push(r);
    receipts.push(
        settle(
            &chain,
            &keeper,
            vec![player.item(&chain, v1, 2_000_000)?, player.item(&chain, v2, 1_234_567)?],
            vec![],
        )
        .await?,
    );

    // Most of alice's funds start thawing, so the tips draw on thawing funds. Tips: to version 2, to the artist
    // (a plain payee), one already settled and one too long (both skipped).
    let available = chain.vault(&alice).accountOf(alice.address()).call().await?.available;
    let r = chain
        .vault(&alice)
        .requestWithdrawal(available - U256::from(100_000))
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "requestWithdrawal reverted");
    let too_long = "x".repeat(281);
    receipts.push(
        settle(
            &chain,
            &keeper,
            vec![],
            vec![
                tip(&chain, &player, v2, 1, 777_777, UNICODE)?,
                tip(&chain, &player, artist.address(), 2, 500_001, &longest())?,
                tip(&chain, &player, artist.address(), 2, 500_001, &longest())?,
                tip(&chain, &player, artist.address(), 3, 5, &too_long)?,
            ],
        )
        .await?,
    );

    // A settler pays version 3's payee before it exists; setSplit passes that on. Then version 3 is cleared, and
    // what was streamed under version 2 still pays version 2.
    let v3 = chain.vault(&keeper).splitPayee(node, U256::ZERO, 3).call().await?;
    receipts.push(settle(&chain, &keeper, vec![player.item(&chain, v3, 40_000)?], vec![]).await?);
    let (set_v3, r) =
        set_split(&chain, &artist, node, U256::ZERO, &[(r2.address(), 10_000)]).await?;
    assert_eq!(set_v3, v3);
    receipts.push(r);
    let r = chain.vault(&artist).clearSplit(node, U256::ZERO).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "clearSplit reverted");
    receipts.push(r);
    receipts
        .push(settle(&chain, &keeper, vec![player.item(&chain, v2, 2_000_000)?], vec![]).await?);
    // A recipient withdraws part of what it was paid.
    let r = chain
        .vault(&r1)
        .withdrawEarnings(r1.address(), U256::from(12_345))
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "withdrawEarnings reverted");
    // A track's own split: in force for that track alone, and what the vault's playPayee names for it.
    let track = BeatStreamRegistry::TrackInput {
        title: "split track".into(),
        duration: 180,
        ratePerSecond: 0,
        contentHash: B256::repeat_byte(0x5e),
        metadataURI: "ipfs://split-track".into(),
    };
    let registry = chain.registry(&artist);
    let track_id = registry.publishTrack(node, track.clone()).call().await?;
    let r = registry.publishTrack(node, track).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "publishTrack reverted");
    let (v_track, r) = set_split(&chain, &artist, node, track_id, &[(r3, 10_000)]).await?;
    receipts.push(r);
    assert_eq!(chain.vault(&keeper).playPayee(track_id).call().await?, v_track);
    indexer.catch_up(&chain).await?;
    let in_force: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT track_id::text, split FROM split_in_force WHERE node = $1")
            .bind(node.as_slice())
            .fetch_all(db.pool())
            .await?;
    assert_eq!(in_force, [(track_id.to_string(), v_track.to_vec())]);

    let payees = [v1, v2, v3, v_track, r1.address(), r2.address(), r3, artist.address()];
    assert_matches_chain(&chain, &db, &payees, &[&player], &receipts).await?;
    for split in [v1, v2, v3] {
        assert_eq!(chain.vault(&keeper).earningsOf(split).call().await?, U256::ZERO);
    }
    // The thawing funds paid part of the tips.
    let thawing: String =
        sqlx::query_scalar("SELECT thawing::text FROM listener_accounts WHERE listener = $1")
            .bind(alice.address().as_slice())
            .fetch_one(db.pool())
            .await?;
    assert!(
        thawing.parse::<U256>()? < available - U256::from(100_000),
        "thawing funds were drawn on"
    );

    // Raw rows: tips with the exact message bytes, the skips, the payments and their sources.
    let tips: Vec<(String, Vec<u8>, Vec<u8>)> =
        sqlx::query_as("SELECT tip_id::text, payee, message FROM vault_tips ORDER BY tip_id")
            .fetch_all(db.pool())
            .await?;
    assert_eq!(
        tips,
        [
            ("1".to_owned(), v2.to_vec(), UNICODE.as_bytes().to_vec()),
            ("2".to_owned(), artist.address().to_vec(), longest().into_bytes()),
        ]
    );
    assert_eq!(tips[1].2.len(), 280);
    let skips: Vec<(String, i16)> =
        sqlx::query_as("SELECT tip_id::text, reason FROM vault_tip_skips ORDER BY tip_id")
            .fetch_all(db.pool())
            .await?;
    assert_eq!(skips, [("2".to_owned(), 9), ("3".to_owned(), 10)]);
    let sources: Vec<(Vec<u8>, String, bool)> = sqlx::query_as(
        "SELECT split, source, source_log_index = log_index - 1 FROM vault_split_payments \
         ORDER BY block_number, log_index",
    )
    .fetch_all(db.pool())
    .await?;
    let sources: Vec<(Address, &str, bool)> =
        sources.iter().map(|(s, k, b)| (Address::from_slice(s), k.as_str(), *b)).collect();
    assert_eq!(
        sources,
        [
            (v1, "settled", true),
            (v1, "settled", true),
            (v2, "settled", true),
            (v2, "tipped", true),
            (v3, "split_set", true),
            (v2, "settled", true),
        ]
    );
    let parts: Vec<String> = sqlx::query_scalar(
        "SELECT parts::text FROM vault_split_payments ORDER BY block_number, log_index LIMIT 1",
    )
    .fetch_all(db.pool())
    .await?;
    let net = 1_000_003 - 1_000_003 * 250 / 10_000;
    let on_chain = chain.vault(&keeper).splitParts(v1, U256::from(net)).call().await?;
    assert_eq!(parts, [format!("{{{},{}}}", on_chain[0], on_chain[1])]);
    let cut: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vault_admin_events WHERE kind = 'not_mirrored'")
            .fetch_one(db.pool())
            .await?;
    assert_eq!(cut, 0);

    // The artist's splits: every version, version 3 cleared, none in force.
    let splits: Vec<SplitRow> = sqlx::query_as(
        "SELECT split, version, recipients, shares, cleared_block IS NOT NULL FROM splits WHERE track_id = 0 ORDER BY version",
    )
    .fetch_all(db.pool())
    .await?;
    assert_eq!(
        splits,
        [
            (
                v1.to_vec(),
                1,
                vec![r1.address().to_vec(), r2.address().to_vec()],
                vec![7_000, 3_000],
                false
            ),
            (
                v2.to_vec(),
                2,
                vec![r1.address().to_vec(), r2.address().to_vec(), r3.to_vec()],
                vec![3_333, 3_333, 3_334],
                false
            ),
            (v3.to_vec(), 3, vec![r2.address().to_vec()], vec![10_000], true),
        ]
    );
    let in_force: i64 =
        sqlx::query_scalar("SELECT count(*) FROM split_in_force WHERE track_id = 0")
            .fetch_one(db.pool())
            .await?;
    assert_eq!(in_force, 0);
    indexer.stop().await?;

    // A fresh index (other batch boundaries) writes the same.
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}

/// Splits set, paid, changed and cleared, and tips to split and plain payees, inside reorged blocks: the database
/// ends equal to a fresh index of the new branch and to the vault.
#[tokio::test]
async fn a_reorg_through_splits_and_tips_equals_a_fresh_index() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let [keeper, artist, alice, r1, r2]: [_; 5] = std::array::from_fn(|i| chain.anvil.signer(i));
    let node = chain.register(&artist, "reorg-splitter", 10).await?;
    chain.fund(&alice, 100 * USDC).await?;
    let player = Player::new(&chain, alice.clone(), 1).await?;
    let mut receipts = Vec::new();
    let (v1, r) = set_split(
        &chain,
        &artist,
        node,
        U256::ZERO,
        &[(r1.address(), 5_000), (r2.address(), 5_000)],
    )
    .await?;
    receipts.push(r);
    receipts.push(
        settle(
            &chain,
            &keeper,
            vec![player.item(&chain, v1, 333_333)?],
            vec![tip(&chain, &player, v1, 1, 10_001, UNICODE)?],
        )
        .await?,
    );
    indexer.catch_up(&chain).await?;

    // The old branch: version 2, payments to both versions, tips, a clear.
    let snapshot = chain.snapshot().await?;
    let (v2, _) = set_split(
        &chain,
        &artist,
        node,
        U256::ZERO,
        &[(r2.address(), 9_000), (r1.address(), 1_000)],
    )
    .await?;
    settle(
        &chain,
        &keeper,
        vec![player.item(&chain, v1, 700_000)?, player.item(&chain, v2, 99_999)?],
        vec![
            tip(&chain, &player, v2, 2, 55_555, &longest())?,
            tip(&chain, &player, artist.address(), 3, 1_234, "plain")?,
        ],
    )
    .await?;
    chain.vault(&artist).clearSplit(node, U256::ZERO).send().await?.get_receipt().await?;
    let old_head = chain.head().await?;
    indexer.catch_up(&chain).await?;
    let versions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM splits").fetch_one(db.pool()).await?;
    assert_eq!(versions, 2, "the old branch was indexed");

    // The new branch: another version 2 (the same payee, other recipients), other payments and tips.
    chain.revert(snapshot).await?;
    let (v2_new, r) =
        set_split(&chain, &artist, node, U256::ZERO, &[(r1.address(), 10_000)]).await?;
    assert_eq!(v2_new, v2, "a version's payee depends on (node, track, version) alone");
    receipts.push(r);
    receipts.push(
        settle(
            &chain,
            &keeper,
            vec![player.item(&chain, v2, 4_321)?],
            vec![tip(&chain, &player, v1, 4, 777, "new branch")?],
        )
        .await?,
    );
    let head = chain.head().await?;
    chain.mine((old_head + 3).saturating_sub(head).max(1)).await?;
    indexer.catch_up(&chain).await?;
    assert!(indexer.metrics.reorgs.get() >= 1, "the reorg was detected");
    indexer.stop().await?;

    let payees = [v1, v2, r1.address(), r2.address(), artist.address()];
    assert_matches_chain(&chain, &db, &payees, &[&player], &receipts).await?;
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}
