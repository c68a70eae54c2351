//! After reorgs of depth 1, 5 and 30 (anvil snapshot and revert, then a longer branch), the database equals a fresh
//! index of the canonical chain, also when the reorged blocks revoked grants, raised nonce floors and moved name
//! tokens; a reorg deeper than the kept window stops the indexer without touching the data.

use alloy::primitives::{Address, U256};
use beatstream_testkit::TestDb;

use crate::{
    harness::{Chain, Player, Running, USDC, assert_same, config, dump, fresh_index, settle},
    names::{artist_owner, token_holder},
    revocations::{
        floor_on_chain, floor_row, raise_floor, revocation_row, revoke, revoked_on_chain,
    },
};

/// What the new branch does in place of the old one.
#[derive(Clone, Copy)]
enum NewBranch {
    /// Empty blocks: the old branch's settlements are removed.
    Removes,
    /// Settlements with other amounts and payees, and a new deposit.
    Changes,
}

async fn reorg_equals_fresh_index(depth: u64, branch: NewBranch) -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let keeper = chain.anvil.signer(0);
    let artist = chain.anvil.signer(1);
    let listener = chain.anvil.signer(2);
    chain.register(&artist, "reorg-artist", 10).await?;
    chain.fund(&listener, 100 * USDC).await?;
    let player = Player::new(&chain, listener.clone(), 1).await?;
    settle(&chain, &keeper, vec![player.item(&chain, artist.address(), USDC)?]).await?;
    indexer.catch_up(&chain).await?;

    // The old branch: `depth` blocks, each settling more.
    let snapshot = chain.snapshot().await?;
    for i in 0..depth {
        settle(
            &chain,
            &keeper,
            vec![player.item(&chain, artist.address(), USDC + (i + 1) * 1000)?],
        )
        .await?;
    }
    let old_head = chain.head().await?;
    indexer.catch_up(&chain).await?;
    let settled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vault_settlements").fetch_one(db.pool()).await?;
    assert_eq!(settled as u64, 1 + depth, "the old branch was indexed");

    // The new branch replaces all `depth` blocks and grows past the old head.
    chain.revert(snapshot).await?;
    match branch {
        NewBranch::Removes => chain.mine(depth + 3).await?,
        NewBranch::Changes => {
            let other = Address::repeat_byte(0x42);
            for i in 0..depth {
                settle(&chain, &keeper, vec![player.item(&chain, other, 500 + i * 7)?]).await?;
            }
            chain.fund(&chain.anvil.signer(3), 3 * USDC).await?;
            let head = chain.head().await?;
            chain.mine((old_head + 3).saturating_sub(head).max(1)).await?;
        }
    }
    assert!(chain.head().await? > old_head);
    indexer.catch_up(&chain).await?;
    assert!(indexer.metrics.reorgs.get() >= 1, "the reorg was detected");
    indexer.stop().await?;

    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}

#[tokio::test]
async fn reorg_depth_1_removing_a_settlement() -> eyre::Result<()> {
    reorg_equals_fresh_index(1, NewBranch::Removes).await
}

#[tokio::test]
async fn reorg_depth_5_removing_settlements() -> eyre::Result<()> {
    reorg_equals_fresh_index(5, NewBranch::Removes).await
}

#[tokio::test]
async fn reorg_depth_5_changing_settlements() -> eyre::Result<()> {
    reorg_equals_fresh_index(5, NewBranch::Changes).await
}

#[tokio::test]
async fn reorg_depth_30_changing_settlements() -> eyre::Result<()> {
    reorg_equals_fresh_index(30, NewBranch::Changes).await
}

#[tokio::test]
async fn reorg_deeper_than_the_window_stops_without_changing_data() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let mut cfg = config(&chain, &db);
    cfg.options.reorg_window = 4;
    let indexer = Running::start(cfg);
    let keeper = chain.anvil.signer(0);
    let listener = chain.anvil.signer(2);
    chain.fund(&listener, 10 * USDC).await?;
    let player = Player::new(&chain, listener.clone(), 1).await?;
    let snapshot = chain.snapshot().await?;
    for i in 0..10 {
        settle(&chain, &keeper, vec![player.item(&chain, Address::repeat_byte(1), 100 + i)?])
            .await?;
    }
    indexer.catch_up(&chain).await?;
    let before = dump(&db).await?;

    chain.revert(snapshot).await?;
    chain.mine(14).await?;
    let err = indexer.finish().await.expect_err("a reorg beyond the window must stop the indexer");
    assert!(matches!(err, beatstream_indexer::Error::ReorgBeyondWindow { .. }), "{err}");
    assert!(err.to_string().contains("--reorg-window"), "the error says what to do: {err}");
    assert_same(&dump(&db).await?, &before);
    Ok(())
}

