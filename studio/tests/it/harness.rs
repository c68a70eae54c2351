//! A studio served on a local port, on anvil with the real contracts and a fresh database, and a client that signs
//! in the way a wallet does.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use alloy::{
    primitives::{Address, B256},
    signers::{SignerSync, local::PrivateKeySigner},
};
use beatstream_audio::NodeKey;
use beatstream_primitives::{audio_key::AudioKeyArgs, db::DatabaseArgs, rpc::RpcArgs, unix_now};
use beatstream_studio::{
    Artist, Config, Options, Studio,
    siwe::{DateTime, Message},
};
use beatstream_testkit::{TestDb, scene::Chain};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The audio key the test studios start with (`--audio-key`).
pub(crate) const AUDIO_KEY: [u8; 32] = [0x42; 32];

/// The test studios' audio key.
pub(crate) fn node_key() -> NodeKey {
    NodeKey::from_bytes(AUDIO_KEY)
}

/// Everything a studio test needs.
pub(crate) struct Env {
    pub(crate) chain: Chain,
    pub(crate) db: TestDb,
    pub(crate) addr: SocketAddr,
    /// The studio's `--storage-url` directory and `--studio-upload-dir` (unless a test set others).
    pub(crate) dirs: tempfile::TempDir,
    http: reqwest::Client,
    server: JoinHandle<()>,
}

