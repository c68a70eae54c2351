//! The error type of this crate, and the node's error answers classified.

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The node answered with an error.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// No answer within the request timeout (the request may or may not have reached the node).
    #[error("{method}: no answer from the node in time")]
    Timeout {
        /// The method.
        method: String,
    },
    /// The connection dropped before the answer (the request may or may not have reached the node).
    #[error("connection to the node dropped")]
    Disconnected,
    /// The client was shut down.
    #[error("client closed")]
    Closed,
    /// The request could not be encoded.
    #[error("request does not encode: {0}")]
    Encode(String),
    /// The answer is not what the method returns.
    #[error("{method}: unexpected answer: {detail}")]
    Decode {
        /// The method.
        method: String,
        /// What did not fit.
        detail: String,
    },
}

impl Error {
    /// Whether the request certainly did not take effect (the node refused it).
    pub const fn is_refusal(&self) -> bool {
        matches!(self, Self::Node(_))
    }
}

/// An error answer from the node: the method and the node's message, classified where the message is known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{method}: node error: {message}")]
pub struct NodeError {
    /// The method that failed.
    pub method: String,
    /// The node's text.
    pub message: String,
}

/// Broad classes of node errors, from the message text (the node sends text only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeErrorKind {
    /// The update's version is not the current one plus one.
    Version,
    /// Signatures do not reach the quorum, or one does not verify.
    Signature,
    /// Allocations break a rule (conservation, negative, unknown participant or asset).
    Allocation,
    /// The session or wallet is unknown, or the session is closed.
    NotFound,
    /// Not enough funds.
    Funds,
    /// Anything else.
    Other,
}

impl NodeError {
    /// An error for `method` with the node's `message`.
    pub fn new(method: impl Into<String>, message: impl Into<String>) -> Self {
        Self { method: method.into(), message: message.into() }
    }

    /// What kind of refusal this is, guessed from the message.
    pub fn kind(&self) -> NodeErrorKind {
        let m = self.message.to_ascii_lowercase();
        if m.contains("version") {
            NodeErrorKind::Version
        } else if m.contains("quorum")
            || m.contains("signature")
            || m.contains("signer")
            || m.contains("recover")
        {
            NodeErrorKind::Signature
        } else if m.contains("allocation") || m.contains("conserv") || m.contains("amount") {
            NodeErrorKind::Allocation
        } else if m.contains("not found") || m.contains("closed") || m.contains("unknown") {
            NodeErrorKind::NotFound
        } else if m.contains("insufficient") || m.contains("balance") {
            NodeErrorKind::Funds
        } else {
            NodeErrorKind::Other
        }
    }
}
