//! The demo's audio: generated music for each demo track, uploaded to the studio as the demo artist would, signing
//! in with Ethereum over HTTP (docs/STUDIO.md).

use std::net::SocketAddr;

use alloy::{
    primitives::{Address, B256},
    signers::{SignerSync, local::PrivateKeySigner},
};
use beatstream_studio::siwe::{DateTime, Message};
use serde_json::Value;

/// A demo track's uploaded audio: what to publish on-chain.
pub(super) struct Uploaded {
    /// The manifest root: the track's `contentHash`.
    pub(super) root: B256,
    /// Chunks, which is the track's `duration` in seconds.
    pub(super) duration: u32,
}

/// The studio on `api`, as the artist's browser speaks to it.
pub(super) struct StudioClient {
    http: reqwest::Client,
    api: SocketAddr,
    token: String,
}

impl StudioClient {
    /// Signs in as `key`: a nonce, the EIP-4361 message for this node's domain and `chain_id`, `personal_sign`,
    /// and the bearer token the studio answers with.
    pub(super) async fn sign_in(
        api: SocketAddr,
        chain_id: u64,
        key: &PrivateKeySigner,
    ) -> eyre::Result<Self> {
        let http = beatstream_sim::audio::http_client()?;
        let nonce = post(&http, format!("http://{api}/studio/siwe/nonce"), None).await?;
        let nonce = nonce["nonce"].as_str().ok_or_else(|| eyre::eyre!("no nonce in {nonce}"))?;
        let message = message(api, chain_id, key.address(), nonce).to_string();
        let signature = key.sign_message_sync(message.as_bytes())?;
        let body = serde_json::json!({
            "message": message,
            "signature": alloy::hex::encode_prefixed(signature.as_bytes()),
        });
        let session = post(&http, format!("http://{api}/studio/siwe/verify"), Some(body)).await?;
        let token = session["token"]
            .as_str()
            .ok_or_else(|| eyre::eyre!("no token in {session}"))?
            .to_owned();
        Ok(Self { http, api, token })
    }

    /// Uploads `wav` for `<label>.beatstream.eth`.
    pub(super) async fn upload(&self, label: &str, wav: Vec<u8>) -> eyre::Result<Uploaded> {
        let response = self
            .http
            .post(format!("http://{}/studio/artists/{label}/tracks", self.api))
            .bearer_auth(&self.token)
            .header("content-type", "audio/wav")
            .body(wav)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        eyre::ensure!(status.is_success(), "upload: {status} {body}");
        let root = body["root"].as_str().ok_or_else(|| eyre::eyre!("no root in {body}"))?;
        let duration =
            body["duration"].as_u64().ok_or_else(|| eyre::eyre!("no duration in {body}"))?;
        Ok(Uploaded { root: root.parse()?, duration: u32::try_from(duration)? })
    }
}

/// The message a wallet would be shown: this node's domain and chain, issued now, no expiry.
fn message(api: SocketAddr, chain_id: u64, address: Address, nonce: &str) -> Message {
    Message {
        scheme: None,
        domain: api.to_string(),
        address,
        statement: Some("Sign in to the BeatStream studio.".into()),
        uri: format!("http://{api}/studio"),
        chain_id,
        nonce: nonce.to_owned(),
        issued_at: DateTime::from_unix_seconds(beatstream_primitives::unix_now() as i64),
        expiration_time: None,
        not_before: None,
        request_id: None,
        resources: None,
    }
}

/// POSTs `body` (JSON) to `url`; the JSON answer of a success.
async fn post(http: &reqwest::Client, url: String, body: Option<Value>) -> eyre::Result<Value> {
    let mut request = http.post(&url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    eyre::ensure!(status.is_success(), "POST {url}: {status} {answer}");
    Ok(answer)
}
