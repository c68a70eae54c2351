//! Split payees and tips (contracts v3): a batch of items to a five-recipient split settles whole, tips settle with
//! `settleBatchWithTips` exactly once across a crash mid-batch, and a tip the vault refuses for good is held.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use beatstream_keeper::{Error, FailPoint};
use beatstream_primitives::contracts::BeatStreamVault::{SettlementSkipped, TipSkipped, Tipped};
use beatstream_testkit::scene::Player;

use crate::harness::{Env, KEEPER, usdc, wait};

/// Signs a tip of `player` over `signed_message` with the vault's `tipDigest`, and stores it with `message` as the
/// relay stores an acked tip.
async fn store_tip(
    env: &Env,
    player: &Player,
    payee: Address,
    (tip_id, amount): (u64, u64),
    message: &str,
    signed_message: &str,
) -> eyre::Result<()> {
    let vault = env.chain.vault(&env.signer(0));
    let digest = vault
        .tipDigest(
            player.grant.id(),
            payee,
            U256::from(tip_id),
            U256::from(amount),
            keccak256(signed_message.as_bytes()),
        )
        .call()
        .await?;
    let signature = beatstream_primitives::eip712::sign(&player.key, digest)?;
    sqlx::query(
        "INSERT INTO tips (grant_id, tip_id, listener, payee, amount, message, signature, relay_id)
         VALUES ($1, $2::numeric, $3, $4, $5::numeric, $6, $7, 'test')",
    )
    .bind(player.grant.id().as_slice())
    .bind(tip_id.to_string())
    .bind(player.grant.listener.as_slice())
    .bind(payee.as_slice())
    .bind(amount.to_string())
    .bind(message.as_bytes())
    .bind(signature.as_slice())
    .execute(&env.pool)
    .await?;
    Ok(())
}

/// The vault's logs of event `E` for `grant` (its first indexed topic), over the whole chain.
async fn events<E: SolEvent>(env: &Env, grant: B256) -> eyre::Result<Vec<E>> {
    let filter = Filter::new()
        .address(env.chain.deployment.contracts.vault)
        .event_signature(E::SIGNATURE_HASH)
        .topic1(grant)
        .from_block(0);
    let logs = env.chain.provider.get_logs(&filter).await?;
    Ok(logs.iter().filter_map(|l| E::decode_log(&l.inner).ok().map(|e| e.data)).collect())
}

