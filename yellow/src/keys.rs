//! App session keys: a wallet delegates quorum signing (`0xA2` signatures) to another key, per application or per
//! app session, until a deadline.
//!
//! A delegation is an [`AppSessionKeyState`], versioned per (wallet, key): each submission must carry the latest
//! version plus one, and the newest version is the only one that counts. Submitting a version whose `expires_at`
//! is already past revokes the key.
//!
//! Both signatures are plain 65-byte EIP-191 (`personal_sign`) signatures over the 32-byte [`AppSessionKeyState::pack`]
//! hash, without the `0xA1`/`0xA2` prefix that quorum signatures carry.
//!
//! **Upstream drift.** The stored layer-3/nitrolite sources hold two versions of `pkg/app/session_key_v1.go`:
//!
//! - the older one turns each application id and app session id into a `bytes32` with `common.HexToHash(id)` (the TS
//!   SDK's `hexToBytes32` matches it) and needs only the wallet's `user_sig`;
//! - the newer one hashes each id's UTF-8 bytes with `keccak256` and also needs `session_key_sig`, the session key's
//!   signature over the same hash (proof that the submitter holds the key), except when revoking, where the
//!   wallet's signature alone is enough so a lost or hostile key cannot veto its own revocation.
//!
//! This module follows the newer version on both counts. Which one a deployed v1.4.1 node runs was not confirmed.

use alloy::{
    primitives::{Address, B256, Signature, eip191_hash_message, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{SolType, sol_data},
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{U64String, app::lower_address};

/// One version of a wallet's delegation to an app session key (`AppSessionKeyStateV1`; field names are the Go JSON
/// tags).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSessionKeyState {
    /// The delegating wallet.
    #[serde(with = "lower_address")]
    pub user_address: Address,
    /// The delegated key's address.
    #[serde(with = "lower_address")]
    pub session_key: Address,
    /// 1 for the first state of this (wallet, key) pair, then the latest plus one.
    pub version: U64String,
    /// Applications whose sessions the key may sign for (lower case).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub application_ids: Vec<String>,
    /// App sessions the key may sign for (lower-case `0x` hex).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub app_session_ids: Vec<String>,
    /// Unix seconds after which the key no longer signs; a past value revokes it.
    pub expires_at: U64String,
    /// The wallet's signature over [`AppSessionKeyState::pack`]: `0x` hex, 65 bytes, no prefix byte.
    pub user_sig: String,
    /// The session key's signature over the same hash, required unless the state revokes the key. The JSON name
    /// is inferred from the Go field `SessionKeySig` (its struct tag was not in the stored sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_key_sig: Option<String>,
}

/// `(address user, address sessionKey, uint64 version, bytes32[] applicationIds, bytes32[] appSessionIds,
/// uint64 expiresAt)`.
type KeyStateAbi = (
    sol_data::Address,
    sol_data::Address,
    sol_data::Uint<64>,
    sol_data::Array<sol_data::FixedBytes<32>>,
    sol_data::Array<sol_data::FixedBytes<32>>,
    sol_data::Uint<64>,
);

/// Why a key-state signature is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeySigError {
    /// The signature is absent.
    #[error("signature is missing")]
    Missing,
    /// Not `0x` hex.
    #[error("signature is not 0x hex")]
    Hex,
    /// Not 65 bytes.
    #[error("signature must be 65 bytes, got {0}")]
    Length(usize),
    /// No key recovers from it.
    #[error("signature does not recover a signer")]
    Recover,
}

impl AppSessionKeyState {
    /// What both signatures sign: `keccak256(abi.encode(user, sessionKey, version, keccak256(applicationId)[],
    /// keccak256(appSessionId)[], expiresAt))`, each id hashed as its UTF-8 bytes.
    pub fn pack(&self) -> B256 {
        let ids =
            |ids: &[String]| ids.iter().map(|id| keccak256(id.as_bytes())).collect::<Vec<_>>();
        let fields = (
            self.user_address,
            self.session_key,
            self.version.0,
            ids(&self.application_ids),
            ids(&self.app_session_ids),
            self.expires_at.0,
        );
        keccak256(KeyStateAbi::abi_encode_params(&fields))
    }

    /// A delegation from `user` to `session_key`, signed by both (registration, extension or rotation).
    pub fn sign(
        user: &PrivateKeySigner,
        session_key: &PrivateKeySigner,
        version: u64,
        application_ids: Vec<String>,
        app_session_ids: Vec<String>,
        expires_at: u64,
    ) -> Self {
        let mut state = Self {
            user_address: user.address(),
            session_key: session_key.address(),
            version: U64String(version),
            application_ids,
            app_session_ids,
            expires_at: U64String(expires_at),
            user_sig: String::new(),
            session_key_sig: None,
        };
        let hash = state.pack();
        state.user_sig = sign_hash(user, hash);
        state.session_key_sig = Some(sign_hash(session_key, hash));
        state
    }

