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

#[tokio::test]
async fn no_migrate_refuses_a_schema_behind_and_changes_nothing() -> eyre::Result<()> {
    let test_db = TestDb::empty().await?;
    let mut args = db::DatabaseArgs::new(test_db.url());
    args.no_migrate = true;
    let err = args.prepare_schema(test_db.pool()).await.unwrap_err();
    let needed = MIGRATOR.iter().map(|m| m.version).max().unwrap();
    assert!(
        matches!(err, beatstream_primitives::Error::SchemaBehind { found: 0, needed: n } if n == needed),
        "{err}"
    );
    assert!(err.to_string().contains("run `beatstream migrate`"), "{err}");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(test_db.pool())
        .await?;
    assert!(!exists, "--no-migrate created the migrations table");

    // Once migrated (by `beatstream migrate`), the same check passes; without --no-migrate nothing is applied.
    db::migrate(test_db.pool()).await?;
    args.prepare_schema(test_db.pool()).await?;
    args.no_migrate = false;
    args.prepare_schema(test_db.pool()).await?;
    Ok(())
}

#[tokio::test]
async fn a_read_only_database_is_checked_not_migrated() -> eyre::Result<()> {
    let test_db = TestDb::empty().await?;
    let name: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(test_db.pool()).await?;
    sqlx::query(&format!(r#"ALTER DATABASE "{name}" SET default_transaction_read_only = on"#))
        .execute(test_db.pool())
        .await?;
    let pool = db::connect(test_db.url()).await?;
    let err = db::DatabaseArgs::new(test_db.url()).prepare_schema(&pool).await.unwrap_err();
    assert!(matches!(err, beatstream_primitives::Error::SchemaBehind { .. }), "{err}");
    Ok(())
}

#[test]
fn transaction_pooling_needs_a_session_url_where_a_session_is_held() {
    let mut args = db::DatabaseArgs::new("postgres://pooler:6543/beatstream");
    args.db_pooler = db::Pooler::Transaction;
    args.validate(false).expect("the indexer and relay hold no session");
    let err = args.validate(true).unwrap_err().to_string();
    assert!(err.contains("--session-database-url"), "{err}");
    args.session_database_url = Some("postgres://primary:5432/beatstream".into());
    args.validate(true).expect("with a session URL");
    assert_eq!(args.session_url(), "postgres://primary:5432/beatstream");
    let err = db::DatabaseArgs::new("mysql://x").validate(false).unwrap_err().to_string();
    assert!(err.contains("invalid Postgres URL"), "{err}");
}

#[test]
fn urls_are_shown_without_passwords() {
    let args = db::DatabaseArgs::new(
        "postgres://app:s3cret@db.example.com:5432/beatstream?sslmode=require",
    );
    let shown = format!("{args:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(shown.contains("db.example.com:5432/beatstream"), "{shown}");
}

#[tokio::test]
async fn behind_a_pooler_no_setting_is_sent_at_connect() -> eyre::Result<()> {
    let test_db = TestDb::new().await?;
    let pool = db::PoolBuilder::new(test_db.url())
        .pooler(db::Pooler::Session)
        .statement_timeout(std::time::Duration::from_millis(1500))
        .connect()
        .await?;
    let (timeout, digits): (String, String) = sqlx::query_as(
        "SELECT current_setting('statement_timeout'), current_setting('extra_float_digits')",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(timeout, "0", "a startup setting a pooler would refuse was sent");
    assert_eq!(digits, "1", "sqlx's extra_float_digits was sent");
    Ok(())
}