/// Registers an artist as anvil account 1 and sets a split of its tracks among `k` fresh recipients with equal
/// shares (the last takes the rest); returns the split payee and the recipients, once the indexer has mirrored it.
async fn split_of(env: &Env, k: usize) -> eyre::Result<(Address, Vec<Address>)> {
    let artist = env.signer(1);
    let node = env.chain.register(&artist, "duo", 100).await?;
    let recipients: Vec<Address> = (0..k).map(|i| Address::repeat_byte(0xc0 + i as u8)).collect();
    let mut shares = vec![(10_000 / k) as u16; k];
    shares[k - 1] += (10_000 - (10_000 / k) * k) as u16;
    let vault = env.chain.vault(&artist);
    let r = vault
        .setSplit(node, U256::ZERO, recipients.clone(), shares)
        .send()
        .await?
        .get_receipt()
        .await?;
    eyre::ensure!(r.status(), "setSplit reverted");
    let split = vault.splitPayee(node, U256::ZERO, 1).call().await?;
    env.indexed().await?;
    let size: i32 =
        sqlx::query_scalar("SELECT cardinality(recipients) FROM splits WHERE split = $1")
            .bind(split.as_slice())
            .fetch_one(&env.pool)
            .await?;
    assert_eq!(size as usize, k);
    Ok((split, recipients))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_batch_to_a_five_recipient_split_settles_every_item() -> eyre::Result<()> {
    let env = Env::new().await?;
    let (split, recipients) = split_of(&env, 5).await?;
    // Three listeners stream the split's track: a batch small enough that a margin of 25% over the simulation
    // leaves less than the 230,000 gas the vault wants before each item to a 5-recipient split.
    let players = [
        env.listener(3, usdc(50)).await?,
        env.listener(4, usdc(50)).await?,
        env.listener(5, usdc(50)).await?,
    ];
    for (i, p) in players.iter().enumerate() {
        env.voucher(p, split, usdc(i as u64 + 1)).await?;
    }
    env.indexed().await?;

    let keeper = env.start_keeper(env.keeper_options());
    for (i, p) in players.iter().enumerate() {
        env.wait_settled(p, split, usdc(i as u64 + 1), 30).await?;
    }
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    // One transaction, nothing skipped for gas (or anything else).
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 3, 1)]);
    for p in &players {
        assert!(events::<SettlementSkipped>(&env, p.grant.id()).await?.is_empty());
    }
    let guard_kept = || async {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT gas_limit, gas_used FROM keeper_batches ORDER BY id")
                .fetch_all(&env.pool)
                .await?;
        eyre::Ok(rows.into_iter().map(|(limit, used)| limit - used).collect::<Vec<_>>())
    };
    assert!(guard_kept().await?[0] >= 80_000 + 5 * 30_000);

    // A tip to the split, alone in its batch: 130,000 + 5 × 30,000 gas must be left before it.
    store_tip(&env, &players[0], split, (1, usdc(2)), "for the duo", "for the duo").await?;
    wait("the tip to settle", 30, || async {
        let vault = env.chain.vault(&env.signer(0));
        Ok(vault.isTipSettled(players[0].grant.id(), U256::from(1)).call().await?)
    })
    .await?;
    wait("the tip's batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().filter(|b| b.1 == "confirmed").count() == 2)
    })
    .await?;
    assert_eq!(env.batches().await?.len(), 2, "the tip took more than one transaction");
    assert_eq!(events::<Tipped>(&env, players[0].grant.id()).await?.len(), 1);
    assert!(events::<TipSkipped>(&env, players[0].grant.id()).await?.is_empty());
    assert!(guard_kept().await?[1] >= 130_000 + 5 * 30_000);

    // The recipients were paid everything after the 2.5% fee: 6 USDC of vouchers and the 2 USDC tip.
    let vault = env.chain.vault(&env.signer(0));
    let mut paid = U256::ZERO;
    for r in &recipients {
        let earned = vault.earningsOf(*r).call().await?;
        assert!(earned > U256::ZERO);
        paid += earned;
    }
    assert_eq!(paid, U256::from(usdc(8) * 975 / 1000));
    assert_eq!(keeper.metrics.tips_settled.get(), 1);
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tips_settle_once_across_a_crash_mid_batch() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    env.voucher(&listener, artist, usdc(1)).await?;
    store_tip(
        &env,
        &listener,
        artist,
        (1, usdc(2)),
        "thanks for the bridge ♥",
        "thanks for the bridge ♥",
    )
    .await?;
    store_tip(&env, &listener, artist, (2, usdc(3)), "", "").await?;
    // A tip under a grant with no voucher: the tip registers the grant, with its signature.
    let other = env.listener(4, usdc(50)).await?;
    store_tip(&env, &other, artist, (7, usdc(1)), "first", "first").await?;
    env.indexed().await?;

    // The transaction goes out (and anvil mines it) but the keeper dies before the journal says so.
    let mut options = env.keeper_options();
    options.fail_point = Some(FailPoint::AfterBroadcast);
    let crashed = env.start_keeper(options).finished().await;
    assert!(matches!(crashed, Err(Error::FailPoint(FailPoint::AfterBroadcast))), "{crashed:?}");
    assert_eq!(env.batches().await?, vec![(0, "pending".to_owned(), 1, 1)]);
    let journaled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM keeper_batch_tips").fetch_one(&env.pool).await?;
    assert_eq!(journaled, 3, "the tips were not journaled with the batch before it was sent");

    // The restarted keeper finds the journaled transaction mined and sends nothing more, once the indexer has the
    // tips and after.
    let keeper = env.start_keeper(env.keeper_options());
    wait("the journal to catch up", 20, || async {
        Ok(env.batches().await? == vec![(0, "confirmed".to_owned(), 1, 1)])
    })
    .await?;
    env.indexed().await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(env.batches().await?.len(), 1);
    let sent = env.chain.provider.get_transaction_count(env.signer(KEEPER).address()).await?;
    assert_eq!(sent, 1, "the keeper account sent more than the one settlement");

    let vault = env.chain.vault(&env.signer(0));
    let tipped = events::<Tipped>(&env, listener.grant.id()).await?;
    let mut ids: Vec<u64> = tipped.iter().map(|t| t.tipId.to::<u64>()).collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2]);
    assert!(tipped.iter().any(|t| t.message == "thanks for the bridge ♥"));
    assert_eq!(events::<Tipped>(&env, other.grant.id()).await?.len(), 1);
    assert!(events::<TipSkipped>(&env, listener.grant.id()).await?.is_empty());
    for id in [1u64, 2] {
        assert!(vault.isTipSettled(listener.grant.id(), U256::from(id)).call().await?);
    }
    let outcomes: Vec<String> =
        sqlx::query_scalar("SELECT outcome FROM keeper_batch_tips ORDER BY tip_id")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(outcomes, ["settled", "settled", "settled"]);
    // The artist earned the voucher and the three tips, less the fee.
    assert_eq!(vault.earningsOf(artist).call().await?, U256::from(usdc(7) * 975 / 1000));
    // The indexer mirrors them; the keeper's book has no tip left.
    let mirrored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM vault_tips").fetch_one(&env.pool).await?;
    assert_eq!(mirrored, 3);
    keeper.stop().await?;
    env.stop().await
}

