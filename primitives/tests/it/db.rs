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
