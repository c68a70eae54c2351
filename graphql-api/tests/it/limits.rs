//! Protection: depth, complexity, page size and body size limits; no mutations.

use serde_json::json;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Env, post};

async fn raw(addr: std::net::SocketAddr, request: &str) -> eyre::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut out = String::new();
    stream.read_to_string(&mut out).await?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abusive_queries_get_clear_errors() -> eyre::Result<()> {
    let env = Env::scene().await?;
    let message =
        |v: &serde_json::Value| v["errors"][0]["message"].as_str().unwrap_or_default().to_owned();

    // Too deep: artist -> tracks -> edges -> node -> artist -> tracks -> ...
    let deep = "{ artist(name: \"alice\") { tracks(first: 1) { edges { node { artist { tracks(first: 1) { edges { node { artist \
                { tracks(first: 1) { edges { node { title } } } } } } } } } } } } }";
    let r = env.query(deep, json!({})).await?;
    assert!(message(&r).contains("nested too deep"), "{r}");

    // Too complex: 1,000 settlements each with 1,000 tracks of their artist.
    let complex = "{ settlements(first: 1000) { edges { node { artist { tracks(first: 1000) { edges { node { \
                   title } } } } } } } }";
    let r = env.query(complex, json!({})).await?;
    assert!(message(&r).contains("too complex"), "{r}");

    // Pages are capped.
    let r = env.query("{ settlements(first: 1001) { edges { cursor } } }", json!({})).await?;
    assert!(message(&r).contains("between 0 and 1000"), "{r}");

    // Read-only.
    let r = env.query("mutation { anything }", json!({})).await?;
    assert!(r["errors"].is_array(), "{r}");

    // Bad arguments are errors that say what is wrong.
    let r = env.query("{ listener(address: \"0x12\") { address } }", json!({})).await?;
    assert!(message(&r).contains("not an address"), "{r}");
    let r = env.query("{ artist { name } }", json!({})).await?;
    assert!(message(&r).contains("exactly one of name and address"), "{r}");

    // Too large a request body.
    let padding = "x".repeat(40 * 1024);
    let body = json!({ "query": format!("{{ stats {{ artists }} }} # {padding}") }).to_string();
    let (status, _) = post(env.api, "/graphql", &body).await?;
    assert_eq!(status, 413);

    // CORS: a browser's preflight from any origin is allowed by default.
    let preflight = raw(
        env.api,
        "OPTIONS /graphql HTTP/1.1\r\nHost: api\r\nOrigin: https://dashboard.example\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\
         Connection: close\r\n\r\n",
    )
    .await?;
    assert!(
        preflight.to_ascii_lowercase().contains("access-control-allow-origin: *"),
        "{preflight}"
    );

    // And the API still answers.
    let stats = env
        .data("{ stats { artists tracks listeners settlements liveSessions } }", json!({}))
        .await?;
    assert_eq!(
        stats["stats"],
        json!({ "artists": 2, "tracks": 2, "listeners": 1, "settlements": 1, "liveSessions": 1 })
    );
    env.stop().await
}
