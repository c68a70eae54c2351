//! Indexer integration tests against anvil and Postgres.

mod faults;
mod harness;
mod mirror;
mod reorg;
