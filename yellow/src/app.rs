//! App sessions: definitions, state updates, and what quorum signatures sign.
//!
//! Every hash here is `keccak256` of a Solidity `abi.encode` of the fields, in the order and with the types the
//! node uses (nitrolite v1.4.1, `pkg/app`), checked against the upstream vectors in `tests/data`:
//!
//! - session id: `abi.encode(string applicationId, (address,uint8)[] participants, uint8 quorum, uint64 nonce)`;
//! - creation: the same with `string sessionData` appended;
//! - update: `abi.encode(bytes32 appSessionId, uint8 intent, uint64 version, (address,string,string)[]
//!   allocations, string sessionData)`, amounts in their shortest decimal form.
//!
//! A quorum signature is a prefix byte naming the signer kind (`0xA1` wallet, `0xA2` registered app session key)
//! followed by a 65-byte EIP-191 (`personal_sign`) signature over the 32-byte hash.

use std::fmt;

use alloy::{
    primitives::{Address, B256, Signature, eip191_hash_message, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol_types::{SolType, sol_data},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Amount, U64String};

/// One participant of an app session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Its wallet (lower-case hex on the wire).
    #[serde(with = "lower_address")]
    pub wallet_address: Address,
    /// Its weight towards the quorum.
    pub signature_weight: u8,
}

/// An app session's definition: fixed at creation; its hash is the session id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppDefinition {
    /// The application (a registered id on the node).
    pub application_id: String,
    /// Who takes part, in order.
    pub participants: Vec<Participant>,
    /// Signature weight an update needs.
    pub quorum: u8,
    /// Distinguishes otherwise equal sessions; non-zero.
    pub nonce: U64String,
}

/// `(string applicationId, (address,uint8)[] participants, uint8 quorum, uint64 nonce)`.
type SessionIdAbi = (
    sol_data::String,
    sol_data::Array<(sol_data::Address, sol_data::Uint<8>)>,
    sol_data::Uint<8>,
    sol_data::Uint<64>,
);
/// The session id's fields and `string sessionData`.
type CreationAbi = (
    sol_data::String,
    sol_data::Array<(sol_data::Address, sol_data::Uint<8>)>,
    sol_data::Uint<8>,
    sol_data::Uint<64>,
    sol_data::String,
);
/// `(bytes32 appSessionId, uint8 intent, uint64 version, (address,string,string)[] allocations, string data)`.
type UpdateAbi = (
    sol_data::FixedBytes<32>,
    sol_data::Uint<8>,
    sol_data::Uint<64>,
    sol_data::Array<(sol_data::Address, sol_data::String, sol_data::String)>,
    sol_data::String,
);

impl AppDefinition {
    fn weights(&self) -> Vec<(Address, u8)> {
        self.participants.iter().map(|p| (p.wallet_address, p.signature_weight)).collect()
    }

    /// The app session id.
    pub fn session_id(&self) -> B256 {
        let fields = (self.application_id.clone(), self.weights(), self.quorum, self.nonce.0);
        keccak256(SessionIdAbi::abi_encode_params(&fields))
    }

    /// What creation signatures sign: the definition with the session data.
    pub fn creation_hash(&self, session_data: &str) -> B256 {
        let fields = (
            self.application_id.clone(),
            self.weights(),
            self.quorum,
            self.nonce.0,
            session_data.to_owned(),
        );
        keccak256(CreationAbi::abi_encode_params(&fields))
    }

    /// The participant with this wallet.
    pub fn participant(&self, wallet: Address) -> Option<&Participant> {
        self.participants.iter().find(|p| p.wallet_address == wallet)
    }

    /// Sum of all weights.
    pub fn total_weight(&self) -> u32 {
        self.participants.iter().map(|p| u32::from(p.signature_weight)).sum()
    }
}

/// What an update does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Intent {
    /// Move funds between participants; every asset's total is conserved.
    Operate,
    /// Add funds from a participant's channel.
    Deposit,
    /// Release funds to participants' channels; allocations only fall.
    Withdraw,
    /// Release everything and end the session; allocations repeat the current ones.
    Close,
}

impl Intent {
    /// Its number on the wire and in the hash.
    pub const fn code(self) -> u8 {
        match self {
            Self::Operate => 0,
            Self::Deposit => 1,
            Self::Withdraw => 2,
            Self::Close => 3,
        }
    }

    /// The intent with this number.
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Operate,
            1 => Self::Deposit,
            2 => Self::Withdraw,
            3 => Self::Close,
            _ => return None,
        })
    }
}

impl Serialize for Intent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for Intent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u8::deserialize(d)?;
        Self::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown intent {code}")))
    }
}

/// One participant's holding of one asset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The participant's wallet.
    #[serde(with = "lower_address")]
    pub participant: Address,
    /// The asset symbol, as the node lists it (`usdc`).
    pub asset: String,
    /// Human units.
    pub amount: Amount,
}

/// A state update: the whole allocation list at `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStateUpdate {
    /// The session.
    pub app_session_id: B256,
    /// What it does.
    pub intent: Intent,
    /// Exactly the current version plus one.
    pub version: U64String,
    /// Every participant's holdings after the update.
    pub allocations: Vec<Allocation>,
    /// Application data, signed with the rest.
    #[serde(default)]
    pub session_data: String,
}

