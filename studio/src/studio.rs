//! The studio's state and what it does: issue nonces, sign artists in, and authorise a session for an artist name.
//! `http.rs` puts it on the wire.

use std::{sync::Arc, time::SystemTime};

use alloy::primitives::{Address, B256};
use beatstream_primitives::Deployment;
use tracing::info;

use crate::{
    Config, Error, Result,
    chain::{Chain, Management},
    db::{Db, NewSession},
    signature,
    siwe::{Expected, Message},
    token,
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
}

impl Studio {
    /// Validates the settings, reads the deployment file, connects to Postgres (migrating it) and checks that the
    /// RPC endpoint serves the deployment's chain.
    pub async fn connect(config: Config) -> Result<Self> {
        let Config { database, rpc, options } = config;
        options.validate()?;
        database.validate(false).map_err(|e| Error::Config(e.to_string()))?;
        let deployment = Deployment::load(&options.deployment).map_err(Error::Deployment)?;
        let chain = Chain::new(&rpc, &deployment)?;
        chain.check_chain_id().await?;
        let db = Db::connect(&database, deployment.chain_id, options.db_connections).await?;
        info!(
            target: "beatstream::studio",
            domain = %options.domain,
            chain_id = deployment.chain_id,
            "studio ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                chain,
                expected: Expected { domain: options.domain, chain_id: deployment.chain_id },
                nonce_ttl_secs: options.nonce_ttl_secs,
                session_ttl_secs: options.session_ttl_secs,
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