/// Tips alone (no voucher in the batch) get the gas the vault wants left before each tip (130,000 + 30,000 × k): two
/// tips, one to a five-recipient split, settle in one transaction, not cut short and sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tips_alone_settle_in_one_transaction() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let (split, _) = split_of(&env, 5).await?;
    let listener = env.listener(3, usdc(50)).await?;
    store_tip(&env, &listener, artist, (1, usdc(1)), "one", "one").await?;
    store_tip(&env, &listener, split, (2, usdc(2)), "two", "two").await?;
    env.indexed().await?;
    let keeper = env.start_keeper(env.keeper_options());
    let vault = env.chain.vault(&env.signer(0));
    wait("both tips to settle", 30, || async {
        Ok(vault.isTipSettled(listener.grant.id(), U256::from(1)).call().await?
            && vault.isTipSettled(listener.grant.id(), U256::from(2)).call().await?)
    })
    .await?;
    let sent = env.chain.provider.get_transaction_count(env.signer(KEEPER).address()).await?;
    assert_eq!(sent, 1, "the tips took more than one transaction");
    assert!(events::<TipSkipped>(&env, listener.grant.id()).await?.is_empty());
    keeper.stop().await?;
    env.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_the_vault_refuses_for_good_is_held_and_never_sent() -> eyre::Result<()> {
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(50)).await?;
    // Signed over another message than the one stored: the vault would skip it InvalidVoucherSignature, whenever.
    store_tip(&env, &listener, artist, (1, usdc(1)), "hello", "hallo").await?;
    store_tip(&env, &listener, artist, (2, usdc(2)), "fine", "fine").await?;
    env.indexed().await?;

    let keeper = env.start_keeper(env.keeper_options());
    wait("the good tip to settle", 30, || async {
        let vault = env.chain.vault(&env.signer(0));
        Ok(vault.isTipSettled(listener.grant.id(), U256::from(2)).call().await?)
    })
    .await?;
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    let held: Vec<(String, String)> =
        sqlx::query_as("SELECT tip_id::text, reason FROM keeper_tip_holds")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(held, vec![("1".to_owned(), "invalid_voucher_signature".to_owned())]);
    // Steps go on (a voucher settles meanwhile); the held tip is neither simulated again nor sent.
    env.voucher(&listener, artist, usdc(1)).await?;
    env.wait_settled(&listener, artist, usdc(1), 30).await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let batched: Vec<String> = sqlx::query_scalar("SELECT tip_id::text FROM keeper_batch_tips")
        .fetch_all(&env.pool)
        .await?;
    assert_eq!(batched, ["2"]);
    assert_eq!(keeper.metrics.tips_held.get(), 1, "the held tip was simulated again");
    assert!(events::<TipSkipped>(&env, listener.grant.id()).await?.is_empty());
    assert!(
        !env.chain
            .vault(&env.signer(0))
            .isTipSettled(listener.grant.id(), U256::from(1))
            .call()
            .await?
    );
    keeper.stop().await?;
    env.stop().await
}

/// Tips on a node that does not serve `eth_simulateV1`: the `eth_call` bisection over the items followed by the tips
/// keeps the tip that settles, and holds the others with the reasons the vault's views give, counting what the
/// batch's voucher and earlier tip spent of the listener's funds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_eth_simulate_v1_tips_are_held_with_the_vaults_reasons() -> eyre::Result<()> {
    use beatstream_testkit::rpc_proxy::FaultProxy;
    let env = Env::new().await?;
    let artist = env.signer(1).address();
    let listener = env.listener(3, usdc(10)).await?;
    env.voucher(&listener, artist, usdc(3)).await?;
    store_tip(&env, &listener, artist, (1, usdc(2)), "fine", "fine").await?;
    store_tip(&env, &listener, artist, (2, usdc(1)), "hello", "hallo").await?;
    // 10 USDC deposited, 3 + 2 spent before it in the batch: 6 is more than is left.
    store_tip(&env, &listener, artist, (3, usdc(6)), "too much", "too much").await?;
    env.indexed().await?;

    let proxy = FaultProxy::start(env.chain.anvil.endpoint_url()).await?;
    proxy.without_method("eth_simulateV1");
    let keeper = env.start_keeper_on(proxy.url().into(), env.keeper_options());
    env.wait_settled(&listener, artist, usdc(3), 30).await?;
    wait("the batch to be confirmed", 10, || async {
        Ok(env.batches().await?.iter().any(|b| b.1 == "confirmed"))
    })
    .await?;
    assert_eq!(env.batches().await?, vec![(0, "confirmed".to_owned(), 1, 1)]);
    let vault = env.chain.vault(&env.signer(0));
    assert!(vault.isTipSettled(listener.grant.id(), U256::from(1)).call().await?);
    let held: Vec<(String, String)> =
        sqlx::query_as("SELECT tip_id::text, reason FROM keeper_tip_holds ORDER BY tip_id")
            .fetch_all(&env.pool)
            .await?;
    assert_eq!(
        held,
        vec![
            ("2".to_owned(), "invalid_voucher_signature".to_owned()),
            ("3".to_owned(), "insufficient_funds".to_owned())
        ]
    );
    let batched: Vec<String> = sqlx::query_scalar("SELECT tip_id::text FROM keeper_batch_tips")
        .fetch_all(&env.pool)
        .await?;
    assert_eq!(batched, ["1"]);
    let seen = proxy.seen();
    assert_eq!(seen.iter().filter(|s| s.method == "eth_simulateV1").count(), 1);
    keeper.stop().await?;
    env.stop().await
}
