//! Everything the studio keeps in Postgres (migrations `0012_studio.sql` and `0013_audio.sql`), and the only module that speaks SQL.
//!
//! - [`nonces`]: one-time sign-in nonces, issued, looked at, and used up in the statement that checks them.
//! - [`sessions`]: bearer sessions, stored as the SHA-256 of their token.
//! - [`tracks`]: uploaded tracks, their sealed secrets and manifests.
//! - [`pool`]: the connection pool ([`Db`]) and the conversion of database errors.
//!
//! This root only declares and re-exports: the files import one another, never the root.

mod nonces;
mod pool;
mod sessions;
mod tracks;

pub(crate) use pool::Db;
pub(crate) use sessions::NewSession;
pub(crate) use tracks::NewTrack;
