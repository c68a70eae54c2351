//! The studio as an artist's wallet speaks to it over HTTP (`docs/STUDIO.md`): sign in with Ethereum, then upload
//! for a name the wallet manages. `beatstream dev` uploads its demo tracks with it, and the end-to-end tests use it.
//!
//! ```no_run
//! # async fn demo(key: alloy::signers::local::PrivateKeySigner, wav: Vec<u8>) -> Result<(), beatstream_studio::client::ClientError> {
//! use beatstream_studio::client::StudioClient;
//!
//! let node: url::Url = "http://127.0.0.1:8080".parse().expect("a URL");
//! let studio = StudioClient::sign_in(&node, 31337, &key).await?;
//! let track = studio.upload("demo", "audio/wav", wav).await?;
//! println!("publish contentHash {} with duration {}", track.root, track.duration);
//! # Ok(()) }
//! ```

use std::time::Duration;

use alloy::signers::Signer;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::{
    Uploaded,
    siwe::{DateTime, Message},
};

/// How long one request may take (an upload included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a studio request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The studio answered with one of its error codes (`docs/STUDIO.md`, "Errors").
    #[error("{status} {code}: {message}")]
    Studio {
        /// The HTTP status.
        status: u16,
        /// The stable code.
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// The node could not be reached, or answered with something that is not the studio's JSON.
    #[error("{0}")]
    Http(String),
    /// The wallet would not sign.
    #[error("signing the sign-in message: {0}")]
    Signer(#[from] alloy::signers::Error),
}

impl ClientError {
    /// The studio's error code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Studio { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A signed-in session with the studio of the node at `base`.
#[derive(Clone, Debug)]
pub struct StudioClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl StudioClient {
    /// Signs in as `wallet`: a nonce, the EIP-4361 message for `base`'s authority (the node's `--studio-domain`)
    /// and `chain_id`, issued now with no expiry, `personal_sign`, and the bearer token the studio answers with.
    pub async fn sign_in(
        base: &Url,
        chain_id: u64,
        wallet: &(impl Signer + Sync),
    ) -> Result<Self, ClientError> {
        beatstream_primitives::tls::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Http(format!("building the HTTP client: {e}")))?;
        let mut client = Self { http, base: base.clone(), token: String::new() };
        #[derive(serde::Deserialize)]
        struct Nonce {
            nonce: String,
        }
        let Nonce { nonce } = client.post_json("studio/siwe/nonce", &serde_json::json!({})).await?;
        let message = client.message(chain_id, wallet.address(), nonce).to_string();
        let signature = wallet.sign_message(message.as_bytes()).await?;
        #[derive(serde::Deserialize)]
        struct Session {
            token: String,
        }
        let body = serde_json::json!({
            "message": message,
            "signature": alloy::hex::encode_prefixed(signature.as_bytes()),
        });
        let Session { token } = client.post_json("studio/siwe/verify", &body).await?;
        client.token = token;
        Ok(client)
    }

    /// The session's bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Uploads `file` (its `content_type`, e.g. `audio/wav`) as a new track of `<label>.beatstream.eth`: the stored
    /// track, whose root and duration are what to publish on chain.
    pub async fn upload(
        &self,
        label: &str,
        content_type: &str,
        file: Vec<u8>,
    ) -> Result<Uploaded, ClientError> {
        let url = self.url(&format!("studio/artists/{label}/tracks"))?;
        let response = self
            .http
            .post(url.clone())
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(file)
            .send()
            .await
            .map_err(|e| ClientError::Http(format!("POST {url}: {e}")))?;
        answer(&url, response).await
    }

    /// The message a wallet is shown: the node's authority as the domain, issued now, no expiry.
    fn message(
        &self,
        chain_id: u64,
        address: alloy::primitives::Address,
        nonce: String,
    ) -> Message {
        // Host and port as the URL writes them (an IPv6 host keeps its brackets), without user info.
        let authority = self.base[url::Position::BeforeHost..url::Position::AfterPort].to_owned();
        Message {
            scheme: None,
            domain: authority,
            address,
            statement: Some("Sign in to the BeatStream studio.".into()),
            uri: self.url("studio").map_or_else(|_| self.base.to_string(), |u| u.to_string()),
            chain_id,
            nonce,
            issued_at: DateTime::from_unix_seconds(beatstream_primitives::unix_now() as i64),
            expiration_time: None,
            not_before: None,
            request_id: None,
            resources: None,
        }
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ClientError> {
        let url = self.url(path)?;
        let response = self
            .http
            .post(url.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| ClientError::Http(format!("POST {url}: {e}")))?;
        answer(&url, response).await
    }

    /// `path` under the base, whether or not the base ends with a slash.
    fn url(&self, path: &str) -> Result<Url, ClientError> {
        let mut base = self.base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(path).map_err(|e| ClientError::Http(format!("{base}{path}: {e}")))
    }
}

/// A success's JSON as `T`, or the studio's error.
async fn answer<T: DeserializeOwned>(
    url: &Url,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ClientError::Http(format!("{url}: reading the answer: {e}")))?;
    if status.is_success() {
        return serde_json::from_slice(&body).map_err(|e| {
            ClientError::Http(format!("{url}: {status} with an unexpected body: {e}"))
        });
    }
    #[derive(serde::Deserialize)]
    struct Failure {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Failure>(&body) {
        Ok(Failure { error }) => Err(ClientError::Studio {
            status: status.as_u16(),
            code: error.code,
            message: error.message,
        }),
        Err(_) => Err(ClientError::Http(format!(
            "{url}: {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))),
    }
}
