//! Every event of the three contracts reaches its raw table, and the derived state equals the contracts' own views.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    providers::Provider,
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::contracts::{BeatStreamRegistry, ENSRegistry};
use beatstream_testkit::TestDb;

use crate::harness::{
    Chain, Player, Running, USDC, assert_same, config, dump, fresh_index, settle,
};

/// What whoever controls the parent name can do in ENS: the owner of `eth` (`deployer`, on a dev chain) takes
/// `beatstream.eth` back from the registry, gives `label`'s subname to itself and passes it on to `to`. Emits, in the
/// mirrored subtree, a `NewOwner` under the root and a `Transfer` of the artist's node.
pub(crate) async fn ens_takeover(
    chain: &Chain,
    deployer: &PrivateKeySigner,
    label: &str,
    to: Address,
) -> eyre::Result<()> {
    let ens = ENSRegistry::new(chain.deployment.contracts.ens_registry, chain.as_(deployer));
    let root = chain.deployment.root_node;
    let eth = keccak256([B256::ZERO.as_slice(), keccak256("eth").as_slice()].concat());
    for call in [
        ens.setSubnodeOwner(eth, keccak256("beatstream"), deployer.address()),
        ens.setSubnodeOwner(root, keccak256(label), deployer.address()),
    ] {
        eyre::ensure!(call.send().await?.get_receipt().await?.status(), "setSubnodeOwner reverted");
    }
    let node = keccak256([root.as_slice(), keccak256(label).as_slice()].concat());
    let r = ens.setOwner(node, to).send().await?.get_receipt().await?;
    eyre::ensure!(r.status(), "setOwner reverted");
    Ok(())
}

async fn count(db: &TestDb, sql: &str) -> eyre::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(db.pool()).await?)
}

async fn num(db: &TestDb, sql: &str, bind: &[u8]) -> eyre::Result<U256> {
    let s: String = sqlx::query_scalar(sql).bind(bind).fetch_one(db.pool()).await?;
    Ok(s.parse()?)
}

