//! Indexer integration tests against anvil and Postgres.

mod harness;
mod mirror;
mod reorg;
