//! Keeper tests on anvil with the real contracts, the real indexer and a real Postgres.

mod batching;
mod failover;
mod faults;
mod harness;
mod http;
mod kms;
mod lease;
mod reorg;
mod rpc;
mod settler;
mod stuck;
mod tips;
mod wallet;
