//! The studio's state and what it does: issue nonces, sign artists in, authorise a session for an artist name,
//! take uploads and find stored tracks. `http.rs` and `serve.rs` put it on the wire.

use std::{path::PathBuf, sync::Arc, time::SystemTime};

use alloy::primitives::{Address, B256};
use axum::body::Bytes;
use beatstream_audio::{Limits, NodeKey};
use beatstream_primitives::Deployment;
use futures_util::Stream;
use tracing::{info, warn};

use crate::{
    Config, Error, Result,
    catalog::{Catalog, Track},
    chain::{Chain, Management},
    db::{Db, NewSession},
    signature,
    siwe::{Expected, Message},
    storage::{Location, Storage},
    token,
    upload::{self, Owner, Uploaded},
};

/// A nonce to put in a sign-in message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedNonce {
    /// Letters and digits, used once.
    pub nonce: String,
    /// When it can no longer be used, in unix seconds.
    pub expires_at: i64,
}

/// A session opened by a sign-in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    /// The bearer token: 64 hex digits, shown once and stored only as its SHA-256.
    pub token: String,
    /// The signed-in address.
    pub address: Address,
    /// When the session ends, in unix seconds.
    pub expires_at: i64,
}

/// An address allowed to act for an artist name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artist {
    /// The signed-in address.
    pub address: Address,
    /// The artist name's label (`aurora` for `aurora.beatstream.eth`).
    pub label: String,
    /// `namehash(<label>.beatstream.eth)`, the registry's artist node.
    pub node: B256,
}

/// The studio: its database, the chain, and what sign-in messages must say. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Studio {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    chain: Chain,
    expected: Expected,
    nonce_ttl_secs: u64,
    session_ttl_secs: u64,
    storage: Storage,
    /// Seals track secrets; without it uploads are refused.
    node_key: Option<NodeKey>,
    limits: Limits,
    upload_dir: PathBuf,
    catalog: Catalog,
}

impl Studio {
    /// Validates the settings, reads the audio key and the deployment file, opens the audio store, connects to
    /// Postgres (migrating it) and checks that the RPC endpoint serves the deployment's chain. An S3 store takes its
    /// settings from the process's `AWS_*` variables.
    pub async fn connect(config: Config) -> Result<Self> {
        // Collected first: the future must be `Send`, and the environment's iterator is not.
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self::connect_with_env(config, env).await
    }

    /// [`Studio::connect`], with the `AWS_*` variables taken from `env` instead of the process's environment.
    pub async fn connect_with_env(config: Config, env: Vec<(String, String)>) -> Result<Self> {
        let Config { database, rpc, deployment, audio_key, options } = config;
        options.validate()?;
        database.validate(false).map_err(|e| Error::Config(e.to_string()))?;
        let node_key =
            audio_key.load().map_err(|e| Error::Config(e.to_string()))?.map(NodeKey::from_bytes);
        if node_key.is_none() {
            warn!(
                target: "beatstream::studio",
                "no audio key (--audio-key-file or --audio-key): uploads will be refused with audio_key_missing"
            );
        }
        let location = Location::parse(&options.storage_url)?;
        // The S3 client's TLS is rustls without a provider of its own: the process's (ring), installed once.
        beatstream_primitives::tls::install_crypto_provider();
        let storage = Storage::open(&location, options.storage_s3_endpoint.as_deref(), env)?;
        let upload_dir = options.upload_dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&upload_dir).map_err(|e| {
            Error::Config(format!("--studio-upload-dir {}: {e}", upload_dir.display()))
        })?;
        let deployment = Deployment::load(&deployment).map_err(Error::Deployment)?;
        let chain = Chain::new(&rpc, &deployment)?;
        chain.check_chain_id().await?;
        let db = Db::connect(&database, deployment.chain_id, options.db_connections).await?;
        info!(
            target: "beatstream::studio",
            domain = %options.domain,
            chain_id = deployment.chain_id,
            storage = ?location,
            uploads = node_key.is_some(),
            "studio ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                chain,
                expected: Expected { domain: options.domain, chain_id: deployment.chain_id },
                nonce_ttl_secs: options.nonce_ttl_secs,
                session_ttl_secs: options.session_ttl_secs,
                storage,
                node_key,
                limits: Limits {
                    max_duration_ms: options.max_duration_secs * 1000,
                    max_bytes: options.max_upload_bytes,
                },
                upload_dir,
                catalog: Catalog::new(),
            }),
        })
    }

    /// The domain sign-in messages must name.
    pub fn domain(&self) -> &str {
        &self.inner.expected.domain
    }

    /// The chain id sign-in messages must name.
    pub fn chain_id(&self) -> u64 {
        self.inner.expected.chain_id
    }

    /// Issues a one-time nonce, and deletes the expired ones.
    pub async fn issue_nonce(&self) -> Result<IssuedNonce> {
        let nonce = token::nonce()?;
        let expires_at = self.inner.db.issue_nonce(&nonce, self.inner.nonce_ttl_secs).await?;
        Ok(IssuedNonce { nonce, expires_at })
    }

    /// Signs in with an EIP-4361 `message` and its `signature` (`0x`-prefixed hex): parses the message strictly,
    /// checks its domain, chain and validity window, that its nonce is open, and its signature (the key's, or the
    /// account's ERC-1271 wallet's); then uses the nonce up and opens a session, in one transaction. Any refusal
    /// leaves the nonce as it was.
    pub async fn sign_in(&self, message: &str, signature: &str) -> Result<SignIn> {
        let inner = &self.inner;
        let parsed = Message::parse(message)?;
        let signature = parse_signature(parsed.address, signature)?;
        inner.expected.check(&parsed, SystemTime::now())?;
        // A nonce that cannot be used ends here, before any RPC is spent on its signature.
        if !inner.db.nonce_is_open(&parsed.nonce).await? {
            return Err(Error::Nonce);
        }
        signature::check(&inner.chain, parsed.address, message, &signature).await?;
        let (token, token_sha256) = token::session()?;
        let session = NewSession {
            token_sha256,
            address: parsed.address,
            ttl_secs: inner.session_ttl_secs,
            not_after: parsed.expiration_time.as_ref().map(|t| t.unix_seconds()),
        };
        let expires_at = inner.db.sign_in(&parsed.nonce, &session).await?.ok_or(Error::Nonce)?;
        info!(target: "beatstream::studio", address = %parsed.address, expires_at, "signed in");
        Ok(SignIn { token, address: parsed.address, expires_at })
    }

    /// The address signed in with the bearer `token`, while its session lasts.
    pub async fn session(&self, token: &str) -> Result<Address> {
        let hash = token::stored_hash(token)
            .ok_or(Error::Unauthorized("the bearer token is not one this node issued"))?;
        match self.inner.db.session(hash).await? {
            Some(session) => Ok(session.address),
            None => Err(Error::Unauthorized("unknown or expired session: sign in again")),
        }
    }

    /// The address signed in with `token`, if it manages `<label>.beatstream.eth` right now on chain (holds its
    /// name token, or is approved by the holder).
    pub async fn authorize(&self, token: &str, label: &str) -> Result<Address> {
        Ok(self.authorize_label(token, label).await?.address)
    }

    /// [`Studio::authorize`], with the label and the artist's node.
    pub async fn authorize_label(&self, token: &str, label: &str) -> Result<Artist> {
        let address = self.session(token).await?;
        if !is_valid_label(label) {
            return Err(Error::InvalidLabel(label.to_owned()));
        }
        let chain = &self.inner.chain;
        match chain.management(label, address).await? {
            Management::Manager => {
                Ok(Artist { address, label: label.to_owned(), node: chain.node(label) })
            }
            Management::Other => {
                Err(Error::NotManager { label: label.to_owned(), address, registered: true })
            }
            Management::Unregistered => {
                Err(Error::NotManager { label: label.to_owned(), address, registered: false })
            }
        }
    }
}

