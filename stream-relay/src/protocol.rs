//! The relay wire protocol (v1): JSON text frames `{"type": "<kind>", ...}` with camelCase fields.
//!
//! Wire structs keep every value as the string (or number) the client sent; `decode` turns a frame into checked
//! domain values, and the `ServerFrame` constructors format domain values for the wire. Amounts are decimal strings
//! of base units, addresses and hashes `0x` hex, signatures 65-byte `0x` hex. `docs/PROTOCOL.md` shows every kind.

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::SessionGrant;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use beatstream_yellow::{AppDefinition, AppStateUpdate, QuorumSig, SigError};

use crate::{Error, Result};

/// A grant as it travels on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireGrant {
    /// The paying account.
    pub listener: String,
    /// The player's session key.
    pub session_key: String,
    /// Decimal base units.
    pub cap: String,
    /// Unix seconds.
    pub expires_at: U64,
    /// Distinguishes otherwise equal grants.
    pub nonce: U64,
}

/// A `uint64` that arrives as a JSON number or a decimal string (JavaScript cannot hold every `u64` as a number);
/// always written as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U64(pub u64);

impl Serialize for U64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for U64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumOrStr {
            Num(u64),
            Str(String),
        }
        match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Ok(Self(n)),
            NumOrStr::Str(s) if is_decimal(&s) => {
                s.parse().map(Self).map_err(serde::de::Error::custom)
            }
            NumOrStr::Str(_) => Err(serde::de::Error::custom("expected a uint64")),
        }
    }
}

/// A `uint256` identifier (track id) that arrives as a JSON number or a decimal string; written as a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Uint(pub String);

impl<'de> Deserialize<'de> for Uint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumOrStr {
            Num(u64),
            Str(String),
        }
        Ok(match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => Self(n.to_string()),
            NumOrStr::Str(s) => Self(s),
        })
    }
}

/// A frame a player sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ClientFrame {
    /// Presents the listener's signed grant; answered by `ready` or `error`.
    Hello {
        /// The grant.
        grant: WireGrant,
        /// The listener's signature (65 bytes for an EOA, any length for ERC-1271).
        grant_sig: String,
    },
    /// Starts a session for one track; answered by `session`, then a `beat` each second.
    Play {
        /// The registry's track id.
        track_id: Uint,
        /// The second to start at (the first chunk whose key the session releases), 0 when absent: a player
        /// resuming a track it was cut off from pays only for what it has not heard.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u32>,
        /// `false` for a quiet session: the relay sends the `beat` that starts it and the first one after each
        /// resume, and the player pays each later second on its own clock (one frame fewer per second). `true` when
        /// absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        beats: Option<bool>,
    },
    /// The session key's signed cumulative voucher; answered by `ack` once stored.
    Voucher {
        /// Struct hash of the connection's grant.
        grant_id: String,
        /// The artist paid.
        payee: String,
        /// Decimal base units owed to `payee` under the grant in total.
        cumulative: String,
        /// 65-byte `r ‖ s ‖ v` signature by the session key.
        sig: String,
    },
    /// A one-off amount with a message to a payee, signed by the session key (EIP-712 `Tip`); answered by `tipAck`
    /// once stored.
    Tip {
        /// Struct hash of the connection's grant.
        grant_id: String,
        /// Who is paid: an artist's address or the payee of a split in force.
        payee: String,
        /// The player's id for the tip, unique under the grant (a decimal string or a JSON number).
        tip_id: Uint,
        /// Decimal base units.
        amount: String,
        /// The message, at most 280 bytes of UTF-8; stored and settled as given.
        #[serde(default)]
        message: String,
        /// 65-byte `r ‖ s ‖ v` signature by the session key.
        sig: String,
    },
    /// Ends a session; answered by `closed`.
    Stop {
        /// The session to end.
        session_id: String,
    },
    /// Pays for one track through a Yellow Network app session: creates the session on the node, deposits into it,
    /// and starts a session like `play`; answered by `session` (with `appSessionId`), then a `beat` each second.
    YellowOpen {
        /// The registry's track id.
        track_id: Uint,
        /// The app session definition (node format: snake_case, lower-case addresses).
        definition: AppDefinition,
        /// Application data signed with the definition.
        #[serde(default)]
        session_data: String,
        /// The listener's quorum signature (`0xa1`/`0xa2` + 65 bytes) over the creation hash.
        create_sig: String,
        /// The deposit (version 2) that funds the session.
        deposit: YellowDeposit,
    },
    /// The next operate update of a Yellow session: the full allocation list with the artist's share at what is
    /// owed; answered by `ack` once stored.
    YellowUpdate {
        /// The relay's session id.
        session_id: String,
        /// The update as the node will receive it.
        update: AppStateUpdate,
        /// The listener's quorum signature over the update's hash.
        sig: String,
        /// The listener's quorum signature over the close at `version + 1` with the same allocations and data.
        close_sig: String,
    },
}

