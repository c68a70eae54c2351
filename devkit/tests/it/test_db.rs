use beatstream_devkit::TestDb;

#[tokio::test]
async fn each_test_db_is_a_separate_database() -> eyre::Result<()> {
    let (a, b) = (TestDb::new().await?, TestDb::new().await?);
    assert_ne!(a.name(), b.name());
    sqlx::query("CREATE TABLE only_in_a (x int)").execute(a.pool()).await?;
    let in_b: bool = sqlx::query_scalar("SELECT to_regclass('only_in_a') IS NOT NULL")
        .fetch_one(b.pool())
        .await?;
    assert!(!in_b);
    Ok(())
}