impl AppStateUpdate {
    /// What quorum signatures sign.
    pub fn hash(&self) -> B256 {
        let allocations: Vec<(Address, String, String)> = self
            .allocations
            .iter()
            .map(|a| (a.participant, a.asset.clone(), a.amount.to_string()))
            .collect();
        let fields = (
            self.app_session_id,
            self.intent.code(),
            self.version.0,
            allocations,
            self.session_data.clone(),
        );
        keccak256(UpdateAbi::abi_encode_params(&fields))
    }

    /// The amount `participant` holds of `asset` (zero when not listed).
    pub fn amount_of(&self, participant: Address, asset: &str) -> Amount {
        self.allocations
            .iter()
            .filter(|a| a.participant == participant && a.asset == asset)
            .fold(Amount::ZERO, |sum, a| sum.checked_add(a.amount).unwrap_or(sum))
    }
}

/// Who made a quorum signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignerKind {
    /// The participant's wallet (`0xA1`).
    Wallet,
    /// An app session key the wallet registered (`0xA2`).
    SessionKey,
}

impl SignerKind {
    /// The prefix byte.
    pub const fn prefix(self) -> u8 {
        match self {
            Self::Wallet => 0xA1,
            Self::SessionKey => 0xA2,
        }
    }

    /// The kind this prefix byte names.
    pub const fn from_prefix(byte: u8) -> Option<Self> {
        match byte {
            0xA1 => Some(Self::Wallet),
            0xA2 => Some(Self::SessionKey),
            _ => None,
        }
    }
}

/// A quorum signature: prefix byte and a 65-byte `r ‖ s ‖ v` EIP-191 signature. `0x`-hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuorumSig {
    /// Who signed.
    pub kind: SignerKind,
    /// `r ‖ s ‖ v`, `v` 27 or 28.
    pub sig: [u8; 65],
}

/// Why a quorum signature is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// Not 66 bytes of hex.
    #[error("quorum signature must be 66 bytes of 0x hex (prefix byte and a 65-byte signature)")]
    Length,
    /// Neither 0xA1 nor 0xA2.
    #[error(
        "quorum signature prefix 0x{0:02x} is neither 0xa1 (wallet) nor 0xa2 (app session key)"
    )]
    Prefix(u8),
    /// No key recovers from it.
    #[error("quorum signature does not recover a signer")]
    Recover,
}

impl QuorumSig {
    /// Signs `hash` (EIP-191 over its 32 bytes) as `kind`.
    pub fn sign(signer: &PrivateKeySigner, kind: SignerKind, hash: B256) -> Self {
        let sig = signer
            .sign_hash_sync(&eip191_hash_message(hash))
            .expect("a local key signs any digest");
        Self { kind, sig: sig.as_bytes() }
    }

    /// Signs `hash` as `kind` with any alloy signer, such as a key held in a KMS (EIP-191 over its 32 bytes: one
    /// `sign_hash` of [`QuorumSig::digest`]).
    pub async fn sign_with<S>(
        signer: &S,
        kind: SignerKind,
        hash: B256,
    ) -> alloy::signers::Result<Self>
    where
        S: alloy::signers::Signer + Sync + ?Sized,
    {
        let sig = signer.sign_hash(&Self::digest(hash)).await?;
        Ok(Self { kind, sig: sig.as_bytes() })
    }

    /// Parses the prefixed bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SigError> {
        let [prefix, rest @ ..] = bytes else { return Err(SigError::Length) };
        let sig: [u8; 65] = rest.try_into().map_err(|_| SigError::Length)?;
        let kind = SignerKind::from_prefix(*prefix).ok_or(SigError::Prefix(*prefix))?;
        Ok(Self { kind, sig })
    }

    /// The prefixed bytes.
    pub fn to_bytes(&self) -> [u8; 66] {
        let mut out = [0u8; 66];
        out[0] = self.kind.prefix();
        out[1..].copy_from_slice(&self.sig);
        out
    }

    /// The EIP-191 digest of `hash`: what the 65 bytes sign.
    pub fn digest(hash: B256) -> B256 {
        eip191_hash_message(hash)
    }

    /// The address whose key made the signature over `hash` (with alloy's recovery; hot paths may use their own
    /// over [`QuorumSig::digest`]).
    pub fn recover(&self, hash: B256) -> Result<Address, SigError> {
        let sig = Signature::from_raw(&self.sig).map_err(|_| SigError::Recover)?;
        sig.recover_address_from_prehash(&Self::digest(hash)).map_err(|_| SigError::Recover)
    }
}

impl fmt::Debug for QuorumSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuorumSig({})", alloy::hex::encode_prefixed(self.to_bytes()))
    }
}

impl Serialize for QuorumSig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&alloy::hex::encode_prefixed(self.to_bytes()))
    }
}

impl<'de> Deserialize<'de> for QuorumSig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = alloy::hex::decode(&s).map_err(serde::de::Error::custom)?;
        Self::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// Addresses as the node writes them: lower-case `0x` hex (any case is read).
pub(crate) mod lower_address {
    use alloy::primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&alloy::hex::encode_prefixed(a))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