/// The deposit of a `yellowOpen`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct YellowDeposit {
    /// Intent 1, version 2: the listener's allocation rises to the deposit.
    pub update: AppStateUpdate,
    /// The listener's quorum signature over it.
    pub sig: String,
    /// The listener's quorum signature over the close at version 3 with the same allocations and data.
    pub close_sig: String,
    /// The listener's signed channel state with the `commit` transition into the app session (forwarded to the node
    /// as is; the node checks it).
    pub user_state: serde_json::Value,
}

/// A frame the relay sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    /// The grant is accepted; `available` is what the listener can still spend.
    Ready {
        /// The grant id.
        grant_id: String,
        /// Decimal base units.
        available: String,
    },
    /// A session started.
    Session {
        /// New session id (UUID).
        session_id: String,
        /// The track played.
        track_id: String,
        /// The artist's address, which vouchers must name.
        payee: String,
        /// Decimal base units per second.
        rate_per_second: String,
        /// The Yellow app session paying for it (Yellow sessions only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app_session_id: Option<String>,
    },
    /// One more second is released; the next voucher must reach `owed`.
    Beat {
        /// The session.
        session_id: String,
        /// 1-based second of the session.
        second: u32,
        /// Decimal base units: the cumulative the next voucher must reach.
        owed: String,
    },
    /// A voucher is stored durably.
    Ack {
        /// The session the voucher paid for.
        session_id: String,
        /// The stored cumulative.
        cumulative: String,
        /// Keys of the chunks this voucher paid for that were not sent before (tracks with audio only).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keys: Vec<ChunkKeyFrame>,
    },
    /// Beats stopped: vouchers fell more than the grace behind.
    Paused {
        /// The session.
        session_id: String,
        /// Why, as a snake_case word.
        reason: String,
    },
    /// A tip is stored durably; the keeper settles it with the next batch.
    TipAck {
        /// The grant.
        grant_id: String,
        /// The tip's id.
        tip_id: String,
    },
    /// A session ended.
    Closed {
        /// The session.
        session_id: String,
        /// Decimal base units paid by vouchers in this session.
        total: String,
    },
    /// A frame was rejected; nothing changed.
    Error {
        /// Stable snake_case code (see `docs/PROTOCOL.md`).
        code: String,
        /// Human-readable detail; may change.
        message: String,
    },
}

/// One chunk's key in an `ack`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkKeyFrame {
    /// The chunk (0-based; chunk `i` is second `i + 1` of the track).
    pub index: u32,
    /// Hex of the 32-byte key.
    pub key: String,
}

/// A checked client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// See [`ClientFrame::Hello`].
    Hello {
        /// The grant.
        grant: SessionGrant,
        /// Its signature bytes.
        grant_sig: Vec<u8>,
    },
    /// See [`ClientFrame::Play`].
    Play {
        /// The track id.
        track_id: U256,
        /// The second to start at.
        from: u32,
        /// Whether every beat is sent (not a quiet session).
        beats: bool,
    },
    /// See [`ClientFrame::Voucher`].
    Voucher(VoucherMsg),
    /// See [`ClientFrame::Tip`].
    Tip(TipMsg),
    /// See [`ClientFrame::Stop`].
    Stop {
        /// The session id.
        session_id: Uuid,
    },
    /// See [`ClientFrame::YellowOpen`].
    YellowOpen(Box<YellowOpenMsg>),
    /// See [`ClientFrame::YellowUpdate`].
    YellowUpdate(Box<YellowUpdateMsg>),
}

/// A `yellowOpen`, signatures decoded, nothing verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YellowOpenMsg {
    /// The track.
    pub track_id: U256,
    /// The definition.
    pub definition: AppDefinition,
    /// Its session data.
    pub session_data: String,
    /// The listener's creation signature.
    pub create_sig: QuorumSig,
    /// The deposit update.
    pub deposit: AppStateUpdate,
    /// Its signature.
    pub deposit_sig: QuorumSig,
    /// The close at version 3.
    pub close_sig: QuorumSig,
    /// The channel state funding the deposit.
    pub user_state: serde_json::Value,
}

