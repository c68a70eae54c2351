//! Test support for the BeatStream crates: everything of `beatstream-devkit` (a fresh, migrated Postgres
//! database per test ([`TestDb`]), a private anvil per test ([`Anvil`]), the real deploy script), plus what only
//! tests need: [`scene`], a deployed chain with funded listeners, artists and players, and [`mirror`], comparing
//! what two indexers wrote, and [`outage`]: Postgres refusing a test's database for a while.
//!
//! Use it as a dev-dependency only; the shipped binary depends on `beatstream-devkit` alone.

pub mod mirror;
pub mod outage;
pub mod scene;

pub use beatstream_devkit::{
    Anvil, Error, Result, TestDb, anvil_path, deploy, deploy_to, foundry_tool, workspace_root,
};
