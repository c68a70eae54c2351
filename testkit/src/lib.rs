//! Test support for the BeatStream crates: a fresh, migrated Postgres database per test
//! ([`TestDb`]) and a private anvil per test ([`Anvil`]).
//!
//! Use it as a dev-dependency only. Postgres comes from `DATABASE_URL`, else a server on
//! `127.0.0.1:5432`, else a throwaway cluster this crate starts with `initdb`/`pg_ctl`.

mod anvil;
mod cleanup;
mod cluster;
mod deploy;
mod error;
pub mod mirror;
pub mod scene;
mod server;
mod test_db;

pub use anvil::{Anvil, anvil_path, foundry_tool, workspace_root};
pub use deploy::{deploy, deploy_to};
pub use error::{Error, Result};
pub use test_db::TestDb;