/// A `yellowUpdate`, signatures decoded, nothing verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YellowUpdateMsg {
    /// The relay session.
    pub session_id: Uuid,
    /// The update.
    pub update: AppStateUpdate,
    /// Its signature.
    pub sig: QuorumSig,
    /// The close at `version + 1`.
    pub close_sig: QuorumSig,
}

/// A voucher as received, fields decoded but nothing verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherMsg {
    /// The grant it is under.
    pub grant_id: B256,
    /// The artist paid.
    pub payee: Address,
    /// The cumulative amount.
    pub cumulative: U256,
    /// The signature bytes (length checked by the verifier).
    pub sig: Vec<u8>,
}

/// A tip as received, fields decoded but nothing verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TipMsg {
    /// The grant it is under.
    pub grant_id: B256,
    /// Who is paid.
    pub payee: Address,
    /// The player's id for it.
    pub tip_id: U256,
    /// The amount.
    pub amount: U256,
    /// The message's bytes as given.
    pub message: Vec<u8>,
    /// The signature bytes (length checked by the verifier).
    pub sig: Vec<u8>,
}

/// Parses and checks one text frame.
pub fn decode(text: &str) -> Result<ClientMessage> {
    let frame: ClientFrame = serde_json::from_str(text).map_err(|e| classify(text, e))?;
    frame.try_into()
}

/// Tells a frame that is not JSON (or has no `type`) from one of an unknown kind or with bad fields.
fn classify(text: &str, err: serde_json::Error) -> Error {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
    }
    match serde_json::from_str::<Envelope>(text) {
        Err(_) => Error::MalformedFrame(err.to_string()),
        Ok(Envelope { kind })
            if ["hello", "play", "voucher", "tip", "stop", "yellowOpen", "yellowUpdate"]
                .contains(&kind.as_str()) =>
        {
            Error::InvalidField(err.to_string())
        }
        Ok(Envelope { kind }) => Error::UnknownType(kind.chars().take(32).collect()),
    }
}

impl TryFrom<ClientFrame> for ClientMessage {
    type Error = Error;

    fn try_from(frame: ClientFrame) -> Result<Self> {
        Ok(match frame {
            ClientFrame::Hello { grant, grant_sig } => Self::Hello {
                grant: SessionGrant {
                    listener: address("grant.listener", &grant.listener)?,
                    sessionKey: address("grant.sessionKey", &grant.session_key)?,
                    cap: amount("grant.cap", &grant.cap)?,
                    expiresAt: grant.expires_at.0,
                    nonce: grant.nonce.0,
                },
                grant_sig: hex_bytes("grantSig", &grant_sig)?,
            },
            ClientFrame::Play { track_id, from, beats } => Self::Play {
                track_id: amount("trackId", &track_id.0)?,
                from: from.unwrap_or(0),
                beats: beats.unwrap_or(true),
            },
            ClientFrame::Voucher { grant_id, payee, cumulative, sig } => {
                Self::Voucher(VoucherMsg {
                    grant_id: hash("grantId", &grant_id)?,
                    payee: address("payee", &payee)?,
                    cumulative: amount("cumulative", &cumulative)?,
                    sig: hex_bytes("sig", &sig)?,
                })
            }
            ClientFrame::Tip { grant_id, payee, tip_id, amount: value, message, sig } => {
                Self::Tip(TipMsg {
                    grant_id: hash("grantId", &grant_id)?,
                    payee: address("payee", &payee)?,
                    tip_id: amount("tipId", &tip_id.0)?,
                    amount: amount("amount", &value)?,
                    message: message.into_bytes(),
                    sig: hex_bytes("sig", &sig)?,
                })
            }
            ClientFrame::Stop { session_id } => Self::Stop { session_id: uuid(&session_id)? },
            ClientFrame::YellowOpen { track_id, definition, session_data, create_sig, deposit } => {
                Self::YellowOpen(Box::new(YellowOpenMsg {
                    track_id: amount("trackId", &track_id.0)?,
                    definition,
                    session_data,
                    create_sig: quorum_sig("createSig", &create_sig)?,
                    deposit: deposit.update,
                    deposit_sig: quorum_sig("deposit.sig", &deposit.sig)?,
                    close_sig: quorum_sig("deposit.closeSig", &deposit.close_sig)?,
                    user_state: deposit.user_state,
                }))
            }
            ClientFrame::YellowUpdate { session_id, update, sig, close_sig } => {
                Self::YellowUpdate(Box::new(YellowUpdateMsg {
                    session_id: uuid(&session_id)?,
                    update,
                    sig: quorum_sig("sig", &sig)?,
                    close_sig: quorum_sig("closeSig", &close_sig)?,
                }))
            }
        })
    }
}

