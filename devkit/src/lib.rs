//! What `beatstream dev` and the tests share: a private anvil from the npm-pinned Foundry toolchain ([`Anvil`]),
//! the contracts deployed with the real deploy script ([`deploy`], [`deploy_to`]) and a fresh, migrated Postgres
//! database dropped when it goes ([`TestDb`]).
//!
//! The one tool crate the shipped binary depends on; scenes and mirror comparisons for tests live in
//! `beatstream-testkit`, which re-exports all of this. Postgres comes from `DATABASE_URL`, else a server on
//! `127.0.0.1:5432`, else a throwaway cluster this crate starts with `initdb`/`pg_ctl`.

mod anvil;
mod cleanup;
mod cluster;
mod deploy;
mod error;
mod server;
mod test_db;

pub use anvil::{Anvil, anvil_path, foundry_tool, workspace_root};
pub use cluster::PgTools;
pub use deploy::{deploy, deploy_to};
pub use error::{Error, Result};
pub use test_db::TestDb;
