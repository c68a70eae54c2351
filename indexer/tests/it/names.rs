//! Artist names are ERC-721 tokens of the registry: `artists.owner` follows the token, and ENS, where the registry
//! owns every artist's subname, decides nothing about it any more.

use alloy::primitives::{Address, B256, U256};
use beatstream_testkit::TestDb;

use crate::{
    harness::{Chain, Running, assert_same, config, dump, fresh_index},
    mirror::ens_takeover,
};

/// `artists.owner` of `node`.
pub(crate) async fn artist_owner(db: &TestDb, node: B256) -> eyre::Result<Option<Address>> {
    let owner: Option<Vec<u8>> = sqlx::query_scalar("SELECT owner FROM artists WHERE node = $1")
        .bind(node.as_slice())
        .fetch_optional(db.pool())
        .await?;
    Ok(owner.map(|o| Address::from_slice(&o)))
}

/// The registry's holder of `node`'s name token.
pub(crate) async fn token_holder(chain: &Chain, node: B256) -> eyre::Result<Address> {
    Ok(chain.registry(&chain.anvil.signer(0)).ownerOf(U256::from_be_bytes(node.0)).call().await?)
}

#[tokio::test]
async fn the_artist_owner_follows_the_name_token_not_ens() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let [deployer, artist, bob, carol, dave]: [_; 5] =
        std::array::from_fn(|i| chain.anvil.signer(i));
    let node = chain.register(&artist, "token-holder", 10).await?;
    let token = U256::from_be_bytes(node.0);
    indexer.catch_up(&chain).await?;
    assert_eq!(artist_owner(&db, node).await?, Some(artist.address()), "the mint");

    // A plain transfer, then a safe transfer by an operator bob approved for all his tokens.
    let r = chain
        .registry(&artist)
        .transferFrom(artist.address(), bob.address(), token)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "transferFrom reverted");
    let r = chain
        .registry(&bob)
        .setApprovalForAll(dave.address(), true)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "setApprovalForAll reverted");
    let r = chain
        .registry(&dave)
        .safeTransferFrom_0(bob.address(), carol.address(), token)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "safeTransferFrom reverted");
    indexer.catch_up(&chain).await?;
    assert_eq!(artist_owner(&db, node).await?, Some(carol.address()));
    assert_eq!(token_holder(&chain, node).await?, carol.address());

    // Whoever controls `eth` takes the subname in ENS. The events are mirrored; the artist stays carol's.
    let ens_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ens_events").fetch_one(db.pool()).await?;
    ens_takeover(&chain, &deployer, "token-holder", dave.address()).await?;
    indexer.catch_up(&chain).await?;
    let kinds: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT kind, owner FROM ens_events WHERE owner IS NOT NULL ORDER BY block_number DESC, log_index DESC \
         LIMIT 2",
    )
    .fetch_all(db.pool())
    .await?;
    assert_eq!(
        kinds,
        [
            ("transfer".to_owned(), dave.address().to_vec()),
            ("new_owner".to_owned(), deployer.address().to_vec())
        ]
    );
    let ens_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ens_events").fetch_one(db.pool()).await?;
    assert_eq!(ens_after, ens_before + 2);
    assert_eq!(
        artist_owner(&db, node).await?,
        Some(carol.address()),
        "ENS does not move the artist"
    );

    // Raw rows: the mint and two transfers, keyed by the token's node.
    let transfers: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT node, from_addr, to_addr FROM registry_name_transfers ORDER BY block_number, log_index",
    )
    .fetch_all(db.pool())
    .await?;
    let n = node.to_vec();
    assert_eq!(
        transfers,
        [
            (n.clone(), Address::ZERO.to_vec(), artist.address().to_vec()),
            (n.clone(), artist.address().to_vec(), bob.address().to_vec()),
            (n, bob.address().to_vec(), carol.address().to_vec()),
        ]
    );

    indexer.stop().await?;
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}