impl ServerFrame {
    /// `ready`.
    pub fn ready(grant_id: B256, available: U256) -> Self {
        Self::Ready { grant_id: grant_id.to_string(), available: available.to_string() }
    }

    /// `session`; `app_session_id` for a Yellow session.
    pub fn session(
        session_id: Uuid,
        track_id: U256,
        payee: Address,
        rate: U256,
        app_session_id: Option<B256>,
    ) -> Self {
        Self::Session {
            session_id: session_id.to_string(),
            track_id: track_id.to_string(),
            payee: payee.to_checksum(None),
            rate_per_second: rate.to_string(),
            app_session_id: app_session_id.map(|id| id.to_string()),
        }
    }

    /// `beat`.
    pub fn beat(session_id: Uuid, second: u32, owed: U256) -> Self {
        Self::Beat { session_id: session_id.to_string(), second, owed: owed.to_string() }
    }

    /// `ack`.
    pub fn ack(session_id: Uuid, cumulative: U256) -> Self {
        Self::Ack {
            session_id: session_id.to_string(),
            cumulative: cumulative.to_string(),
            keys: Vec::new(),
        }
    }

    /// `ack` with the keys of the chunks it paid for.
    pub fn ack_with_keys(session_id: Uuid, cumulative: U256, keys: Vec<ChunkKeyFrame>) -> Self {
        Self::Ack { session_id: session_id.to_string(), cumulative: cumulative.to_string(), keys }
    }

    /// `paused`.
    pub fn paused(session_id: Uuid, reason: &str) -> Self {
        Self::Paused { session_id: session_id.to_string(), reason: reason.into() }
    }

    /// `closed`.
    pub fn closed(session_id: Uuid, total: U256) -> Self {
        Self::Closed { session_id: session_id.to_string(), total: total.to_string() }
    }

    /// `tipAck`.
    pub fn tip_ack(grant_id: B256, tip_id: U256) -> Self {
        Self::TipAck { grant_id: grant_id.to_string(), tip_id: tip_id.to_string() }
    }

