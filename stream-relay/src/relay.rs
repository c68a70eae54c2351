//! The state every connection shares: limits, the verifier, storage, the writers and the metrics.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::{
    Options, db::store::Store, metrics::Metrics, verify::Verifier, writer::Writers, yellow::Yellow,
};

/// Per-connection limits and protocol timing, from [`Options`].
#[derive(Clone, Debug)]
pub struct Limits {
    /// One beat.
    pub beat: Duration,
    /// Beats vouchers may fall behind before a session pauses.
    pub grace_beats: u32,
    /// Largest text frame answered with an error.
    pub max_frame_bytes: usize,
    /// Frames per second per connection.
    pub max_frames_per_sec: u32,
    /// Rejected frames per ten seconds before the connection is closed.
    pub max_errors: u32,
    /// Closes a connection that sends nothing for this long.
    pub idle_timeout: Duration,
    /// Sessions per connection.
    pub max_sessions: usize,
    /// How long a closing connection waits for its last commits.
    pub shutdown_wait: Duration,
}

impl From<&Options> for Limits {
    fn from(c: &Options) -> Self {
        Self {
            beat: c.beat(),
            grace_beats: c.grace_beats,
            max_frame_bytes: c.max_frame_bytes,
            max_frames_per_sec: c.max_frames_per_sec,
            max_errors: c.max_errors,
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_sessions: c.max_sessions,
            shutdown_wait: Duration::from_secs(c.shutdown_secs),
        }
    }
}

/// Everything a connection needs, shared by all of them. Knows nothing of the transport.
#[derive(Debug)]
pub struct Relay {
    /// Limits and timing.
    pub limits: Limits,
    /// Signature checks under the vault's domain.
    pub verifier: Verifier,
    /// Reads.
    pub store: Store,
    /// Group-commit writers.
    pub writers: Writers,
    /// Metrics.
    pub metrics: Metrics,
    /// This instance's name in session records.
    pub relay_id: String,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// The Yellow Network transport, when configured.
    pub yellow: Option<Arc<Yellow>>,
    /// The node's audio key, which opens tracks' secrets to release chunk keys; `None` when not configured.
    pub audio_key: Option<beatstream_audio::NodeKey>,
}
