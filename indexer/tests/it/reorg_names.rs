//! Reorgs of the registry's own history: artist registrations, text records, track publications and updates, rate
//! changes and name-token transfers inside the reorged blocks. The `artists`, `artist_texts` and `tracks` rows the
//! old branch created are deleted, those it changed are restored, the new branch's are folded from the restored
//! rows (not from rows the indexer still remembers of the old branch), and the mirror ends equal to the registry's
//! own views and to a fresh index of the canonical chain.

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::contracts::BeatStreamRegistry;
use beatstream_testkit::TestDb;

use crate::{
    harness::{Chain, Running, assert_same, config, dump, fresh_index},
    names::artist_owner,
};

/// What the new branch does in place of the old one.
#[derive(Clone, Copy)]
enum NewBranch {
    /// Empty blocks: everything the old branch did to the registry is undone.
    Removes,
    /// Other registry history: the orphaned label registered by someone else, other records, tracks, rate, owner.
    Changes,
}

/// The text keys the scenes use.
const KEYS: [&str; 3] = ["genre", "avatar", "mood"];

/// An artist as the mirror has it: (owner, addr, rate, label).
type ArtistView = (Address, Option<Address>, U256, String);

/// A track as the mirror has it: (artist node, title, rate, published).
type TrackView = (B256, String, U256, bool);

fn track(title: &str, rate: u128) -> BeatStreamRegistry::TrackInput {
    BeatStreamRegistry::TrackInput {
        title: title.into(),
        duration: 180,
        ratePerSecond: rate,
        contentHash: keccak256(title),
        metadataURI: format!("ipfs://{title}"),
    }
}

/// Sends a registry transaction and requires it to succeed.
macro_rules! send {
    ($call:expr, $what:literal) => {{
        let r = $call.send().await?.get_receipt().await?;
        eyre::ensure!(r.status(), concat!($what, " reverted"));
    }};
}

/// `node`'s `artists` row.
async fn artist_row(db: &TestDb, node: B256) -> eyre::Result<Option<ArtistView>> {
    type Row = (Vec<u8>, Option<Vec<u8>>, String, String);
    let row: Option<Row> = sqlx::query_as(
        "SELECT owner, addr, rate_per_second::text, label FROM artists WHERE node = $1",
    )
    .bind(node.as_slice())
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some((owner, addr, rate, label)) => Some((
            Address::from_slice(&owner),
            addr.map(|a| Address::from_slice(&a)),
            rate.parse()?,
            label,
        )),
        None => None,
    })
}

/// The registry's view of `node`, as an `artists` row would have it (`None`: not registered).
async fn artist_on_chain(
    chain: &Chain,
    node: B256,
    label: &str,
) -> eyre::Result<Option<ArtistView>> {
    let registry = chain.registry(&chain.anvil.signer(0));
    let artist = registry.artist(node).call().await?;
    if !artist.registered {
        return Ok(None);
    }
    let owner = registry.ownerOf(U256::from_be_bytes(node.0)).call().await?;
    let addr = registry.addr(node).call().await?;
    Ok(Some((owner, Some(addr), artist.ratePerSecond, label.to_owned())))
}

/// `node`'s text record `key` in `artist_texts`.
async fn text_row(db: &TestDb, node: B256, key: &str) -> eyre::Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT value FROM artist_texts WHERE node = $1 AND key = $2")
        .bind(node.as_slice())
        .bind(key)
        .fetch_optional(db.pool())
        .await?)
}

/// The registry's text record (`None`: never set; the scenes never set an empty value).
async fn text_on_chain(chain: &Chain, node: B256, key: &str) -> eyre::Result<Option<String>> {
    let value = chain.registry(&chain.anvil.signer(0)).text(node, key.into()).call().await?;
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// Track `id`'s `tracks` row.
async fn track_row(db: &TestDb, id: u64) -> eyre::Result<Option<TrackView>> {
    let row: Option<(Vec<u8>, String, String, bool)> = sqlx::query_as(
        "SELECT artist_node, title, rate_per_second::text, published FROM tracks \
         WHERE track_id = $1::numeric",
    )
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some((node, title, rate, published)) => {
            Some((B256::from_slice(&node), title, rate.parse()?, published))
        }
        None => None,
    })
}

/// The registry's track `id` (`None`: no such track).
async fn track_on_chain(chain: &Chain, id: u64) -> eyre::Result<Option<TrackView>> {
    let registry = chain.registry(&chain.anvil.signer(0));
    if U256::from(id) > registry.trackCount().call().await? {
        return Ok(None);
    }
    let t = registry.track(U256::from(id)).call().await?;
    Ok(Some((t.artistNode, t.title, U256::from(t.ratePerSecond), t.published)))
}

