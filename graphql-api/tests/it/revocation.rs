//! Contracts v2 in the API: revoked grants and the nonce floor, checked against the vault, and an artist's owner
//! after its name token moved (and after an ENS takeover, which moves nothing).

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
};
use beatstream_primitives::{SessionGrant, contracts::ENSRegistry};
use beatstream_testkit::scene::{Player, store_grant};
use serde_json::{Value, json};

use crate::harness::{ALICE, Env, LISTENER};

const GRANTS: &str = r#"
query Grants($address: String!) {
  listener(address: $address) {
    grants { id nonce revoked revokedAt revocationEffectiveAt }
    nonceFloor { floor previous floorFrom }
  }
}"#;

/// The grant of `id` in a `GRANTS` answer.
fn grant(data: &Value, id: B256) -> &Value {
    data["listener"]["grants"]
        .as_array()
        .and_then(|grants| grants.iter().find(|g| g["id"] == id.to_string()))
        .unwrap_or_else(|| panic!("grant {id} missing from {data}"))
}

async fn send<P: Provider, C: alloy::sol_types::SolCall>(
    call: alloy::contract::SolCallBuilder<P, C>,
) -> eyre::Result<()> {
    let r = call.send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "transaction reverted");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_grants_and_the_nonce_floor_follow_the_vault() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let chain = &env.chain;
    let listener = chain.anvil.signer(LISTENER);
    let vault = chain.vault(&listener);
    let variables = json!({ "address": env.address(LISTENER).to_string() });
    // Two more devices, nonces 5 and 9, presented to a relay.
    let five = Player::new(chain, listener.clone(), 5).await?;
    let nine = Player::new(chain, listener.clone(), 9).await?;
    for player in [&five, &nine] {
        store_grant(&env.pool, chain, player).await?;
    }
    let first = env.player.grant.clone();

    let data = env.data(GRANTS, variables.clone()).await?;
    for id in [first.id(), five.grant.id(), nine.grant.id()] {
        assert_eq!(grant(&data, id)["revoked"], false, "nothing revoked yet: {data}");
        assert_eq!(grant(&data, id)["revokedAt"], Value::Null);
    }
    assert_eq!(grant(&data, five.grant.id())["nonce"], "5");
    assert_eq!(data["listener"]["nonceFloor"], Value::Null);

    // The scene's grant is revoked by id.
    send(vault.revokeGrant(first.id())).await?;
    let revoked_at = chain.now().await?;
    // "Sign out everywhere" below 6, then, ten seconds later and before that took effect, below 10: the second raise
    // replaces the first, so the vault applies neither until the second's time.
    send(vault.revokeGrantsBelow(6)).await?;
    let first_raise = chain.now().await?;
    chain.warp(10).await?;
    send(vault.revokeGrantsBelow(10)).await?;
    let second_raise = chain.now().await?;
    env.indexed().await?;

    let data = env.data(GRANTS, variables.clone()).await?;
    let floor = vault.nonceFloorOf(listener.address()).call().await?;
    let delay = 3600;
    assert_eq!(
        data["listener"]["nonceFloor"],
        json!({ "floor": "10", "previous": "0", "floorFrom": second_raise + delay })
    );
    assert_eq!((floor.floor, floor.previous), (10, 0));
    assert_eq!(floor.floorFrom, U256::from(second_raise + delay));

    // Revoked by id and by the floor: the earlier revocation, and the vault's time for it.
    let by_id = vault.grantRevokedAt(listener.address(), first.id()).call().await?;
    assert_eq!(by_id, U256::from(revoked_at + delay));
    assert_eq!(
        grant(&data, first.id()),
        &json!({
            "id": first.id().to_string(), "nonce": "1", "revoked": true,
            "revokedAt": revoked_at, "revocationEffectiveAt": revoked_at + delay,
        })
    );
    // Nonce 5: revoked by the first raise, but on-chain only from the second's time.
    let g5 = grant(&data, five.grant.id());
    assert_eq!(
        (&g5["revoked"], &g5["revokedAt"], &g5["revocationEffectiveAt"]),
        (&json!(true), &json!(first_raise), &json!(second_raise + delay))
    );
    // Nonce 9: by the second raise only.
    let g9 = grant(&data, nine.grant.id());
    assert_eq!(
        (&g9["revoked"], &g9["revokedAt"], &g9["revocationEffectiveAt"]),
        (&json!(true), &json!(second_raise), &json!(second_raise + delay))
    );

    // The vault agrees: past the first raise's delay nonce 5 still settles, past the second's it does not.
    set_next_block_time(&env, first_raise + delay + 1).await?;
    assert!(!vault.isRevoked(five.grant.clone().into()).call().await?);
    set_next_block_time(&env, second_raise + delay).await?;
    assert!(vault.isRevoked(five.grant.clone().into()).call().await?);
    assert!(vault.isRevoked(nine.grant.clone().into()).call().await?);
    assert!(vault.isRevoked(first.clone().into()).call().await?);
    // A grant above the floor is not revoked.
    let other = SessionGrant { nonce: 10, ..five.grant.clone() };
    assert!(!vault.isRevoked(other.into()).call().await?);
    env.stop().await
}

/// Mines a block at unix time `at` (later than the latest block).
async fn set_next_block_time(env: &Env, at: u64) -> eyre::Result<()> {
    let provider = &env.chain.provider;
    let _: Value =
        provider.raw_request("evm_setNextBlockTimestamp".into(), (U256::from(at),)).await?;
    env.chain.mine(1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_artist_owner_is_the_holder_of_its_name_token() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let chain = &env.chain;
    let alice = chain.anvil.signer(ALICE);
    let holder = chain.anvil.signer(5).address();
    let root = chain.deployment.root_node;
    let node = keccak256([root.as_slice(), keccak256("alice").as_slice()].concat());
    const ARTIST: &str = r#"{ artist(name: "alice") { owner address } }"#;
    let data = env.data(ARTIST, json!({})).await?;
    assert_eq!(data["artist"]["owner"], alice.address().to_checksum(None));

    // alice hands her name to another account: it owns the artist, plays still pay her address record.
    let registry = chain.registry(&alice);
    send(registry.transferFrom(alice.address(), holder, U256::from_be_bytes(node.0))).await?;
    env.indexed().await?;
    let data = env.data(ARTIST, json!({})).await?;
    assert_eq!(
        data["artist"],
        json!({ "owner": holder.to_checksum(None), "address": alice.address().to_checksum(None) })
    );

    // Whoever controls `eth` takes the name in ENS: the API's owner stays the token's holder.
    let deployer = chain.anvil.signer(0);
    let ens = ENSRegistry::new(chain.deployment.contracts.ens_registry, chain.as_(&deployer));
    let eth = keccak256([B256::ZERO.as_slice(), keccak256("eth").as_slice()].concat());
    send(ens.setSubnodeOwner(eth, keccak256("beatstream"), deployer.address())).await?;
    send(ens.setSubnodeOwner(root, keccak256("alice"), deployer.address())).await?;
    send(ens.setOwner(node, Address::repeat_byte(0x66))).await?;
    env.indexed().await?;
    let ens_owner =
        ENSRegistry::new(chain.deployment.contracts.ens_registry, chain.provider.clone())
            .owner(node)
            .call()
            .await?;
    assert_eq!(ens_owner, Address::repeat_byte(0x66));
    let data = env.data(ARTIST, json!({})).await?;
    assert_eq!(data["artist"]["owner"], holder.to_checksum(None));
    assert_eq!(chain.registry(&alice).ownerOf(U256::from_be_bytes(node.0)).call().await?, holder);
    env.stop().await
}