/// A revocation, nonce-floor raises (one of a row that existed before, one of a new row) and a name-token transfer
/// inside the reorged blocks: the derived rows roll back with them, and end equal to the chain's views and to a
/// fresh index.
async fn reorg_of_revocations_floors_and_names(branch: NewBranch) -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let [keeper, artist, alice, bob, carol]: [_; 5] =
        std::array::from_fn(|i| chain.anvil.signer(i));
    let node = chain.register(&artist, "reorg-names", 10).await?;
    let token = U256::from_be_bytes(node.0);
    chain.fund(&alice, 10 * USDC).await?;
    let first = Player::new(&chain, alice.clone(), 1).await?;
    let second = Player::new(&chain, alice.clone(), 2).await?;
    settle(&chain, &keeper, vec![first.item(&chain, artist.address(), USDC)?]).await?;
    raise_floor(&chain, &alice, 1).await?;
    indexer.catch_up(&chain).await?;
    let alice_floor = floor_row(&db, alice.address()).await?;
    assert!(alice_floor.is_some());

    // The old branch.
    let snapshot = chain.snapshot().await?;
    revoke(&chain, &alice, &first).await?;
    raise_floor(&chain, &alice, 3).await?;
    raise_floor(&chain, &bob, 2).await?;
    transfer(&chain, &artist, bob.address(), token).await?;
    chain.mine(2).await?;
    let old_head = chain.head().await?;
    indexer.catch_up(&chain).await?;
    assert!(
        revocation_row(&db, &first).await?.is_some(),
        "the old branch's revocation was indexed"
    );
    assert_eq!(floor_row(&db, alice.address()).await?.map(|f| f.0), Some(3));
    assert!(floor_row(&db, bob.address()).await?.is_some());
    assert_eq!(artist_owner(&db, node).await?, Some(bob.address()));

    // The new branch replaces it and grows past the old head.
    chain.revert(snapshot).await?;
    match branch {
        NewBranch::Removes => chain.mine(old_head + 3 - chain.head().await?).await?,
        NewBranch::Changes => {
            revoke(&chain, &alice, &second).await?;
            // A raise and its replacement while pending.
            raise_floor(&chain, &alice, 2).await?;
            raise_floor(&chain, &alice, 4).await?;
            transfer(&chain, &artist, carol.address(), token).await?;
            let head = chain.head().await?;
            chain.mine((old_head + 3).saturating_sub(head).max(1)).await?;
        }
    }
    assert!(chain.head().await? > old_head);
    indexer.catch_up(&chain).await?;
    assert!(indexer.metrics.reorgs.get() >= 1, "the reorg was detected");

    for player in [&first, &second] {
        let effective = revocation_row(&db, player).await?.map_or(0, |r| r.1);
        assert_eq!(
            effective,
            revoked_on_chain(&chain, player).await?,
            "revocation of {}",
            player.grant.nonce
        );
    }
    for who in [alice.address(), bob.address()] {
        let on_chain = Some(floor_on_chain(&chain, who).await?).filter(|f| *f != (0, 0, 0));
        assert_eq!(floor_row(&db, who).await?, on_chain, "floor of {who}");
    }
    assert_eq!(artist_owner(&db, node).await?, Some(token_holder(&chain, node).await?));
    if let NewBranch::Removes = branch {
        assert_eq!(floor_row(&db, alice.address()).await?, alice_floor, "restored, not deleted");
        assert_eq!(artist_owner(&db, node).await?, Some(artist.address()));
    }
    indexer.stop().await?;

    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}

async fn transfer(
    chain: &Chain,
    from: &alloy::signers::local::PrivateKeySigner,
    to: Address,
    token: U256,
) -> eyre::Result<()> {
    let registry = chain.registry(from);
    let r = registry.transferFrom(from.address(), to, token).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "transferFrom reverted");
    Ok(())
}

#[tokio::test]
async fn reorg_removing_a_revocation_floor_raises_and_a_name_transfer() -> eyre::Result<()> {
    reorg_of_revocations_floors_and_names(NewBranch::Removes).await
}

#[tokio::test]
async fn reorg_changing_a_revocation_floor_raises_and_a_name_transfer() -> eyre::Result<()> {
    reorg_of_revocations_floors_and_names(NewBranch::Changes).await
}
