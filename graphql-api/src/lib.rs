//! GraphQL API for artist and listener dashboards: read-only queries over the indexer's mirror, the relay's voucher
//! book and the keeper's journal, as Relay connections with keyset cursors, and live subscriptions fed by Postgres
//! `LISTEN`/`NOTIFY`. `docs/schema.graphql` is the schema; `docs/API.md` explains it.
//!
//! [`service`] binds and serves (with `/health`, `/ready` and `/metrics`); [`schema`] holds the resolvers, which read
//! only through [`db`], the one module that speaks SQL; [`live`] fans Postgres notifications out to subscriptions;
//! [`metrics`] counts requests.

mod config;
mod db;
mod error;
mod live;
mod metrics;
mod schema;
mod service;
mod web;

pub use config::{
    Config, DEFAULT_CORS_ORIGINS, DEFAULT_DB_CONNECTIONS, DEFAULT_DEPLOYMENT, DEFAULT_LISTEN,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_COMPLEXITY, DEFAULT_MAX_DEPTH,
    DEFAULT_STATEMENT_TIMEOUT_MS, Options,
};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use schema::sdl;
pub use service::{Server, run};
pub use web::app_config;
