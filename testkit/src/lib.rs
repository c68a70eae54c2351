//! Test support for the BeatStream crates: everything of `beatstream-devkit` (a fresh, migrated Postgres
//! database per test ([`TestDb`]), a private anvil per test ([`Anvil`]), the real deploy script), plus what only
//! tests need: [`scene`], a deployed chain with funded listeners, artists and players, and [`mirror`], comparing
//! what two indexers wrote, and [`postgres`]: a private cluster with TLS, a streaming
//! replica of it, PgBouncer in front. [`kms`] runs a local KMS-compatible server (moto, with its DIGEST signing
//! corrected) for keys held in AWS KMS. [`rpc_proxy`] puts TLS, rate limits, outages and missing methods between
//! a service and its anvil. [`outage`] makes Postgres refuse a test's database for a while.
//!
//! Use it as a dev-dependency only; the shipped binary depends on `beatstream-devkit` alone.

pub mod kms;
pub mod mirror;
pub mod outage;
pub mod postgres;
pub mod rpc_proxy;
pub mod scene;

pub use beatstream_devkit::{
    Anvil, Error, PgTools, Result, TestDb, anvil_path, deploy, deploy_to, foundry_tool,
    workspace_root,
};
