//! The app and GraphiQL from the node's own bundle: `web/` built by Vite into `web/dist`, committed, and embedded
//! in the binary here, so they load in a browser with no internet access and a clone's `cargo build` needs no npm
//! (`make web` rebuilds it; `make test` checks the committed build is current). `/` is the app, `/assets/...` its
//! hashed files, and a GET of `/graphql` is GraphiQL.

use axum::{
    Json, Router,
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use beatstream_primitives::Deployment;
use include_dir::{Dir, include_dir};
use url::Url;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../web/dist");

/// Hashed names change with their content, so a browser may keep them for good.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The pages name the current hashed files: a browser asks again each time.
const REVALIDATE: &str = "no-cache";

/// `/` (the app) and `/assets/{file}`.
pub(crate) fn router() -> Router {
    Router::new().route("/", get(app)).route("/assets/{*file}", get(asset))
}

/// The app's settings, `GET /app/config.json`: the chain, its contracts, and the relay and JSON-RPC URLs browsers use
/// (`beatstream dev` adds its faucet).
pub fn app_config(deployment: &Deployment, rpc: &Url, relay: &Url) -> serde_json::Value {
    serde_json::json!({
        "chainId": deployment.chain_id,
        "rpcUrl": rpc.as_str(),
        "relayUrl": relay.as_str(),
        "deployment": deployment,
    })
}

/// `GET /app/config.json` answering `config`.
pub(crate) fn config_route(config: serde_json::Value) -> Router {
    Router::new().route("/app/config.json", get(move || std::future::ready(Json(config.clone()))))
}

/// The app's page.
async fn app() -> Response {
    page("index.html")
}

/// GraphiQL's page (a GET of `/graphql`; a POST is a query).
pub(crate) async fn graphiql() -> Response {
    page("graphiql.html")
}

async fn asset(Path(file): Path<String>) -> Response {
    serve(&format!("assets/{file}"), IMMUTABLE)
}

fn page(name: &str) -> Response {
    serve(name, REVALIDATE)
}

fn serve(path: &str, cache: &'static str) -> Response {
    // include_dir looks names up literally: `..` or a leading `/` finds nothing rather than escaping.
    let Some(file) = DIST.get_file(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type(path))),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        file.contents(),
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use tower::ServiceExt;

    async fn get(app: Router, uri: &str) -> (StatusCode, String, String) {
        let response =
            app.oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    /// Every script and stylesheet the two pages name is in the bundle, and none comes from another host.
    #[tokio::test]
    async fn pages_load_only_their_own_assets() {
        let app = router().route("/graphql", axum::routing::get(graphiql));
        for page in ["/", "/graphql"] {
            let (status, kind, html) = get(app.clone(), page).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(kind.starts_with("text/html"), "{page}: {kind}");
            let refs: Vec<&str> = html
                .split(['"', '\''])
                .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
                .collect();
            assert!(!refs.is_empty(), "{page} names no script");
            for href in refs {
                assert!(href.starts_with("/assets/"), "{page} loads {href} from elsewhere");
                let (status, kind, _) = get(app.clone(), href).await;
                assert_eq!(status, StatusCode::OK, "{href}");
                assert!(kind.starts_with("text/"), "{href}: {kind}");
            }
        }
        assert_eq!(get(app.clone(), "/assets/missing.js").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(app, "/assets/../index.html").await.0, StatusCode::NOT_FOUND);
    }

    /// `/app/config.json` carries the chain, the contracts and the two public URLs, as web/src/config.ts reads them.
    #[tokio::test]
    async fn app_config_names_chain_contracts_relay_and_rpc() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "chainId": 8453, "deploymentBlock": 7, "rootNode": format!("0x{}", "11".repeat(32)),
            "withdrawalDelay": 86400, "settlementWindow": 604800,
            "contracts": {
                "ensRegistry": format!("0x{}", "01".repeat(20)), "registry": format!("0x{}", "02".repeat(20)),
                "usdc": format!("0x{}", "03".repeat(20)), "vault": format!("0x{}", "04".repeat(20)),
            },
        }))
        .unwrap();
        let rpc: Url = "https://rpc.example/".parse().unwrap();
        let relay: Url = "wss://relay.example/ws/stream".parse().unwrap();
        let (status, kind, body) =
            get(config_route(app_config(&deployment, &rpc, &relay)), "/app/config.json").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind, "application/json");
        let config: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(config["chainId"], 8453);
        assert_eq!(config["rpcUrl"], "https://rpc.example/");
        assert_eq!(config["relayUrl"], "wss://relay.example/ws/stream");
        assert_eq!(config["deployment"]["withdrawalDelay"], 86400);
        assert_eq!(
            config["deployment"]["contracts"]["vault"].as_str().unwrap().to_lowercase(),
            format!("0x{}", "04".repeat(20))
        );
    }

    #[test]
    fn no_asset_is_loaded_from_a_cdn() {
        fn walk(dir: &Dir<'static>, hits: &mut Vec<String>) {
            for file in dir.files() {
                let text = String::from_utf8_lossy(file.contents());
                for host in ["unpkg.com/", "cdn.jsdelivr.net/", "fonts.googleapis.com/"] {
                    // A URL that the code loads, not a sentence in an error message that names the host.
                    if text.contains(&format!("src=\"https://{host}"))
                        || text.contains(&format!("url(https://{host}"))
                        || text.contains(&format!("import(\"https://{host}"))
                    {
                        hits.push(format!("{}: {host}", file.path().display()));
                    }
                }
            }
            for sub in dir.dirs() {
                walk(sub, hits);
            }
        }
        let mut hits = Vec::new();
        walk(&DIST, &mut hits);
        assert!(hits.is_empty(), "{hits:?}");
    }
}