    /// A revocation of `session_key` by `user`: version `version`, expired at `expired_at` (a past Unix time),
    /// no scopes, signed by the wallet only.
    pub fn revocation(
        user: &PrivateKeySigner,
        session_key: Address,
        version: u64,
        expired_at: u64,
    ) -> Self {
        let mut state = Self {
            user_address: user.address(),
            session_key,
            version: U64String(version),
            application_ids: Vec::new(),
            app_session_ids: Vec::new(),
            expires_at: U64String(expired_at),
            user_sig: String::new(),
            session_key_sig: None,
        };
        state.user_sig = sign_hash(user, state.pack());
        state
    }

    /// Whether the key may still sign at Unix time `now` (a state with `expires_at <= now` revokes the key).
    pub fn is_active(&self, now: u64) -> bool {
        self.expires_at.0 > now
    }

    /// The address that made `user_sig`.
    pub fn recover_user_sig(&self) -> Result<Address, KeySigError> {
        recover(&self.user_sig, self.pack())
    }

    /// The address that made `session_key_sig`.
    pub fn recover_session_key_sig(&self) -> Result<Address, KeySigError> {
        recover(self.session_key_sig.as_deref().ok_or(KeySigError::Missing)?, self.pack())
    }
}

/// EIP-191 signature of the 32 bytes of `hash`, as `0x` hex.
fn sign_hash(signer: &PrivateKeySigner, hash: B256) -> String {
    let sig =
        signer.sign_hash_sync(&eip191_hash_message(hash)).expect("a local key signs any digest");
    alloy::hex::encode_prefixed(sig.as_bytes())
}

fn recover(sig: &str, hash: B256) -> Result<Address, KeySigError> {
    if sig.is_empty() {
        return Err(KeySigError::Missing);
    }
    let hex = sig.strip_prefix("0x").ok_or(KeySigError::Hex)?;
    let bytes = alloy::hex::decode(hex).map_err(|_| KeySigError::Hex)?;
    if bytes.len() != 65 {
        return Err(KeySigError::Length(bytes.len()));
    }
    let sig = Signature::from_raw(&bytes).map_err(|_| KeySigError::Recover)?;
    sig.recover_address_from_prehash(&eip191_hash_message(hash)).map_err(|_| KeySigError::Recover)
}

/// Go writes a nil slice as `null`.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_signatures_recover_their_signers() {
        let (user, key) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let state = AppSessionKeyState::sign(
            &user,
            &key,
            1,
            vec!["beatstream".into()],
            Vec::new(),
            1_900_000_000,
        );
        assert_eq!(state.recover_user_sig().unwrap(), user.address());
        assert_eq!(state.recover_session_key_sig().unwrap(), key.address());
        let revoked = AppSessionKeyState::revocation(&user, key.address(), 2, 1);
        assert_eq!(revoked.recover_user_sig().unwrap(), user.address());
        assert_eq!(revoked.recover_session_key_sig(), Err(KeySigError::Missing));
        assert!(state.is_active(1_899_999_999) && !state.is_active(1_900_000_000));
    }

    #[test]
    fn every_field_is_signed() {
        let (user, key) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let state =
            AppSessionKeyState::sign(&user, &key, 1, vec!["a".into()], vec!["0x01".into()], 10);
        let hash = state.pack();
        let changes: [fn(&mut AppSessionKeyState); 6] = [
            |s| s.user_address = Address::ZERO,
            |s| s.session_key = Address::ZERO,
            |s| s.version = U64String(2),
            |s| s.application_ids[0] = "b".into(),
            |s| s.app_session_ids[0] = "0x02".into(),
            |s| s.expires_at = U64String(11),
        ];
        for change in changes {
            let mut other = state.clone();
            change(&mut other);
            assert_ne!(other.pack(), hash);
        }
    }

    #[test]
    fn ids_are_keccak_of_their_text() {
        // Two lists that `HexToHash` would confuse ("0x01" and "0x0001" both become 0x…01) differ here.
        let base = AppSessionKeyState {
            user_address: Address::ZERO,
            session_key: Address::ZERO,
            version: U64String(1),
            application_ids: Vec::new(),
            app_session_ids: vec!["0x01".into()],
            expires_at: U64String(1),
            user_sig: String::new(),
            session_key_sig: None,
        };
        let mut padded = base.clone();
        padded.app_session_ids = vec!["0x0001".into()];
        assert_ne!(base.pack(), padded.pack());
    }

    #[test]
    fn wire_form_uses_the_go_names() {
        let (user, key) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        let state = AppSessionKeyState::sign(&user, &key, 3, vec!["app".into()], Vec::new(), 99);
        let json = serde_json::to_value(&state).unwrap();
        for field in [
            "user_address",
            "session_key",
            "version",
            "application_ids",
            "app_session_ids",
            "expires_at",
            "user_sig",
            "session_key_sig",
        ] {
            assert!(json.get(field).is_some(), "{field} in {json}");
        }
        assert_eq!(json["version"], "3");
        assert_eq!(json["expires_at"], "99");
        let back: AppSessionKeyState = serde_json::from_value(json).unwrap();
        assert_eq!(back, state);
        let mut from_go = serde_json::to_value(&state).unwrap();
        from_go["app_session_ids"] = serde_json::Value::Null;
        let back: AppSessionKeyState = serde_json::from_value(from_go).unwrap();
        assert!(back.app_session_ids.is_empty());
    }
}