    /// `error` for `err`, with its stable code.
    pub fn error(err: &Error) -> Self {
        Self::Error { code: err.code().into(), message: err.to_string() }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

impl ClientFrame {
    /// A `hello` for `grant` and its signature.
    pub fn hello(grant: &SessionGrant, sig: &[u8]) -> Self {
        Self::Hello {
            grant: WireGrant {
                listener: grant.listener.to_checksum(None),
                session_key: grant.sessionKey.to_checksum(None),
                cap: grant.cap.to_string(),
                expires_at: U64(grant.expiresAt),
                nonce: U64(grant.nonce),
            },
            grant_sig: alloy::hex::encode_prefixed(sig),
        }
    }

    /// A `voucher`.
    pub fn voucher(grant_id: B256, payee: Address, cumulative: U256, sig: &[u8]) -> Self {
        Self::Voucher {
            grant_id: grant_id.to_string(),
            payee: payee.to_checksum(None),
            cumulative: cumulative.to_string(),
            sig: alloy::hex::encode_prefixed(sig),
        }
    }

    /// A `tip`.
    pub fn tip(
        grant_id: B256,
        payee: Address,
        tip_id: U256,
        amount: U256,
        message: &str,
        sig: &[u8],
    ) -> Self {
        Self::Tip {
            grant_id: grant_id.to_string(),
            payee: payee.to_checksum(None),
            tip_id: Uint(tip_id.to_string()),
            amount: amount.to_string(),
            message: message.to_owned(),
            sig: alloy::hex::encode_prefixed(sig),
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client frames always serialize")
    }
}

fn uuid(s: &str) -> Result<Uuid> {
    Uuid::try_parse(s).map_err(|_| Error::InvalidField("sessionId is not a UUID".into()))
}

/// A Yellow quorum signature: `0x` hex of a prefix byte and 65 bytes.
fn quorum_sig(field: &str, s: &str) -> Result<QuorumSig> {
    let bytes = hex_bytes(field, s)?;
    QuorumSig::from_bytes(&bytes).map_err(|e| match e {
        SigError::Prefix(_) => Error::InvalidSignature(
            "prefix byte is neither 0xa1 (wallet) nor 0xa2 (app session key)",
        ),
        SigError::Length | SigError::Recover => {
            Error::InvalidSignature("a quorum signature is a prefix byte and 65 bytes")
        }
    })
}

fn is_decimal(s: &str) -> bool {
    !s.is_empty() && s.len() <= 78 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal string of base units: digits only, at most 78 of them, fitting 256 bits.
fn amount(field: &str, s: &str) -> Result<U256> {
    if !is_decimal(s) {
        return Err(Error::InvalidField(format!("{field} must be a decimal string of base units")));
    }
    U256::from_str_radix(s, 10)
        .map_err(|_| Error::InvalidField(format!("{field} does not fit in 256 bits")))
}

fn strip_0x<'a>(field: &str, s: &'a str) -> Result<&'a str> {
    s.strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| Error::InvalidField(format!("{field} must be 0x-prefixed hex")))
}

fn address(field: &str, s: &str) -> Result<Address> {
    let mut out = [0u8; 20];
    alloy::hex::decode_to_slice(strip_0x(field, s)?, &mut out)
        .map_err(|_| Error::InvalidField(format!("{field} must be a 20-byte 0x hex address")))?;
    Ok(Address::from(out))
}

fn hash(field: &str, s: &str) -> Result<B256> {
    let mut out = [0u8; 32];
    alloy::hex::decode_to_slice(strip_0x(field, s)?, &mut out)
        .map_err(|_| Error::InvalidField(format!("{field} must be a 32-byte 0x hex hash")))?;
    Ok(B256::from(out))
}

fn hex_bytes(field: &str, s: &str) -> Result<Vec<u8>> {
    let hex = strip_0x(field, s)?;
    if hex.len() > 4096 {
        return Err(Error::InvalidField(format!("{field} is too long")));
    }
    alloy::hex::decode(hex).map_err(|_| Error::InvalidField(format!("{field} must be 0x hex")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(decode("{not json").unwrap_err().code(), "malformed_frame");
        assert_eq!(decode("[1,2]").unwrap_err().code(), "malformed_frame");
        assert_eq!(decode(r#"{"kind":"hello"}"#).unwrap_err().code(), "malformed_frame");
        assert_eq!(decode(r#"{"type":"dance"}"#).unwrap_err().code(), "unknown_type");
        assert_eq!(decode(r#"{"type":"play"}"#).unwrap_err().code(), "invalid_field");
        assert_eq!(
            decode(r#"{"type":"play","trackId":"-1"}"#).unwrap_err().code(),
            "invalid_field"
        );
        assert_eq!(
            decode(r#"{"type":"stop","sessionId":"x"}"#).unwrap_err().code(),
            "invalid_field"
        );
    }

    #[test]
    fn track_id_is_a_number_or_a_string() {
        let a = decode(r#"{"type":"play","trackId":7}"#).unwrap();
        let b = decode(r#"{"type":"play","trackId":"7"}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, ClientMessage::Play { track_id: U256::from(7), from: 0, beats: true });
    }

    #[test]
    fn server_frames_are_tagged_camel_case() {
        let id = Uuid::nil();
        let beat = ServerFrame::beat(id, 3, U256::from(300)).to_json();
        assert_eq!(
            beat,
            r#"{"type":"beat","sessionId":"00000000-0000-0000-0000-000000000000","second":3,"owed":"300"}"#
        );
        let ready = ServerFrame::ready(B256::ZERO, U256::from(5)).to_json();
        assert!(ready.starts_with(r#"{"type":"ready","grantId":"0x0000"#), "{ready}");
    }

    proptest! {
        #[test]
        fn vouchers_round_trip(gid in any::<[u8; 32]>(), payee in any::<[u8; 20]>(), cum in any::<[u8; 32]>(), sig in proptest::collection::vec(any::<u8>(), 0..80)) {
            let (gid, payee, cum) = (B256::from(gid), Address::from(payee), U256::from_be_bytes(cum));
            let text = ClientFrame::voucher(gid, payee, cum, &sig).to_json();
            let msg = decode(&text).unwrap();
            prop_assert_eq!(msg, ClientMessage::Voucher(VoucherMsg { grant_id: gid, payee, cumulative: cum, sig }));
        }

        #[test]
        fn hellos_round_trip(l in any::<[u8; 20]>(), k in any::<[u8; 20]>(), cap in any::<[u8; 32]>(), exp in any::<u64>(), nonce in any::<u64>()) {
            let grant = SessionGrant { listener: l.into(), sessionKey: k.into(), cap: U256::from_be_bytes(cap), expiresAt: exp, nonce };
            let text = ClientFrame::hello(&grant, &[1u8; 65]).to_json();
            prop_assert_eq!(decode(&text).unwrap(), ClientMessage::Hello { grant, grant_sig: vec![1u8; 65] });
        }
    }
}
