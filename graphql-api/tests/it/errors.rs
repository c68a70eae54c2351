//! Error codes: every error has a stable `extensions.code`; a failed query is logged, and the client gets neither SQL
//! nor database text.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::harness::Env;

fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"].as_str().unwrap_or_default()
}

fn message(response: &Value) -> &str {
    response["errors"][0]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_internal_failures_get_their_codes() -> eyre::Result<()> {
    let env = Env::scene().await?;

    // A bad argument: BAD_USER_INPUT with a message that says what is wrong.
    let r = env.query("{ listener(address: \"0x12\") { address } }", json!({})).await?;
    assert_eq!((code(&r), message(&r)), ("BAD_USER_INPUT", "not an address: 0x12"), "{r}");
    let r = env.query("{ settlements(first: 1001) { edges { cursor } } }", json!({})).await?;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    // A cursor that decodes but whose keys are not the list's: refused before any SQL runs.
    let forged = URL_SAFE_NO_PAD.encode(br#"["abc","1"]"#);
    let r = env
        .query(
            "query ($c: String) { settlements(after: $c) { edges { cursor } } }",
            json!({ "c": forged }),
        )
        .await?;
    assert_eq!((code(&r), message(&r)), ("BAD_USER_INPUT", "invalid cursor"), "{r}");
    // Errors async-graphql raises itself (validators, limits, syntax) are the client's too.
    let r = env.query("{ topArtists(limit: 1000) { payee } }", json!({})).await?;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");
    let r = env.query("{ stats { nope } }", json!({})).await?;
    assert_eq!(code(&r), "BAD_USER_INPUT", "{r}");

    // An internal failure: the keeper's journal is gone. The client learns only that the server failed.
    sqlx::query("ALTER TABLE keeper_batches RENAME TO keeper_batches_moved")
        .execute(&env.pool)
        .await?;
    let r = env.query("{ keeperTransactions { edges { node { id } } } }", json!({})).await?;
    assert_eq!((code(&r), message(&r)), ("INTERNAL", "internal error"), "{r}");
    let text = r.to_string();
    for leak in ["keeper_batches", "relation", "SELECT", "database"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    // The rest of the API still answers.
    let stats = env.data("{ stats { artists } }", json!({})).await?;
    assert_eq!(stats["stats"]["artists"], 2);
    sqlx::query("ALTER TABLE keeper_batches_moved RENAME TO keeper_batches")
        .execute(&env.pool)
        .await?;
    env.stop().await
}
