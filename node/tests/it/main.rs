//! Tests of the `beatstream` binary as a user runs it.

mod cli;
mod indexer_crash;
