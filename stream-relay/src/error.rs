//! The error type of this crate, and the one place where errors become the stable codes clients see.

use std::net::SocketAddr;

/// Everything that can go wrong in the stream relay: start-up and storage failures, and every rejection a client
/// can receive. [`Error::code`] maps each variant to the stable snake_case code of the `error` frame.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ----- Client errors: one per `error` frame code. -----
    /// The frame is not a JSON object with a string `type`.
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    /// The frame's `type` is not a message kind of the protocol.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// A field is missing or does not parse (address, amount, hex, id).
    #[error("invalid field: {0}")]
    InvalidField(String),
    /// The frame is longer than the per-frame limit.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// Size of the frame.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The connection sent more frames per second than it may.
    #[error("too many frames: at most {0} per second")]
    RateLimited(u32),
    /// `play`, `voucher` or `stop` before a `hello` was accepted.
    #[error("send hello with a grant first")]
    HelloRequired,
    /// A second `hello` on a connection that already has a grant.
    #[error("this connection already has a grant")]
    DuplicateHello,
    /// The grant itself is unusable (zero listener or session key, zero cap).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// The grant signature is neither the listener's EOA signature nor accepted by its ERC-1271 contract.
    #[error("grant signature is not the listener's for this chain and vault")]
    BadGrantSignature,
    /// The grant's `expiresAt` has passed.
    #[error("grant expired at {0}")]
    GrantExpired(u64),
    /// The listener revoked the grant, by id or by raising its nonce floor above the grant's nonce, as the indexer
    /// mirrors the vault; the message says which.
    #[error("grant revoked: {0}")]
    GrantRevoked(String),
    /// The listener's vault funds do not cover what is already owed plus this voucher.
    #[error("insufficient funds: {available} available, {needed} needed")]
    InsufficientFunds {
        /// Funds not yet owed under any voucher.
        available: String,
        /// What the rejected voucher would add.
        needed: String,
    },
    /// `play` of a track that is not published, or whose artist has no payee address.
    #[error("unknown or unpublished track {0}")]
    UnknownTrack(String),
    /// The track's audio stored on this node does not match what is published on-chain (root or length).
    #[error("the track's stored audio does not match the chain: {0}")]
    AudioMismatch(String),
    /// The track has audio on this node, but this relay cannot open its keys (no or another `--audio-key`).
    #[error(
        "this relay cannot release the track's chunk keys (its audio key is missing or not the studio's)"
    )]
    AudioUnavailable,
    /// `stop` or `voucher` for a session or payee this connection does not have.
    #[error("unknown session: {0}")]
    UnknownSession(String),
    /// A voucher under another grant than the connection's.
    #[error("voucher grant {0} is not this connection's grant")]
    WrongGrant(String),
    /// The voucher signature is not 65 bytes of `r ‖ s ‖ v` with `v` 27 or 28, or no key recovers from it.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// The signature's `s` is in the upper half of the curve order: the malleable twin of a valid signature.
    #[error("malleable signature: s is in the upper half of the curve order")]
    MalleableSignature,
    /// The voucher was not signed by the grant's session key for this chain and vault.
    #[error("voucher is not signed by the session key for this chain and vault")]
    WrongSigner,
    /// The voucher's cumulative is not above the newest one stored for its (grant, payee).
    #[error("stale voucher: cumulative {got} is not above {stored}")]
    StaleVoucher {
        /// The newest stored (or settled) cumulative of the pair.
        stored: String,
        /// The voucher's cumulative.
        got: String,
    },
    /// The voucher's cumulative is more than what is owed plus one beat.
    #[error("voucher cumulative {got} exceeds what is owed plus one beat ({limit})")]
    ExceedsOwed {
        /// The largest cumulative accepted now.
        limit: String,
        /// The voucher's cumulative.
        got: String,
    },
    /// The vouchers of the grant would add up to more than its cap.
    #[error("grant cap {cap} exceeded: vouchers would total {total}")]
    CapExceeded {
        /// The grant's cap (clamped as the vault clamps it).
        cap: String,
        /// What the grant's vouchers would add up to.
        total: String,
    },
    /// A tip message longer than the vault settles.
    #[error("tip message of {0} bytes exceeds the limit of 280")]
    MessageTooLong(usize),
    /// A different tip is stored under the same (grant, tip id).
    #[error("another tip is stored under tip id {0} of this grant")]
    DuplicateTip(String),
    /// A tip to an address that is neither an artist's address nor the payee of a split in force.
    #[error("{0} is not an artist's payee")]
    UnknownPayee(String),
    /// The connection already holds the most sessions it may.
    #[error("at most {0} sessions per connection")]
    TooManySessions(usize),
    /// The chain could not be asked (ERC-1271 check); the client may retry.
    #[error("chain unavailable: {0}")]
    ChainUnavailable(String),
    /// The relay could not store or read what it needed (or is shutting down); nothing changed, the client may
    /// retry.
    #[error("relay storage unavailable")]
    StorageUnavailable,
    /// A Yellow frame reached a relay without the Yellow transport configured.
    #[error("this relay does not accept Yellow Network payments")]
    YellowDisabled,
    /// The app session's definition or an update's session, intent or asset is not what the relay accepts.
    #[error("invalid app session: {0}")]
    InvalidAppSession(String),
    /// A Yellow update's version is not exactly the current one plus one.
    #[error("wrong version: expected {expected}, got {got}")]
    WrongVersion {
        /// Current version plus one.
        expected: u64,
        /// The update's version.
        got: u64,
    },
    /// A Yellow update's allocations do not conserve the session's funds, or change what they may not.
    #[error("allocation mismatch: {0}")]
    AllocationMismatch(String),
    /// A Yellow update pays the artist an amount that is not what some released second owes.
    #[error("amount {got} is not what a released second owes (next owed {owed})")]
    WrongAmount {
        /// The payee's allocation in the update, in base units.
        got: String,
        /// What is owed now, in base units.
        owed: String,
    },
    /// The nitronode refused the request; its message is passed on.
    #[error("node refused: {0}")]
    NodeRefused(String),
    /// The nitronode could not be reached in time; nothing changed, the client may retry.
    #[error("node unavailable: {0}")]
    NodeUnavailable(String),

    // ----- Operator errors: stop the relay, never sent to a client. -----
    /// A setting is invalid; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The Yellow operator's key could not be chosen or loaded (the message never contains the key).
    #[error("yellow operator signer: {0}")]
    OperatorKey(#[source] beatstream_signer::Error),
    /// Postgres failed.
    #[error("database error: {0}")]
    Database(#[from] crate::db::DbError),
    /// Connecting, migrating or reading the deployment file failed.
    #[error(transparent)]
    Primitives(#[from] beatstream_primitives::Error),
    /// The JSON-RPC endpoint failed at start-up.
    #[error("rpc error: {0}")]
    Rpc(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// Serving HTTP failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// A writer thread panicked: the relay stops, with the panic's message.
    #[error("writer {shard} panicked: {cause}")]
    WriterPanicked {
        /// The writer's shard.
        shard: usize,
        /// The panic's message.
        cause: String,
    },
    /// A value read from Postgres is not what the schema promises.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The stable snake_case code of the `error` frame this error becomes. Clients match on these; never rename one.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MalformedFrame(_) => "malformed_frame",
            Self::UnknownType(_) => "unknown_type",
            Self::InvalidField(_) => "invalid_field",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::HelloRequired => "hello_required",
            Self::DuplicateHello => "duplicate_hello",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::BadGrantSignature => "bad_grant_signature",
            Self::GrantExpired(_) => "grant_expired",
            Self::GrantRevoked(_) => "grant_revoked",
            Self::InsufficientFunds { .. } => "insufficient_funds",
            Self::UnknownTrack(_) => "unknown_track",
            Self::AudioMismatch(_) => "audio_mismatch",
            Self::AudioUnavailable => "audio_unavailable",
            Self::UnknownSession(_) => "unknown_session",
            Self::WrongGrant(_) => "wrong_grant",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::MalleableSignature => "malleable_signature",
            Self::WrongSigner => "wrong_signer",
            Self::StaleVoucher { .. } => "stale_voucher",
            Self::ExceedsOwed { .. } => "exceeds_owed",
            Self::CapExceeded { .. } => "cap_exceeded",
            Self::MessageTooLong(_) => "message_too_long",
            Self::DuplicateTip(_) => "duplicate_tip",
            Self::UnknownPayee(_) => "unknown_payee",
            Self::TooManySessions(_) => "too_many_sessions",
            Self::ChainUnavailable(_) => "chain_unavailable",
            Self::StorageUnavailable => "storage_unavailable",
            Self::YellowDisabled => "yellow_disabled",
            Self::InvalidAppSession(_) => "invalid_app_session",
            Self::WrongVersion { .. } => "wrong_version",
            Self::AllocationMismatch(_) => "allocation_mismatch",
            Self::WrongAmount { .. } => "wrong_amount",
            Self::NodeRefused(_) => "node_refused",
            Self::NodeUnavailable(_) => "node_unavailable",
            Self::Config(_)
            | Self::OperatorKey(_)
            | Self::Database(_)
            | Self::Primitives(_)
            | Self::Rpc(_)
            | Self::Bind { .. }
            | Self::Serve(_)
            | Self::WriterPanicked { .. }
            | Self::Corrupt(_) => "internal",
        }
    }

    /// Whether this error is the client's fault and counts towards closing an abusive connection.
    pub const fn is_abuse(&self) -> bool {
        !matches!(
            self,
            Self::ChainUnavailable(_)
                | Self::StorageUnavailable
                | Self::NodeUnavailable(_)
                | Self::NodeRefused(_)
                | Self::InsufficientFunds { .. }
                | Self::DuplicateTip(_)
                | Self::GrantRevoked(_)
                | Self::AudioMismatch(_)
                | Self::AudioUnavailable
                | Self::Config(_)
                | Self::OperatorKey(_)
                | Self::Database(_)
                | Self::Primitives(_)
                | Self::Rpc(_)
                | Self::Bind { .. }
                | Self::Serve(_)
                | Self::WriterPanicked { .. }
                | Self::Corrupt(_)
        )
    }
}

/// Every code a client can receive, in the order of `docs/PROTOCOL.md`'s table (a test keeps the two in step).
pub const CLIENT_CODES: &[&str] = &[
    "malformed_frame",
    "unknown_type",
    "invalid_field",
    "frame_too_large",
    "rate_limited",
    "hello_required",
    "duplicate_hello",
    "invalid_grant",
    "bad_grant_signature",
    "grant_expired",
    "grant_revoked",
    "insufficient_funds",
    "unknown_track",
    "audio_mismatch",
    "audio_unavailable",
    "unknown_session",
    "wrong_grant",
    "invalid_signature",
    "malleable_signature",
    "wrong_signer",
    "stale_voucher",
    "exceeds_owed",
    "cap_exceeded",
    "message_too_long",
    "duplicate_tip",
    "unknown_payee",
    "too_many_sessions",
    "chain_unavailable",
    "storage_unavailable",
    "yellow_disabled",
    "invalid_app_session",
    "wrong_version",
    "allocation_mismatch",
    "wrong_amount",
    "node_refused",
    "node_unavailable",
];