impl Studio {
    /// Takes an upload for `artist`: refuses it before reading a byte when the node has no audio key or its
    /// `content_length` is over the limit, streams `body` to a temporary file under the limit, then cuts and stores
    /// the track (`upload.rs`). The storing runs as a task of its own, so a client that goes away midway leaves
    /// either a whole track or nothing.
    pub async fn upload<S, E>(
        &self,
        artist: &Artist,
        content_length: Option<u64>,
        body: S,
    ) -> Result<Uploaded>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let inner = &self.inner;
        let node_key = inner.node_key.clone().ok_or(Error::AudioKeyMissing)?;
        let max_bytes = inner.limits.max_bytes;
        if content_length.is_some_and(|n| n > max_bytes) {
            return Err(Error::Audio(beatstream_audio::Error::TooLarge { max_bytes }));
        }
        let file = upload::receive(&inner.upload_dir, body, max_bytes).await?;
        let owner = Owner { node: artist.node, address: artist.address };
        let task = upload::store(
            inner.storage.clone(),
            inner.db.clone(),
            node_key,
            inner.limits,
            owner,
            file,
        );
        tokio::spawn(task).await.map_err(|e| Error::Internal(format!("the upload task: {e}")))?
    }

    /// The track `root`, if it was uploaded here.
    pub(crate) async fn track(&self, root: B256) -> Result<Option<Arc<Track>>> {
        self.inner.catalog.track(&self.inner.db, root).await
    }

    /// The audio store.
    pub(crate) fn storage(&self) -> &Storage {
        &self.inner.storage
    }
}

/// The signature's bytes from `0x`-prefixed hex.
fn parse_signature(address: Address, hex: &str) -> Result<Vec<u8>> {
    hex.strip_prefix("0x")
        .and_then(|h| alloy::hex::decode(h).ok())
        .filter(|bytes| !bytes.is_empty())
        .ok_or(Error::Signature { address, why: "it is not 0x-prefixed hex" })
}

/// An artist label as the registry takes it: 3 to 63 bytes, each a-z, 0-9 or '-'.
pub(crate) fn is_valid_label(label: &str) -> bool {
    (3..=63).contains(&label.len())
        && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node spawns these futures on its runtime.
    #[test]
    fn connecting_is_send() {
        fn send<T: Send>(_: T) {}
        let _ = |config: Config| send(Studio::connect(config));
    }

    #[test]
    fn labels_are_the_registrys() {
        for ok in ["abc", "aurora", "dj-9", &"a".repeat(63)] {
            assert!(is_valid_label(ok), "{ok}");
        }
        for bad in ["", "ab", "Aurora", "au.rora", "aurora ", "é-ab", &"a".repeat(64)] {
            assert!(!is_valid_label(bad), "{bad}");
        }
    }

    #[test]
    fn signatures_are_0x_hex() {
        assert_eq!(parse_signature(Address::ZERO, "0x0a0B").unwrap(), vec![0x0a, 0x0b]);
        for bad in ["", "0x", "0a0b", "0xzz", "0x0"] {
            assert!(
                matches!(parse_signature(Address::ZERO, bad), Err(Error::Signature { .. })),
                "{bad}"
            );
        }
    }
}
