use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use beatstream_primitives::db::MIGRATOR;
use beatstream_testkit::{Anvil, TestDb, deploy};

/// Runs the binary with no inherited BeatStream, sqlx or log settings.
fn beatstream(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beatstream"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEATSTREAM_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).envs(env.iter().copied()).output().expect("run beatstream")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn migrate_applies_once_then_reports_up_to_date() -> eyre::Result<()> {
    let db = TestDb::empty().await?;

    let first = beatstream(&["migrate", "--database-url", db.url()], &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let applied = stdout(&first).lines().filter(|l| l.starts_with("applied ")).count();
    assert_eq!(applied, MIGRATOR.iter().count(), "{}", stdout(&first));

    // DATABASE_URL is the fallback when no BeatStream setting is given.
    let again = beatstream(&["migrate"], &[("DATABASE_URL", db.url())]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));
    // Postgres' own notices ("relation \"_sqlx_migrations\" already exists, skipping") are not logged by default.
    assert!(!stderr(&again).contains("already exists"), "{}", stderr(&again));
    Ok(())
}

#[test]
fn migrate_without_database_says_what_to_set() {
    let out = beatstream(&["migrate"], &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--database-url"), "{}", stderr(&out));
}

#[test]
fn keeper_without_a_key_or_deployment_says_what_is_missing() {
    let env = [
        ("BEATSTREAM_DATABASE_URL", "postgres://127.0.0.1:1/none"),
        ("BEATSTREAM_RPC_URL", "http://127.0.0.1:1"),
    ];
    let out = beatstream(&["keeper"], &env);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "no keeper key: set one of --keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY), --keeper-keystore \
             (BEATSTREAM_KEEPER_KEYSTORE) or --keeper-aws-kms-key-id (BEATSTREAM_KEEPER_AWS_KMS_KEY_ID)"
        ),
        "{}",
        stderr(&out)
    );

    let secret = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let out = beatstream(
        &["keeper", "--deployment", "/nonexistent/deployment.json"],
        &[env[0], env[1], ("BEATSTREAM_KEEPER_PRIVATE_KEY", secret)],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/deployment.json"), "{}", stderr(&out));
    assert!(!stderr(&out).contains(&secret[2..]), "the key was printed");

    let out = beatstream(
        &["keeper", "--keeper-bump-percent", "5"],
        &[env[0], env[1], ("BEATSTREAM_KEEPER_PRIVATE_KEY", secret)],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--keeper-bump-percent must be between 12.5"),
        "{}",
        stderr(&out)
    );
}

/// `--keeper-aws-kms-key-id` with AWS settings from the standard AWS variables only. KMS is moto's server, with its
/// `MessageType=DIGEST` handling corrected in the test's launcher (`script/moto_kms.py`; moto hashes the digest
/// again, AWS does not).
#[tokio::test]
async fn keeper_finds_its_kms_key_through_the_aws_environment() -> eyre::Result<()> {
    let kms = beatstream_testkit::kms::MotoKms::start()?;
    let (key_id, _) = kms.create_ethereum_key().await?;
    let aws = kms.env();
    let mut env: Vec<(&str, &str)> = aws.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("BEATSTREAM_DATABASE_URL", "postgres://127.0.0.1:1/none"),
        ("BEATSTREAM_RPC_URL", "http://127.0.0.1:1"),
    ]);

    // A key the region does not hold: the keeper stops at start, naming it.
    let missing = "alias/no-such-keeper";
    let out = beatstream(&["keeper", "--keeper-aws-kms-key-id", missing], &env);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("AWS KMS key {missing} was not found in region us-east-1")),
        "{}",
        stderr(&out)
    );

    // The real key loads and checks (public key, a test signature) through the variables, so the start goes on to
    // the next thing it needs: the deployment file.
    let out = beatstream(
        &["keeper", "--deployment", "/nonexistent/deployment.json"],
        &[env.as_slice(), &[("BEATSTREAM_KEEPER_AWS_KMS_KEY_ID", &key_id)]].concat(),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/deployment.json"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("signer"), "{}", stderr(&out));
    Ok(())
}

#[test]
fn api_without_deployment_file_names_it() {
    let out = beatstream(
        &["api", "--deployment", "/nonexistent/deployment.json"],
        &[("BEATSTREAM_DATABASE_URL", "postgres://127.0.0.1:1/none")],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/deployment.json"), "{}", stderr(&out));
}

#[test]
fn indexer_without_deployment_file_names_it() {
    let out = beatstream(
        &["indexer", "--deployment", "/nonexistent/deployment.json"],
        &[
            ("BEATSTREAM_DATABASE_URL", "postgres://127.0.0.1:1/none"),
            ("BEATSTREAM_RPC_URL", "http://127.0.0.1:1"),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("/nonexistent/deployment.json"), "{}", stderr(&out));
}

#[tokio::test]
async fn node_stops_with_the_name_and_cause_of_the_service_that_failed() -> eyre::Result<()> {
    // The API starts and would serve for ever; the relay cannot bind its port. The node must stop the API too and
    // exit naming the relay and why, rather than run on without it.
    let anvil = Anvil::spawn()?;
    let deployment = deploy(&anvil, &[]).await?;
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_string(&deployment)?)?;
    let db = TestDb::new().await?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let api = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beatstream"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEATSTREAM_") || key == "DATABASE_URL" {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .args(["node", "--no-indexer", "--no-keeper", "--database-url", db.url()])
        .args(["--rpc-url", anvil.endpoint_url().as_str()])
        .arg("--deployment")
        .arg(file.path())
        .args(["--relay-listen", &taken.local_addr()?.to_string()])
        .args(["--api-listen", &api.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            panic!("the node kept running after the relay failed");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output()?;
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("relay stopped"), "{err}");
    assert!(err.contains(&taken.local_addr()?.to_string()), "the cause is missing: {err}");
    Ok(())
}
