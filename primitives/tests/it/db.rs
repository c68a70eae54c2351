use beatstream_primitives::db::{self, MIGRATOR};
use beatstream_testkit::TestDb;

#[tokio::test]
async fn fresh_database_is_migrated() -> eyre::Result<()> {
    let test_db = TestDb::new().await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(test_db.pool())
        .await?;
    assert!(rows > 0, "no migration recorded");
    assert_eq!(rows as usize, MIGRATOR.iter().count());

    // Running again applies nothing: the node runs `migrate` on every start.
    assert!(db::migrate(test_db.pool()).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn connect_reaches_the_test_database() -> eyre::Result<()> {
    let test_db = TestDb::new().await?;
    let pool = db::connect(test_db.url()).await?;
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&pool).await?;
    assert!(test_db.url().ends_with(&name), "{} vs {name}", test_db.url());
    Ok(())
}

#[tokio::test]
async fn pool_builder_sets_name_and_statement_timeout() -> eyre::Result<()> {
    let test_db = TestDb::new().await?;
    let pool = db::PoolBuilder::new(test_db.url())
        .max_connections(2)
        .application_name("beatstream-test")
        .statement_timeout(std::time::Duration::from_millis(1500))
        .connect()
        .await?;
    let (name, timeout): (String, String) = sqlx::query_as(
        "SELECT current_setting('application_name'), current_setting('statement_timeout')",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(name, "beatstream-test");
    assert_eq!(timeout, "1500ms");
    // The timeout is enforced: a longer statement is cancelled.
    let slow = sqlx::query("SELECT pg_sleep(3)").execute(&pool).await;
    assert!(slow.is_err(), "a 3 s statement outlived a 1.5 s timeout");
    Ok(())
}

#[tokio::test]
async fn pool_builder_rejects_a_bad_url() {
    let err = db::PoolBuilder::new("not a url").connect().await.unwrap_err();
    assert!(matches!(err, beatstream_primitives::Error::Database(_)), "{err}");
}
