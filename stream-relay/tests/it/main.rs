//! Stream relay tests, driven through a real WebSocket against a real Postgres.

pub(crate) mod audio;
mod conn;
pub(crate) mod durability;
mod erc1271;
mod errors;
mod guard;
mod harness;
mod health;
mod limits;
mod protocol;
mod restart;
mod revocation;
mod tips;
mod yellow;