/// Every artist, text record and track the scene touched is mirrored as the registry has it.
async fn assert_mirror_matches_registry(
    chain: &Chain,
    db: &TestDb,
    artists: &[(B256, &str)],
    tracks: u64,
) -> eyre::Result<()> {
    for &(node, label) in artists {
        assert_eq!(
            artist_row(db, node).await?,
            artist_on_chain(chain, node, label).await?,
            "artist {label}"
        );
        for key in KEYS {
            assert_eq!(
                text_row(db, node, key).await?,
                text_on_chain(chain, node, key).await?,
                "text {key} of {label}"
            );
        }
    }
    for id in 1..=tracks {
        assert_eq!(track_row(db, id).await?, track_on_chain(chain, id).await?, "track {id}");
    }
    Ok(())
}

async fn transfer(
    chain: &Chain,
    from: &PrivateKeySigner,
    to: Address,
    node: B256,
) -> eyre::Result<()> {
    send!(
        chain.registry(from).transferFrom(from.address(), to, U256::from_be_bytes(node.0)),
        "transferFrom"
    );
    Ok(())
}

/// Before the fork: `kept` registered (rate 10, genre ambient) with track 1. The old branch registers `orphan` with
/// a text record and track 2, and changes `kept`'s rate, records, owner, addr and track 1. The new branch replaces
/// it (see [`NewBranch`]).
async fn reorg_of_registry_history(branch: NewBranch) -> eyre::Result<()> {
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let [artist, orphan_artist, bob, carol, dave]: [_; 5] =
        std::array::from_fn(|i| chain.anvil.signer(i + 1));
    let kept = chain.register(&artist, "kept", 10).await?;
    send!(chain.registry(&artist).publishTrack(kept, track("first", 5)), "publishTrack");
    indexer.catch_up(&chain).await?;
    let kept_before = artist_row(&db, kept).await?;
    assert_eq!(
        kept_before,
        Some((artist.address(), Some(artist.address()), U256::from(10), "kept".to_owned()))
    );
    let track_before = track_row(&db, 1).await?;
    assert_eq!(track_before, Some((kept, "first".to_owned(), U256::from(5), true)));

    // The old branch.
    let snapshot = chain.snapshot().await?;
    let orphan = chain.register(&orphan_artist, "orphan", 20).await?;
    let registry = chain.registry(&orphan_artist);
    send!(registry.setText(orphan, "avatar".into(), "ipfs://old".into()), "setText");
    send!(registry.publishTrack(orphan, track("orphaned", 7)), "publishTrack");
    send!(registry.setRate(orphan, U256::from(30)), "setRate");
    transfer(&chain, &orphan_artist, carol.address(), orphan).await?;
    let registry = chain.registry(&artist);
    send!(registry.setText(kept, "genre".into(), "drone".into()), "setText");
    send!(registry.setText(kept, "mood".into(), "calm".into()), "setText");
    send!(registry.updateTrack(U256::from(1), track("first (edit)", 6)), "updateTrack");
    send!(registry.setRate(kept, U256::from(99)), "setRate");
    send!(registry.setAddr(kept, dave.address()), "setAddr");
    transfer(&chain, &artist, bob.address(), kept).await?;
    chain.mine(2).await?;
    let old_head = chain.head().await?;
    indexer.catch_up(&chain).await?;
    assert_eq!(
        artist_row(&db, orphan).await?,
        Some((carol.address(), Some(orphan_artist.address()), U256::from(30), "orphan".to_owned())),
        "the old branch's registration, rate change and transfer were indexed"
    );
    assert_eq!(text_row(&db, orphan, "avatar").await?.as_deref(), Some("ipfs://old"));
    assert_eq!(
        track_row(&db, 2).await?,
        Some((orphan, "orphaned".to_owned(), U256::from(7), true))
    );
    assert_eq!(
        artist_row(&db, kept).await?,
        Some((bob.address(), Some(dave.address()), U256::from(99), "kept".to_owned()))
    );
    assert_eq!(text_row(&db, kept, "genre").await?.as_deref(), Some("drone"));
    assert_eq!(text_row(&db, kept, "mood").await?.as_deref(), Some("calm"));
    assert_eq!(track_row(&db, 1).await?.map(|t| t.1), Some("first (edit)".to_owned()));
    let ens_orphan: i64 = sqlx::query_scalar("SELECT count(*) FROM ens_events WHERE node = $1")
        .bind(orphan.as_slice())
        .fetch_one(db.pool())
        .await?;
    assert!(ens_orphan > 0, "the orphan's ENS subname events were mirrored");

    // The new branch replaces it and grows past the old head.
    chain.revert(snapshot).await?;
    let mut tracks = 2;
    match branch {
        NewBranch::Removes => chain.mine(old_head + 3 - chain.head().await?).await?,
        NewBranch::Changes => {
            let registry = chain.registry(&artist);
            // Touches only `kept`'s addr and track 1's publication: the rate, owner and title must be the restored
            // ones, not what the indexer saw of them on the old branch.
            send!(registry.setAddr(kept, carol.address()), "setAddr");
            send!(registry.unpublishTrack(U256::from(1)), "unpublishTrack");
            send!(registry.setText(kept, "avatar".into(), "ipfs://kept".into()), "setText");
            // The orphaned label goes to someone else, with other records, tracks and rate.
            let again = chain.register(&dave, "orphan", 40).await?;
            assert_eq!(again, orphan);
            let registry = chain.registry(&dave);
            send!(registry.setText(orphan, "mood".into(), "loud".into()), "setText");
            send!(registry.publishTrack(orphan, track("reissued", 8)), "publishTrack");
            send!(registry.publishTrack(orphan, track("b-side", 9)), "publishTrack");
            send!(registry.setRate(orphan, U256::from(41)), "setRate");
            transfer(&chain, &dave, bob.address(), orphan).await?;
            tracks = 3;
            let head = chain.head().await?;
            chain.mine((old_head + 3).saturating_sub(head).max(1)).await?;
        }
    }
    assert!(chain.head().await? > old_head);
    indexer.catch_up(&chain).await?;
    assert!(indexer.metrics.reorgs.get() >= 1, "the reorg was detected");

    assert_mirror_matches_registry(&chain, &db, &[(kept, "kept"), (orphan, "orphan")], tracks)
        .await?;
    match branch {
        NewBranch::Removes => {
            assert_eq!(artist_row(&db, orphan).await?, None, "the orphaned registration is gone");
            for key in KEYS {
                assert_eq!(text_row(&db, orphan, key).await?, None, "the orphan's {key} is gone");
            }
            assert_eq!(track_row(&db, 2).await?, None, "the orphaned track is gone");
            assert_eq!(
                artist_row(&db, kept).await?,
                kept_before,
                "rate, owner and addr restored, not deleted"
            );
            assert_eq!(artist_owner(&db, kept).await?, Some(artist.address()));
            assert_eq!(text_row(&db, kept, "genre").await?.as_deref(), Some("ambient"));
            assert_eq!(text_row(&db, kept, "mood").await?, None);
            assert_eq!(track_row(&db, 1).await?, track_before, "track 1 restored");
        }
        NewBranch::Changes => {
            assert_eq!(
                artist_row(&db, orphan).await?,
                Some((bob.address(), Some(dave.address()), U256::from(41), "orphan".to_owned()))
            );
            assert_eq!(text_row(&db, orphan, "avatar").await?, None, "the old branch's record");
            assert_eq!(text_row(&db, orphan, "genre").await?.as_deref(), Some("ambient"));
            assert_eq!(
                artist_row(&db, kept).await?,
                Some((artist.address(), Some(carol.address()), U256::from(10), "kept".to_owned()))
            );
            assert_eq!(text_row(&db, kept, "genre").await?.as_deref(), Some("ambient"));
            assert_eq!(text_row(&db, kept, "mood").await?, None);
            assert_eq!(
                track_row(&db, 1).await?,
                Some((kept, "first".to_owned(), U256::from(5), false)),
                "track 1 unpublished, as it was before the old branch edited it"
            );
            assert_eq!(
                track_row(&db, 2).await?,
                Some((orphan, "reissued".to_owned(), U256::from(8), true))
            );
        }
    }
    indexer.stop().await?;

    let fresh = fresh_index(&chain).await?;
    assert_same(&dump(&db).await?, &dump(&fresh).await?);
    Ok(())
}

#[tokio::test]
async fn reorg_removing_registration_records_tracks_rates_and_transfers() -> eyre::Result<()> {
    reorg_of_registry_history(NewBranch::Removes).await
}

#[tokio::test]
async fn reorg_replacing_registration_records_tracks_rates_and_transfers() -> eyre::Result<()> {
    reorg_of_registry_history(NewBranch::Changes).await
}
