//! What the browser app (`web/`, served on the API's address) needs from `beatstream dev`: where everything is
//! (`GET /app/config.json`), and a faucet for the burner accounts it makes for the demo (`POST /dev/faucet`), which
//! only the dev node mounts.

use std::sync::Arc;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use beatstream_primitives::{Deployment, contracts::MockUSDC};
use serde_json::json;
use tokio::sync::Mutex;
use tracing::info;
use url::Url;

/// Anvil's ninth default account pays the faucet: no other part of the demo sends from it, so its nonces are the
/// faucet's alone.
const FAUCET_KEY: &str = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";
/// What one faucet call gives: gas money and USDC to deposit.
const FAUCET_ETH: u64 = 1_000_000_000_000_000_000;
const FAUCET_USDC: u64 = 100_000_000;

#[derive(Clone)]
struct Faucet {
    provider: DynProvider,
    usdc: Address,
    /// One call at a time: each sends two transactions from the one account.
    lock: Arc<Mutex<()>>,
}

/// `/app/config.json` for the app and `/dev/faucet` for its burner accounts.
pub(super) fn routes(
    deployment: &Deployment,
    rpc: &Url,
    relay: &Url,
    client: alloy::rpc::client::RpcClient,
) -> eyre::Result<Router> {
    // What `--api-app-relay-url` and `--api-app-rpc-url` make the API serve on a real node, and the faucet.
    let mut config = beatstream_graphql_api::app_config(deployment, rpc, relay);
    config["dev"] = json!({ "faucet": "/dev/faucet", "faucetUsdc": FAUCET_USDC.to_string() });
    let signer: PrivateKeySigner = FAUCET_KEY.parse()?;
    let provider =
        ProviderBuilder::new().wallet(EthereumWallet::from(signer)).connect_client(client).erased();
    let faucet =
        Faucet { provider, usdc: deployment.contracts.usdc, lock: Arc::new(Mutex::new(())) };
    Ok(Router::new()
        .route("/app/config.json", get(move || std::future::ready(Json(config.clone()))))
        .route("/dev/faucet", post(drip).with_state(faucet)))
}

/// `{"address": "0x…"}`: sends it 1 ETH and mints it 100 USDC; answers when both are mined.
async fn drip(State(faucet): State<Faucet>, Json(request): Json<serde_json::Value>) -> Response {
    let Some(address) = request["address"].as_str().and_then(|a| a.parse::<Address>().ok()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": { "code": "bad_address", "message": "expected {\"address\": \"0x…\"} with a 20-byte hex address" } })),
        )
            .into_response();
    };
    let _one_at_a_time = faucet.lock.lock().await;
    match send(&faucet, address).await {
        Ok(()) => {
            info!(target: "beatstream::dev", %address, "faucet");
            Json(json!({ "eth": FAUCET_ETH.to_string(), "usdc": FAUCET_USDC.to_string() }))
                .into_response()
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({ "error": { "code": "faucet_failed", "message": format!("{error:#}") } })),
        )
            .into_response(),
    }
}

async fn send(faucet: &Faucet, to: Address) -> eyre::Result<()> {
    let tx = alloy::rpc::types::TransactionRequest::default().to(to).value(U256::from(FAUCET_ETH));
    let eth = faucet.provider.send_transaction(tx).await?.get_receipt().await?;
    eyre::ensure!(eth.status(), "the ETH transfer {} reverted", eth.transaction_hash);
    let usdc = MockUSDC::new(faucet.usdc, &faucet.provider);
    let minted = usdc.mint(to, U256::from(FAUCET_USDC)).send().await?.get_receipt().await?;
    eyre::ensure!(minted.status(), "the USDC mint {} reverted", minted.transaction_hash);
    Ok(())
}
