//! Contract-wallet listeners: the grant signature is checked with ERC-1271 `isValidSignature` through an `eth_call`
//! on a real anvil.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::{Provider, ProviderBuilder},
};
use beatstream_primitives::SessionGrant;
use beatstream_stream_relay::protocol::ClientFrame;
use beatstream_testkit::{Anvil, TestDb};

use crate::harness::*;

/// Runtime code answering every call with `bytes4 ret` (ABI-encoded, left-aligned).
fn answers(ret: [u8; 4]) -> Bytes {
    // PUSH4 ret, PUSH1 0xe0, SHL, PUSH1 0, MSTORE, PUSH1 0x20, PUSH1 0, RETURN
    let mut code = vec![0x63];
    code.extend_from_slice(&ret);
    code.extend_from_slice(&[0x60, 0xe0, 0x1b, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3]);
    code.into()
}

#[tokio::test]
async fn contract_wallet_grants_are_checked_with_erc1271() -> eyre::Result<()> {
    let anvil = Anvil::spawn()?;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let accepting = Address::repeat_byte(0x12);
    let refusing = Address::repeat_byte(0x13);
    let reverting = Address::repeat_byte(0x14);
    provider
        .raw_request::<_, ()>(
            "anvil_setCode".into(),
            (accepting, answers([0x16, 0x26, 0xba, 0x7e])),
        )
        .await?;
    provider
        .raw_request::<_, ()>("anvil_setCode".into(), (refusing, answers([0xff, 0xff, 0xff, 0xff])))
        .await?;
    // PUSH1 0, DUP1, REVERT
    let revert: Bytes = vec![0x60, 0x00, 0x80, 0xfd].into();
    provider.raw_request::<_, ()>("anvil_setCode".into(), (reverting, revert)).await?;

    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    for wallet in [accepting, refusing, reverting] {
        seed_listener(db.pool(), wallet, 10_000, 0).await?;
    }
    let relay = Relay::start(config(&db, anvil.endpoint_url())).await?;
    let grant = |listener| {
        let mut p = Player::new(10_000);
        p.grant = SessionGrant { listener, ..p.grant.clone() };
        p
    };
    // A wallet-specific signature blob, not 65 bytes: only the contract can judge it.
    let blob = [0xab_u8; 97];

    for wallet in [refusing, reverting] {
        let mut c = Client::connect(&relay).await?;
        c.send(&ClientFrame::hello(&grant(wallet).grant, &blob)).await?;
        c.expect_error("bad_grant_signature").await?;
    }

    let p = grant(accepting);
    let mut c = Client::connect(&relay).await?;
    c.send(&ClientFrame::hello(&p.grant, &blob)).await?;
    match c.recv().await? {
        beatstream_stream_relay::protocol::ServerFrame::Ready { available, .. } => {
            assert_eq!(available, "10000")
        }
        other => eyre::bail!("expected ready, got {other:?}"),
    }
    // The session key (an EOA) signs vouchers as for any listener.
    c.play(1).await?;
    c.pay(&p, scene.alice.payee, 100).await?;
    let stored_sig: Vec<u8> =
        sqlx::query_scalar("SELECT signature FROM grants WHERE grant_id = $1")
            .bind(p.grant_id().as_slice())
            .fetch_one(db.pool())
            .await?;
    assert_eq!(stored_sig, blob.to_vec(), "the keeper gets the wallet's signature to settle with");
    assert_eq!(stored_total(db.pool(), accepting).await?, U256::from(100));
    relay.stop().await
}