#[tokio::test]
async fn every_event_is_mirrored_and_derived_state_matches_the_chain() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let [owner, keeper, artist, artist2, alice, bob, treasury_to]: [_; 7] =
        std::array::from_fn(|i| chain.anvil.signer(i));

    // Registry and ENS: two artists, records, rate, tracks, a name transfer.
    let node = chain.register(&artist, "aurora", 10).await?;
    let node2 = chain.register(&artist2, "basso-continuo", 20).await?;
    let registry = chain.registry(&artist);
    registry.setRate(node, U256::from(12)).send().await?.get_receipt().await?;
    registry
        // COPY's special characters (tab, backslash, newline) and non-ASCII must come through unchanged.
        .setText(node, "avatar".into(), "ipfs://avatar\t\\ \n\r\"é\"".into())
        .send()
        .await?
        .get_receipt()
        .await?;
    registry.setText(node, "genre".into(), "drone".into()).send().await?.get_receipt().await?;
    let track = |title: &str, rate: u128| BeatStreamRegistry::TrackInput {
        title: title.into(),
        duration: 180,
        ratePerSecond: rate,
        contentHash: keccak256(title),
        metadataURI: format!("ipfs://{title}"),
    };
    registry.publishTrack(node, track("first light", 0)).send().await?.get_receipt().await?;
    registry.publishTrack(node, track("second", 15)).send().await?.get_receipt().await?;
    // Committed before the update below, so the update folds into a row an earlier transaction wrote.
    indexer.catch_up(&chain).await?;
    registry
        .updateTrack(U256::from(2), track("second (edit)", 16))
        .send()
        .await?
        .get_receipt()
        .await?;
    chain
        .registry(&artist2)
        .publishTrack(node2, track("low", 0))
        .send()
        .await?
        .get_receipt()
        .await?;
    registry.unpublishTrack(U256::from(1)).send().await?.get_receipt().await?;
    // artist2 moves their name to a new owner by its name token, then the new owner points addr elsewhere.
    chain
        .registry(&artist2)
        .transferFrom(artist2.address(), bob.address(), node2.into())
        .send()
        .await?
        .get_receipt()
        .await?;
    chain.registry(&bob).setAddr(node2, bob.address()).send().await?.get_receipt().await?;
    // The owner of `eth` (the deployer on a dev chain) takes `beatstream.eth` back in ENS and hands aurora's subname
    // to alice there: ENS events are still mirrored, but they move no artist.
    ens_takeover(&chain, &owner, "aurora", alice.address()).await?;

    // Vault: deposits, a withdrawal cycle, settlements (one skipped), fees, earnings, withdrawals.
    chain.fund(&alice, 50 * USDC).await?;
    chain.fund(&bob, 5 * USDC).await?;
    let usdc = chain.usdc(&owner);
    usdc.mint(owner.address(), U256::from(7 * USDC)).send().await?.get_receipt().await?;
    usdc.approve(chain.deployment.contracts.vault, U256::from(7 * USDC))
        .send()
        .await?
        .get_receipt()
        .await?;
    chain
        .vault(&owner)
        .depositFor(alice.address(), U256::from(7 * USDC))
        .send()
        .await?
        .get_receipt()
        .await?;
    chain
        .vault(&alice)
        .requestWithdrawal(U256::from(10 * USDC))
        .send()
        .await?
        .get_receipt()
        .await?;
    chain.vault(&alice).cancelWithdrawal().send().await?.get_receipt().await?;

    let alice_player = Player::new(&chain, alice.clone(), 1).await?;
    let bob_player = Player::new(&chain, bob.clone(), 1).await?;
    settle(
        &chain,
        &keeper,
        vec![
            alice_player.item(&chain, artist.address(), 3 * USDC)?,
            alice_player.item(&chain, bob.address(), USDC)?,
            bob_player.item(&chain, artist.address(), 2 * USDC)?,
            // Over bob's funds: skipped, not reverted.
            bob_player.item(&chain, Address::repeat_byte(7), 40 * USDC)?,
        ],
    )
    .await?;
    // Alice asks to withdraw all her available funds; a later settlement draws from the thawing funds.
    let (available, _, _) = {
        let a = chain.vault(&alice).accountOf(alice.address()).call().await?;
        (a.available, a.thawing, a.thawEnd)
    };
    chain.vault(&alice).requestWithdrawal(available).send().await?.get_receipt().await?;
    settle(&chain, &keeper, vec![alice_player.item(&chain, artist.address(), 5 * USDC)?]).await?;
    chain.warp(61).await?;
    chain.vault(&alice).withdraw(alice.address()).send().await?.get_receipt().await?;
    chain
        .vault(&artist)
        .withdrawEarnings(artist.address(), U256::from(USDC))
        .send()
        .await?
        .get_receipt()
        .await?;
    chain.vault(&owner).scheduleFee(100).send().await?.get_receipt().await?;
    chain.vault(&owner).setTreasury(treasury_to.address()).send().await?.get_receipt().await?;
    chain.vault(&keeper).collectFees().send().await?.get_receipt().await?;

    indexer.catch_up(&chain).await?;

    // Raw tables: one row per event.
    for (table, expected) in [
        ("vault_deposits", 3),
        ("vault_withdrawal_requests", 2),
        ("vault_withdrawal_cancellations", 1),
        ("vault_withdrawals", 1),
        ("vault_grant_registrations", 2),
        ("vault_settlements", 4),
        ("vault_settlement_skips", 1),
        ("vault_earnings_withdrawals", 1),
        ("registry_artist_registrations", 2),
        ("registry_rate_changes", 1),
        ("registry_track_events", 5),
    ] {
        assert_eq!(
            count(&db, &format!("SELECT count(*) FROM {table}")).await?,
            expected,
            "{table}"
        );
    }
    // Times as the chain has them.
    let times: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT block_number, extract(epoch FROM block_time)::int8 FROM vault_settlements",
    )
    .fetch_all(db.pool())
    .await?;
    for (n, t) in times {
        let block =
            chain.provider.get_block_by_number((n as u64).into()).await?.expect("mined block");
        assert_eq!(t as u64, block.header.timestamp, "block_time of block {n}");
    }
    // Vault admin: fee, treasury, fees collected, plus the owner, the fee and the ten dev settlers set at
    // construction.
    let admin: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM vault_admin_events WHERE kind <> 'ownership_transferred' GROUP BY kind \
         ORDER BY kind",
    )
    .fetch_all(db.pool())
    .await?;
    assert_eq!(
        admin,
        [
            ("fee_scheduled", 2),
            ("fees_collected", 1),
            ("settler_updated", 10),
            ("treasury_updated", 1)
        ]
        .map(|(k, n)| (k.to_owned(), n))
    );
    // Records: 2 addr at registration + 1 setAddr; 2 genre at registration + avatar + genre update.
    assert_eq!(
        count(&db, "SELECT count(*) FROM registry_record_changes WHERE kind = 'addr'").await?,
        3
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM registry_record_changes WHERE kind = 'text'").await?,
        4
    );
    // ENS subtree: NewOwner + NewResolver per artist, the takeover's NewOwner and Transfer; nothing of `eth` or the
    // root's creation or takeover.
    assert_eq!(count(&db, "SELECT count(*) FROM ens_events WHERE kind = 'new_owner'").await?, 3);
    assert_eq!(count(&db, "SELECT count(*) FROM ens_events WHERE kind = 'new_resolver'").await?, 2);
    assert_eq!(count(&db, "SELECT count(*) FROM ens_events WHERE kind = 'transfer'").await?, 1);

    // Derived state equals the contracts' views.
    let vault = chain.vault(&owner);
    for who in [alice.address(), bob.address()] {
        let a = vault.accountOf(who).call().await?;
        let q = "SELECT available::text FROM listener_accounts WHERE listener = $1";
        assert_eq!(num(&db, q, who.as_slice()).await?, a.available, "available of {who}");
        let q = "SELECT thawing::text FROM listener_accounts WHERE listener = $1";
        assert_eq!(num(&db, q, who.as_slice()).await?, a.thawing, "thawing of {who}");
    }
    // Raw amounts (written by COPY) add up to the derived totals (written by UPDATE/INSERT).
    for payee in [artist.address(), bob.address()] {
        let raw = "SELECT coalesce(sum(amount), 0)::text FROM vault_settlements WHERE payee = $1";
        let derived =
            "SELECT (earned_total + fees_total)::text FROM payee_earnings WHERE payee = $1";
        assert_eq!(
            num(&db, raw, payee.as_slice()).await?,
            num(&db, derived, payee.as_slice()).await?,
            "settled amounts of {payee}"
        );
    }
    for payee in [artist.address(), bob.address()] {
        let q = "SELECT withdrawable::text FROM payee_earnings WHERE payee = $1";
        assert_eq!(
            num(&db, q, payee.as_slice()).await?,
            vault.earningsOf(payee).call().await?,
            "earnings of {payee}"
        );
    }
    for (player, payee) in [
        (&alice_player, artist.address()),
        (&alice_player, bob.address()),
        (&bob_player, artist.address()),
    ] {
        let id = player.grant.id();
        let on_chain = vault.settled(id, payee).call().await?;
        let row: String = sqlx::query_scalar(
            "SELECT cumulative::text FROM settled_pairs WHERE grant_id = $1 AND payee = $2",
        )
        .bind(id.as_slice())
        .bind(payee.as_slice())
        .fetch_one(db.pool())
        .await?;
        assert_eq!(row.parse::<U256>()?, on_chain);
        let spent =
            num(&db, "SELECT spent::text FROM grant_spend WHERE grant_id = $1", id.as_slice())
                .await?;
        assert_eq!(spent, vault.grantSpent(id).call().await?);
    }
    let hourly =
        count(&db, "SELECT coalesce(sum(settlements), 0)::int8 FROM settlement_hourly").await?;
    assert_eq!(hourly, 4);

    // Name tokens: two mints and artist2's transfer.
    assert_eq!(count(&db, "SELECT count(*) FROM registry_name_transfers").await?, 3);

    let read = chain.registry(&owner);
    let ens = ENSRegistry::new(chain.deployment.contracts.ens_registry, chain.provider.clone());
    assert_eq!(ens.owner(node).call().await?, alice.address(), "the takeover moved the ENS name");
    for n in [node, node2] {
        let (owner_db, addr_db, rate_db, name): (Vec<u8>, Option<Vec<u8>>, String, String) =
            sqlx::query_as(
                "SELECT owner, addr, rate_per_second::text, name FROM artists WHERE node = $1",
            )
            .bind(n.as_slice())
            .fetch_one(db.pool())
            .await?;
        assert_eq!(Address::from_slice(&owner_db), read.ownerOf(n.into()).call().await?, "owner");
        assert_eq!(Address::from_slice(&owner_db), read.managerOf(n).call().await?, "manager");
        assert_eq!(
            addr_db.map(|a| Address::from_slice(&a)),
            Some(read.addr(n).call().await?),
            "addr"
        );
        assert_eq!(rate_db.parse::<U256>()?, read.artist(n).call().await?.ratePerSecond, "rate");
        assert!(name.ends_with(".beatstream.eth"));
    }
    let genre: String =
        sqlx::query_scalar("SELECT value FROM artist_texts WHERE node = $1 AND key = 'genre'")
            .bind(node.as_slice())
            .fetch_one(db.pool())
            .await?;
    assert_eq!(genre, read.text(node, "genre".into()).call().await?);
    let avatar: String =
        sqlx::query_scalar("SELECT value FROM artist_texts WHERE node = $1 AND key = 'avatar'")
            .bind(node.as_slice())
            .fetch_one(db.pool())
            .await?;
    assert_eq!(avatar, read.text(node, "avatar".into()).call().await?);
    let raw_avatar: String = sqlx::query_scalar(
        "SELECT value FROM registry_record_changes WHERE node = $1 AND key = 'avatar'",
    )
    .bind(node.as_slice())
    .fetch_one(db.pool())
    .await?;
    assert_eq!(raw_avatar, avatar);
    for id in 1u64..=3 {
        let t = read.track(U256::from(id)).call().await?;
        let (title, published, artist_node): (String, bool, Vec<u8>) = sqlx::query_as(
            "SELECT title, published, artist_node FROM tracks WHERE track_id = $1::numeric",
        )
        .bind(id.to_string())
        .fetch_one(db.pool())
        .await?;
        assert_eq!(
            (title, published, B256::from_slice(&artist_node)),
            (t.title, t.published, t.artistNode)
        );
    }

    // And the incremental mirror equals a fresh index of the same chain.
    indexer.stop().await?;
    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}

#[tokio::test]
async fn ready_and_metrics_are_served() -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    drop(listener);
    let mut cfg = config(&chain, &db);
    cfg.options.http = Some(addr);
    let indexer = Running::start(cfg);
    indexer.catch_up(&chain).await?;
    // Ready once caught up; give the loop one poll to flip the flag.
    let mut ready = 0;
    for _ in 0..100 {
        ready = http_status(addr, "/ready").await?;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 200);
    assert_eq!(http_status(addr, "/health").await?, 200);
    let metrics = http_body(addr, "/metrics").await?;
    for name in [
        "beatstream_indexer_head_block",
        "beatstream_indexer_indexed_block",
        "beatstream_indexer_events_total",
        "beatstream_indexer_reorgs_total",
        "beatstream_indexer_rpc_errors_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    indexer.stop().await
}

async fn http_body(addr: std::net::SocketAddr, path: &str) -> eyre::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

async fn http_status(addr: std::net::SocketAddr, path: &str) -> eyre::Result<u16> {
    let body = http_body(addr, path).await?;
    Ok(body.split_whitespace().nth(1).unwrap_or("0").parse()?)
}
