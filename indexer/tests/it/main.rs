//! Indexer integration tests against anvil and Postgres.

mod faults;
mod harness;
mod health;
mod mirror;
mod names;
mod reorg;
mod reorg_names;
mod revocations;
mod rpc;
mod spans;
mod splits;
