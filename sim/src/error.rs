//! The error type of the simulator.

/// Everything that can stop a simulation or a simulated player.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid; the message says what to change.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Postgres failed (seeding fixtures, sampling backends).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Connecting to Postgres, migrating or reading the deployment file failed.
    #[error(transparent)]
    Primitives(#[from] beatstream_primitives::Error),
    /// The load generator failed (starting workers or relays, probing, collecting reports).
    #[error("simulation failed: {0}")]
    Simulate(String),
    /// The relay's socket failed or could not be opened.
    #[error("relay connection failed: {0}")]
    Connection(String),
    /// The relay answered with an `error` frame.
    #[error("relay error {code}: {message}")]
    Relay {
        /// The frame's stable code.
        code: String,
        /// The frame's message.
        message: String,
    },
    /// The relay sent something the player did not expect (a frame that does not parse, a close, or nothing in
    /// time).
    #[error("unexpected from the relay: {0}")]
    Unexpected(String),
    /// A track's audio could not be fetched or did not check out (manifest, chunk, key).
    #[error("audio: {0}")]
    Audio(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
