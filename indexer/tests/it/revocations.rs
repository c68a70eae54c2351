//! Grant revocations and nonce floors: raw rows, and derived rows equal to the vault's own views, including a raise
//! that replaces one still pending.

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use beatstream_testkit::TestDb;

use crate::harness::{
    Chain, Player, Running, USDC, assert_same, config, dump, fresh_index, settle,
};

/// A listener's `listener_nonce_floors` row as the vault's `nonceFloorOf` reports it: (floor, previous, floorFrom).
pub(crate) async fn floor_row(
    db: &TestDb,
    listener: Address,
) -> eyre::Result<Option<(u64, u64, u64)>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT floor::text, previous::text, extract(epoch FROM floor_from)::int8 FROM listener_nonce_floors \
         WHERE listener = $1",
    )
    .bind(listener.as_slice())
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some((floor, previous, from)) => Some((floor.parse()?, previous.parse()?, from as u64)),
        None => None,
    })
}

/// The vault's `nonceFloorOf(listener)`.
pub(crate) async fn floor_on_chain(
    chain: &Chain,
    listener: Address,
) -> eyre::Result<(u64, u64, u64)> {
    let f = chain.vault(&chain.anvil.signer(0)).nonceFloorOf(listener).call().await?;
    Ok((f.floor, f.previous, f.floorFrom.to()))
}

/// The `grant_revocations` row of `player`'s grant: (revoked_at, effective_at).
pub(crate) async fn revocation_row(
    db: &TestDb,
    player: &Player,
) -> eyre::Result<Option<(u64, u64)>> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT extract(epoch FROM revoked_at)::int8, extract(epoch FROM effective_at)::int8 \
         FROM grant_revocations WHERE grant_id = $1 AND listener = $2",
    )
    .bind(player.grant.id().as_slice())
    .bind(player.grant.listener.as_slice())
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|(at, effective)| (at as u64, effective as u64)))
}

/// The vault's `grantRevokedAt` of `player`'s grant (zero: not revoked).
pub(crate) async fn revoked_on_chain(chain: &Chain, player: &Player) -> eyre::Result<u64> {
    let vault = chain.vault(&chain.anvil.signer(0));
    Ok(vault.grantRevokedAt(player.grant.listener, player.grant.id()).call().await?.to())
}

pub(crate) async fn revoke(
    chain: &Chain,
    listener: &PrivateKeySigner,
    player: &Player,
) -> eyre::Result<()> {
    let r =
        chain.vault(listener).revokeGrant(player.grant.id()).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "revokeGrant reverted");
    Ok(())
}

pub(crate) async fn raise_floor(
    chain: &Chain,
    listener: &PrivateKeySigner,
    floor: u64,
) -> eyre::Result<()> {
    let r = chain.vault(listener).revokeGrantsBelow(floor).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "revokeGrantsBelow reverted");
    Ok(())
}

#[tokio::test]
async fn revocations_and_nonce_floors_follow_the_vault() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let keeper = chain.anvil.signer(0);
    let artist = chain.anvil.signer(1);
    let alice = chain.anvil.signer(2);
    let bob = chain.anvil.signer(3);
    chain.fund(&alice, 10 * USDC).await?;
    // One grant registered on-chain by a settlement, one never seen by the vault: both can be revoked.
    let settled = Player::new(&chain, alice.clone(), 1).await?;
    let unseen = Player::new(&chain, alice.clone(), 2).await?;
    settle(&chain, &keeper, vec![settled.item(&chain, artist.address(), USDC)?]).await?;

    revoke(&chain, &alice, &settled).await?;
    let settled_revoked = chain.now().await?;
    revoke(&chain, &alice, &unseen).await?;
    let unseen_revoked = chain.now().await?;

    // Alice raises her floor to 5, and to 8 before the first raise took effect: the 8 replaces the pending 5, and the
    // floor in force until it takes effect stays 0.
    raise_floor(&chain, &alice, 5).await?;
    raise_floor(&chain, &alice, 8).await?;
    let replaced = chain.now().await?;
    raise_floor(&chain, &bob, 3).await?;
    indexer.catch_up(&chain).await?;
    assert_eq!(floor_row(&db, alice.address()).await?, Some((8, 0, replaced + 60)));
    for who in [alice.address(), bob.address()] {
        assert_eq!(
            floor_row(&db, who).await?,
            Some(floor_on_chain(&chain, who).await?),
            "floor of {who}"
        );
    }

    // After the delay the 8 is in force; the next raise keeps it as the floor meanwhile. This one folds into a row
    // an earlier transaction wrote.
    chain.warp(61).await?;
    raise_floor(&chain, &alice, 10).await?;
    let raised = chain.now().await?;
    indexer.catch_up(&chain).await?;
    assert_eq!(floor_row(&db, alice.address()).await?, Some((10, 8, raised + 60)));
    assert_eq!(
        floor_row(&db, alice.address()).await?,
        Some(floor_on_chain(&chain, alice.address()).await?)
    );
    assert_eq!(
        floor_row(&db, chain.anvil.signer(4).address()).await?,
        None,
        "no row for a listener who never raised"
    );

    for (player, at) in [(&settled, settled_revoked), (&unseen, unseen_revoked)] {
        let effective = revoked_on_chain(&chain, player).await?;
        assert_eq!(effective, at + 60, "the vault's revocation takes effect after the delay");
        assert_eq!(revocation_row(&db, player).await?, Some((at, effective)));
    }

    // Raw rows: one per event, as the chain has them.
    let raw: Vec<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
        "SELECT listener, grant_id, extract(epoch FROM effective_at)::int8 FROM vault_grant_revocations \
         ORDER BY block_number",
    )
    .fetch_all(db.pool())
    .await?;
    assert_eq!(
        raw,
        [(&settled, settled_revoked), (&unseen, unseen_revoked)].map(|(p, at)| (
            alice.address().to_vec(),
            p.grant.id().to_vec(),
            at as i64 + 60
        ))
    );
    let raises: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT listener, nonce_floor::text FROM vault_nonce_floor_raises ORDER BY block_number, log_index",
    )
    .fetch_all(db.pool())
    .await?;
    let a = alice.address().to_vec();
    assert_eq!(
        raises,
        [(a.clone(), "5"), (a.clone(), "8"), (bob.address().to_vec(), "3"), (a, "10")]
            .map(|(l, f)| (l, f.to_owned()))
    );
    // They are no longer stored as admin rows.
    let admin: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM vault_admin_events WHERE kind IN ('grant_revoked', 'nonce_floor_raised')",
    )
    .fetch_one(db.pool())
    .await?;
    assert_eq!(admin, 0);

    // The vault refuses the revoked grant now that the delay has passed, as the mirror says it will.
    let vault = chain.vault(&keeper);
    assert!(vault.isRevoked(settled.grant.clone().into()).call().await?);

    indexer.stop().await?;
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}
