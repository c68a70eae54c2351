//! `client::Client` and `client::stream` against a relay in this process.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use beatstream_primitives::VoucherDomain;
use beatstream_sim::{
    Error,
    client::{self, Client},
    fixture,
    keys::Identity,
};
use beatstream_stream_relay::{Config, Server};
use beatstream_testkit::TestDb;
use secp256k1::Secp256k1;
use tokio_util::sync::CancellationToken;
use url::Url;

const CHAIN_ID: u64 = 31337;
const SEED: &str = "sim-client-test";
const TRACK: u64 = 1;
const VAULT: Address = Address::new([0xbe; 20]);

/// A relay (100 ms beats) over `db`, seeded with `listeners` funded wallets under [`SEED`] and [`TRACK`].
async fn relay(db: &TestDb, listeners: usize, stop: &CancellationToken) -> eyre::Result<Url> {
    fixture::seed(db.pool(), CHAIN_ID, SEED, listeners, TRACK, 1_000_000).await?;
    let mut config = Config::new(db.url().to_owned(), "http://127.0.0.1:1".parse::<url::Url>()?);
    config.options.listen = "127.0.0.1:0".parse()?;
    config.chain_id = Some(CHAIN_ID);
    config.vault = Some(VAULT);
    config.options.beat_ms = 100;
    config.options.shutdown_secs = 2;
    let server = Server::bind(config, stop.clone()).await?;
    let url = format!("ws://{}/ws/stream", server.local_addr()?).parse()?;
    tokio::spawn(server.serve());
    Ok(url)
}

fn identity(domain: &VoucherDomain, index: usize) -> Identity {
    let secp = Secp256k1::signing_only();
    Identity::new(&secp, domain, SEED, 7, index, U256::from(1_000_000u64), u64::from(u32::MAX))
}

#[tokio::test]
async fn a_player_says_hello_plays_pays_and_stops() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let stop = CancellationToken::new();
    let url = relay(&db, 1, &stop).await?;
    let domain = VoucherDomain::new(CHAIN_ID, VAULT);
    let player = identity(&domain, 0);

    let mut client = Client::connect(&url).await?;
    assert_eq!(client.hello(&player).await?, U256::from(1_000_000u64));
    let playing = client.play(TRACK).await?;
    assert_eq!((playing.payee, playing.rate), (fixture::ARTIST, U256::from(fixture::RATE)));
    let acked = client.pay(&player, &domain, &playing, 3).await?;
    assert_eq!(acked, U256::from(3 * fixture::RATE));
    let total = client.stop(&playing).await?;
    assert!(total >= acked, "closed with {total}, acked {acked}");
    client.close().await;

    // An error frame comes back as the relay's code.
    let mut again = Client::connect(&url).await?;
    let err = again.play(TRACK).await.unwrap_err();
    assert!(matches!(&err, Error::Relay { code, .. } if code == "hello_required"), "{err}");
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn a_play_longer_than_the_track_ends_with_it() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let stop = CancellationToken::new();
    let url = relay(&db, 1, &stop).await?;
    // A three-second track beside the fixture's day-long one, same artist.
    sqlx::query(
        "INSERT INTO tracks (chain_id, track_id, artist_node, title, duration, rate_per_second, content_hash,
                             metadata_uri, published, published_at, updated_block)
         SELECT chain_id, 2, artist_node, 'Short', 3, 0, content_hash, metadata_uri, true, now(), 0
         FROM tracks WHERE track_id = $1",
    )
    .bind(TRACK.to_string().parse::<i64>()?)
    .execute(db.pool())
    .await?;
    let domain = VoucherDomain::new(CHAIN_ID, VAULT);
    let player = identity(&domain, 0);

    let mut client = Client::connect(&url).await?;
    client.hello(&player).await?;
    let playing = client.play(2).await?;
    // Ten beats asked for; the track has three, each paid and acked, then the relay closes the session itself.
    let acked = client.pay(&player, &domain, &playing, 10).await?;
    assert_eq!(acked, U256::from(3 * fixture::RATE));
    assert!(client.ended(&playing));
    // `stop` after the end sends nothing and returns the session's total; the connection plays on.
    assert_eq!(client.stop(&playing).await?, acked);
    assert!(!client.ended(&playing));
    let again = client.play(2).await?;
    assert_ne!(again.session_id, playing.session_id);
    assert_eq!(client.pay(&player, &domain, &again, 1).await?, U256::from(4 * fixture::RATE));
    client.close().await;
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn stream_keeps_playing_until_stopped() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let stop = CancellationToken::new();
    let url = relay(&db, 1, &stop).await?;
    let domain = VoucherDomain::new(CHAIN_ID, VAULT);
    let player = identity(&domain, 0);
    let listener = player.grant.listener;

    let done = CancellationToken::new();
    let task = tokio::spawn(client::stream(url, domain, player, TRACK, 2, None, done.clone()));
    // Two plays of two paid beats each, at least: what the listener's vouchers hold grows past one play.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let paid: String = stored_total(&db, listener).await?;
        if paid.parse::<u64>()? >= 4 * fixture::RATE {
            break;
        }
        eyre::ensure!(tokio::time::Instant::now() < deadline, "only {paid} paid after 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await??;
    stop.cancel();
    Ok(())
}

/// What the listener's stored vouchers add up to.
async fn stored_total(db: &TestDb, listener: Address) -> eyre::Result<String> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(cumulative), 0)::text FROM vouchers WHERE listener = $1",
    )
    .bind(listener.as_slice())
    .fetch_one(db.pool())
    .await?)
}
