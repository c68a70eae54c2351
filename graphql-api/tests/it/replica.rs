//! The API on a read-only streaming replica, as on a hosted Postgres with read replicas: the indexer writes to the
//! primary, the API reads from a standby (`pg_basebackup`) as a role that may only `SELECT`, and `LISTEN`s on the
//! primary (`--session-database-url`), since a standby cannot. A notification can arrive before the standby has
//! replayed what it announces; the API waits for the standby before it reads.

use std::{sync::Arc, time::Duration};

use beatstream_primitives::db::DatabaseArgs;
use beatstream_testkit::postgres::PgServer;

use crate::{
    harness::{ALICE, Env},
    subscriptions::Sub,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reads_a_read_only_replica_and_waits_for_it_after_a_notification()
-> eyre::Result<()> {
    let primary = Arc::new(PgServer::builder().start()?);
    primary.psql("CREATE DATABASE beatstream")?;
    let writer = primary.url("127.0.0.1", "postgres", "beatstream", "");
    let pool = beatstream_primitives::db::connect(&writer).await?;
    beatstream_primitives::db::migrate(&pool).await?;
    pool.close().await;
    primary.psql("CREATE ROLE api_reader LOGIN")?;
    primary.psql_in("beatstream", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO api_reader")?;
    let replica = Arc::new(primary.replica()?);
    replica.wait_caught_up(&primary)?;
    assert_eq!(replica.psql("SELECT pg_is_in_recovery()")?, "t");

    // The API's pool on the standby, its LISTEN on the primary; both as the read-only role.
    let mut api_db = DatabaseArgs::new(replica.url("127.0.0.1", "api_reader", "beatstream", ""));
    api_db.session_database_url = Some(primary.url("127.0.0.1", "api_reader", "beatstream", ""));
    let keep = Box::new((primary.clone(), replica.clone()));
    // The API starts on the standby: it checks the schema there rather than trying (and failing) to migrate it.
    let env = Env::scene_on(keep, &writer, api_db).await?;
    replica.wait_caught_up(&primary)?;

    let data = env.data(r#"{ artist(name: "alice") { name } }"#, serde_json::json!({})).await?;
    assert_eq!(data["artist"]["name"], "alice.beatstream.eth");
    let listening = primary.psql_in(
        "beatstream",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'beatstream-api-listen'",
    )?;
    assert_eq!(listening, "1", "the API's LISTEN connection is not on the primary");
    let reading = replica.psql(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'beatstream-api' \
         AND usename = 'api_reader'",
    )?;
    assert_eq!(reading, "t", "the API does not read from the replica");

    // The standby stops replaying; a settlement is mirrored on the primary and notified. The API hears of it at
    // once, but the standby does not have it yet: the API must wait for it rather than read and miss it.
    let mut settlements =
        Sub::open(&env, "subscription { settlements(artist: \"alice\") { cumulative { raw } } }")
            .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    replica.psql("SELECT pg_wal_replay_pause()")?;
    env.settle(env.address(ALICE), 5_000).await?;
    env.indexed().await?;
    let early = tokio::time::timeout(Duration::from_secs(1), settlements.next()).await;
    assert!(early.is_err(), "a settlement arrived while the replica could not have it: {early:?}");
    replica.psql("SELECT pg_wal_replay_resume()")?;
    let got = settlements.next().await?;
    assert_eq!(got["settlements"]["cumulative"]["raw"], "5000");
    env.stop().await
}