/// An HTTP answer as bytes.
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Fetched {
    /// The value of header `name`, as text ("" when absent).
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Env {
    /// Anvil with the contracts, a database, and the studio with its defaults on a free port (its domain the
    /// port's address).
    pub(crate) async fn new() -> eyre::Result<Self> {
        Self::with(|_| {}).await
    }

    /// [`Env::new`] with the studio's options changed by `configure`.
    pub(crate) async fn with(configure: impl FnOnce(&mut Options)) -> eyre::Result<Self> {
        Self::with_env(configure, Vec::new(), true).await
    }

    /// [`Env::with`], the studio reading its `AWS_*` settings from `env`. Its defaults: the audio key
    /// [`AUDIO_KEY`] (none when `with_key` is false), its store in `<dirs>/audio` and uploads in `<dirs>/uploads`.
    pub(crate) async fn with_env(
        configure: impl FnOnce(&mut Options),
        env: Vec<(String, String)>,
        with_key: bool,
    ) -> eyre::Result<Self> {
        beatstream_primitives::tls::install_crypto_provider();
        let chain = Chain::new().await?;
        let db = TestDb::new().await?;
        let dirs = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut options = Options {
            domain: addr.to_string(),
            storage_url: dirs.path().join("audio").display().to_string(),
            upload_dir: Some(dirs.path().join("uploads")),
            ..Options::default()
        };
        configure(&mut options);
        let studio = Studio::connect_with_env(
            Config {
                database: DatabaseArgs::new(db.url()),
                rpc: RpcArgs { rpc_timeout_secs: 10, ..RpcArgs::from(chain.anvil.endpoint_url()) },
                deployment: chain.deployment_file.path().to_owned(),
                audio_key: AudioKeyArgs {
                    audio_key_file: None,
                    audio_key: with_key.then(|| alloy::hex::encode(AUDIO_KEY)),
                },
                options,
            },
            env,
        )
        .await?;
        // The studio's routes, and one that takes the artist name from its path as upload routes will.
        let app = beatstream_studio::router(studio.clone()).merge(
            axum::Router::new()
                .route(
                    "/test/artists/{label}",
                    axum::routing::get(|artist: Artist| async move {
                        axum::Json(json!({ "label": artist.label, "address": artist.address }))
                    }),
                )
                .with_state(studio),
        );
        // As `beatstream node` serves it: no Nagle.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("studio serves");
        });
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Self { chain, db, addr, dirs, http, server })
    }

    /// The store's directory (with the default `--storage-url`).
    pub(crate) fn store(&self) -> PathBuf {
        self.dirs.path().join("audio")
    }

    /// The files left in the upload directory (with the default `--studio-upload-dir`).
    pub(crate) fn uploads_left(&self) -> Vec<PathBuf> {
        files(&self.dirs.path().join("uploads"))
    }

    /// `POST /studio/artists/{label}/tracks` with `body` as the file, and `token` as the bearer when given.
    pub(crate) async fn upload(
        &self,
        token: Option<&str>,
        label: &str,
        body: Vec<u8>,
    ) -> eyre::Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .post(format!("http://{}/studio/artists/{label}/tracks", self.addr))
            .header("content-type", "application/octet-stream")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        Ok((response.status(), response.json().await?))
    }

    /// GETs `path` with `headers`, as bytes.
    pub(crate) async fn fetch(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> eyre::Result<Fetched> {
        self.request(reqwest::Method::GET, path, headers).await
    }

    /// Sends `method` to `path` with `headers`, as bytes.
    pub(crate) async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> eyre::Result<Fetched> {
        let mut request = self.http.request(method, format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        Ok(Fetched {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await?.to_vec(),
        })
    }

    /// The `audio_tracks` rows' roots and sealed secrets.
    pub(crate) async fn tracks(&self) -> eyre::Result<Vec<(B256, Vec<u8>)>> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT root, sealed_secret FROM audio_tracks ORDER BY created_at")
                .fetch_all(self.db.pool())
                .await?;
        Ok(rows.into_iter().map(|(root, sealed)| (B256::from_slice(&root), sealed)).collect())
    }

    /// `POST /studio/siwe/nonce`'s nonce.
    pub(crate) async fn nonce(&self) -> eyre::Result<String> {
        let (status, body) = self.post("/studio/siwe/nonce", None).await?;
        eyre::ensure!(status == StatusCode::OK, "nonce: {status} {body}");
        Ok(body["nonce"].as_str().expect("a nonce").to_owned())
    }

    /// The message a wallet would be asked to sign for `address` with `nonce`: this studio's domain and chain,
    /// issued now, no expiry.
    pub(crate) fn message(&self, address: Address, nonce: &str) -> Message {
        Message {
            scheme: None,
            domain: self.addr.to_string(),
            address,
            statement: Some("Sign in to the BeatStream studio.".into()),
            uri: format!("http://{}/studio", self.addr),
            chain_id: self.chain.deployment.chain_id,
            nonce: nonce.to_owned(),
            issued_at: DateTime::from_unix_seconds(unix_now() as i64),
            expiration_time: None,
            not_before: None,
            request_id: None,
            resources: None,
        }
    }

    /// `POST /studio/siwe/verify` with `message` and `signature`.
    pub(crate) async fn verify(
        &self,
        message: &str,
        signature: &[u8],
    ) -> eyre::Result<(StatusCode, Value)> {
        let body =
            json!({ "message": message, "signature": alloy::hex::encode_prefixed(signature) });
        self.post("/studio/siwe/verify", Some(body)).await
    }

    /// Signs in as `key` (a fresh nonce, the default message, `personal_sign`); returns the bearer token.
    pub(crate) async fn sign_in(&self, key: &PrivateKeySigner) -> eyre::Result<String> {
        let message = self.message(key.address(), &self.nonce().await?).to_string();
        let (status, body) = self.verify(&message, &personal_sign(key, &message)).await?;
        eyre::ensure!(status == StatusCode::OK, "sign-in: {status} {body}");
        Ok(body["token"].as_str().expect("a token").to_owned())
    }

    /// `GET /studio/me?label=<label>` with `token`.
    pub(crate) async fn me(
        &self,
        token: Option<&str>,
        label: &str,
    ) -> eyre::Result<(StatusCode, Value)> {
        let label: String = url::form_urlencoded::byte_serialize(label.as_bytes()).collect();
        self.get(&format!("/studio/me?label={label}"), token).await
    }

    /// GETs `path`, with `token` as the bearer when given; the status and the JSON answer.
    pub(crate) async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> eyre::Result<(StatusCode, Value)> {
        let mut request = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        Ok((response.status(), response.json().await?))
    }

    /// POSTs `body` (JSON) to `path`; the status and the JSON answer.
    pub(crate) async fn post(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> eyre::Result<(StatusCode, Value)> {
        let mut request = self.http.post(format!("http://{}{path}", self.addr));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        Ok((response.status(), response.json().await?))
    }

    /// A raw POST of `body` with `content_type`.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &'static str,
    ) -> eyre::Result<(StatusCode, Value)> {
        let response = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        Ok((response.status(), response.json().await?))
    }

    /// Rows of `table`.
    pub(crate) async fn count(&self, table: &str) -> eyre::Result<i64> {
        Ok(sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.db.pool())
            .await?)
    }

    /// The `namehash` of `<label>.beatstream.eth`.
    pub(crate) fn node(&self, label: &str) -> B256 {
        let mut preimage = self.chain.deployment.root_node.to_vec();
        preimage.extend_from_slice(alloy::primitives::keccak256(label).as_slice());
        alloy::primitives::keccak256(preimage)
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .flat_map(|e| if e.path().is_dir() { files(&e.path()) } else { vec![e.path()] })
        .collect()
}

/// `personal_sign`: `key`'s EIP-191 signature of `message`, 65 bytes with `v` 27 or 28.
pub(crate) fn personal_sign(key: &PrivateKeySigner, message: &str) -> Vec<u8> {
    key.sign_message_sync(message.as_bytes()).expect("signs").as_bytes().to_vec()
}

/// Asserts `answer` is the error `code` with `status`.
#[track_caller]
pub(crate) fn assert_error(answer: &(StatusCode, Value), status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!((got.as_u16(), body["error"]["code"].as_str()), (status, Some(code)), "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}
