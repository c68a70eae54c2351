//! Tests of the `beatstream` binary as a user runs it.

mod cli;
mod dev;
mod indexer_crash;
mod keeper_hang;
mod node_process;
mod ops;
mod pooler;
mod postgres_tls;
mod support;
