//! The error type of this crate, and the one place where an error becomes what a client sees: a stable code, an
//! HTTP status and `{"error": {"code", "message"}}` (`docs/STUDIO.md` lists them).

use alloy::primitives::Address;
use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

/// Everything that can stop the studio or refuse one of its requests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or makes no sense; the message says which flag to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The deployment file could not be read.
    #[error(transparent)]
    Deployment(beatstream_primitives::Error),
    /// A Postgres query failed, or Postgres could not be reached or migrated (only `db/` produces it).
    #[error("database: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The operating system's random generator failed.
    #[error("the system's random generator failed: {0}")]
    Random(String),
    /// A JSON-RPC request failed or timed out.
    #[error("rpc: {0}")]
    Rpc(String),
    /// The RPC endpoint serves another chain than the deployment file.
    #[error("the RPC endpoint is chain {actual}, the deployment is for chain {expected}")]
    WrongChain {
        /// Chain id of the deployment.
        expected: u64,
        /// Chain id the endpoint reports.
        actual: u64,
    },
    /// The request is not what the endpoint takes (not JSON, a field missing, a parameter missing).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the studio reads.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The sign-in message does not follow EIP-4361's ABNF; the message names the first thing wrong.
    #[error("not an EIP-4361 message: {0}")]
    Malformed(String),
    /// The message was made for another domain than this node's `--studio-domain`.
    #[error("the message is for domain {found:?}; this node signs in {expected:?}")]
    Domain {
        /// This node's domain.
        expected: String,
        /// The message's.
        found: String,
    },
    /// The message names another chain than the deployment's.
    #[error("the message is for chain {found}; this node's contracts are on chain {expected}")]
    Chain {
        /// The deployment's chain id.
        expected: u64,
        /// The message's.
        found: u64,
    },
    /// The nonce was never issued here, was used already, or expired.
    #[error(
        "unknown nonce: never issued by this node, already used, or expired; ask for a new one"
    )]
    Nonce,
    /// The message's Expiration Time has passed.
    #[error("the message's Expiration Time has passed")]
    Expired,
    /// The message's Not Before time has not come yet.
    #[error("the message's Not Before time has not come yet")]
    NotYetValid,
    /// The signature is not the address's: neither its key's EIP-191 signature nor accepted by its ERC-1271 wallet.
    #[error("the signature is not {address}'s: {why}")]
    Signature {
        /// The message's address.
        address: Address,
        /// What was tried.
        why: &'static str,
    },
    /// No bearer token, or one that is unknown or expired.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The label cannot be an artist name (3 to 63 of a-z, 0-9 and '-').
    #[error("{0:?} is not an artist name: 3 to 63 characters, each a-z, 0-9 or '-'")]
    InvalidLabel(String),
    /// The signed-in address does not manage `<label>.beatstream.eth` (or no artist has that name).
    #[error("{address} does not manage {label}.beatstream.eth{}", if *.registered { "" } else { ": no artist has that name" })]
    NotManager {
        /// The artist name.
        label: String,
        /// The signed-in address.
        address: Address,
        /// Whether an artist has the name.
        registered: bool,
    },
    /// The node's own failure that is none of the above (a temporary file, a task); the message says what.
    #[error("{0}")]
    Internal(String),
    /// The object store failed or could not be reached (only `storage.rs` produces it).
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The upload was refused by the audio crate (empty, unsupported, corrupt, too long, too large), or reading it
    /// back failed.
    #[error(transparent)]
    Audio(beatstream_audio::Error),
    /// The node was started without an audio key, so it cannot seal a track's secret.
    #[error(
        "this node takes no uploads: it was started without an audio key (--audio-key-file or --audio-key)"
    )]
    AudioKeyMissing,
    /// No uploaded track has this root (as given in the request).
    #[error("no track {0:?} is stored here")]
    UnknownTrack(String),
    /// The track has no chunk at this index, or no chunk has this hash.
    #[error("{0}")]
    UnknownChunk(String),
    /// A `Range` request none of whose bytes exist.
    #[error("the range is outside the {size} bytes of the object")]
    RangeNotSatisfiable {
        /// The object's size.
        size: u64,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable code a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_)
            | Self::Deployment(_)
            | Self::Database(_)
            | Self::Random(_)
            | Self::Internal(_)
            | Self::WrongChain { .. } => "internal",
            Self::Rpc(_) => "chain_unavailable",
            Self::BadRequest(_) => "bad_request",
            Self::TooLarge(_) => "body_too_large",
            Self::Malformed(_) => "siwe_malformed",
            Self::Domain { .. } => "siwe_domain",
            Self::Chain { .. } => "siwe_chain",
            Self::Nonce => "siwe_nonce",
            Self::Expired => "siwe_expired",
            Self::NotYetValid => "siwe_not_yet_valid",
            Self::Signature { .. } => "siwe_signature",
            Self::Unauthorized(_) => "unauthorized",
            Self::InvalidLabel(_) => "invalid_label",
            Self::NotManager { .. } => "not_manager",
            Self::Storage(_) => "storage_unavailable",
            Self::Audio(e) => match e {
                beatstream_audio::Error::Io(_)
                | beatstream_audio::Error::Decrypt
                | beatstream_audio::Error::Manifest(_) => "internal",
                _ => e.code(),
            },
            Self::AudioKeyMissing => "audio_key_missing",
            Self::UnknownTrack(_) => "unknown_track",
            Self::UnknownChunk(_) => "unknown_chunk",
            Self::RangeNotSatisfiable { .. } => "range_not_satisfiable",
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Config(_)
            | Self::Deployment(_)
            | Self::Database(_)
            | Self::Random(_)
            | Self::Internal(_)
            | Self::WrongChain { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Rpc(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest(_) | Self::Malformed(_) | Self::InvalidLabel(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Domain { .. }
            | Self::Chain { .. }
            | Self::Nonce
            | Self::Expired
            | Self::NotYetValid
            | Self::Signature { .. }
            | Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotManager { .. } => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Storage(_) | Self::AudioKeyMissing => StatusCode::SERVICE_UNAVAILABLE,
            Self::Audio(e) => match e {
                beatstream_audio::Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                beatstream_audio::Error::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                beatstream_audio::Error::Empty
                | beatstream_audio::Error::Corrupt(_)
                | beatstream_audio::Error::TooLong { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                beatstream_audio::Error::Io(_)
                | beatstream_audio::Error::Decrypt
                | beatstream_audio::Error::Manifest(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::UnknownTrack(_) | Self::UnknownChunk(_) => StatusCode::NOT_FOUND,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }

    /// The message a client sees: the error itself, except for the node's own failures, whose details stay in the
    /// log.
    fn client_message(&self) -> String {
        match self.code() {
            "internal" => "internal error".to_owned(),
            "chain_unavailable" => "the chain could not be reached; try again".to_owned(),
            "storage_unavailable" => "the audio store could not be reached; try again".to_owned(),
            _ => self.to_string(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(target: "beatstream::studio", code = self.code(), error = %self, "request failed");
        } else {
            tracing::debug!(target: "beatstream::studio", code = self.code(), error = %self, "request refused");
        }
        let body = serde_json::json!({ "error": { "code": self.code(), "message": self.client_message() } });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED && matches!(self, Self::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if let Self::RangeNotSatisfiable { size } = self {
            let value = header::HeaderValue::from_str(&format!("bytes */{size}"))
                .expect("a number is a header value");
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_stay_in_the_log() {
        let e = Error::Database("password authentication failed for user x".into());
        assert_eq!((e.code(), e.status()), ("internal", StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(e.client_message(), "internal error");
        let e =
            Error::NotManager { label: "aurora".into(), address: Address::ZERO, registered: false };
        assert_eq!((e.code(), e.status()), ("not_manager", StatusCode::FORBIDDEN));
        assert!(
            e.client_message().ends_with("aurora.beatstream.eth: no artist has that name"),
            "{e}"
        );
    }

    #[test]
    fn audio_refusals_keep_the_audio_crates_codes() {
        use beatstream_audio::Error as Audio;
        for (e, code, status) in [
            (Audio::Empty, "audio_empty", 422),
            (Audio::Unsupported("text".into()), "audio_unsupported", 415),
            (Audio::Corrupt("bad frame".into()), "audio_corrupt", 422),
            (Audio::TooLong { max_ms: 1000 }, "audio_too_long", 422),
            (Audio::TooLarge { max_bytes: 10 }, "audio_too_large", 413),
            (Audio::Io(std::io::ErrorKind::NotFound.into()), "internal", 500),
        ] {
            let e = Error::Audio(e);
            assert_eq!((e.code(), e.status().as_u16()), (code, status), "{e}");
        }
        let e = Error::Storage("connection refused to s3.internal:9000".into());
        assert_eq!(
            (e.code(), e.client_message().as_str()),
            ("storage_unavailable", "the audio store could not be reached; try again")
        );
        let response = Error::RangeNotSatisfiable { size: 42 }.into_response();
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */42");
    }
}
