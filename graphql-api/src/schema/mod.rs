//! The GraphQL schema: read-only queries, Relay connections, subscriptions.

mod list;
mod loaders;
mod query;
mod subscription;
mod types;

use async_graphql::{EmptyMutation, Schema, dataloader::DataLoader};
use sqlx::PgPool;

use crate::live::Hub;

/// The schema type.
pub(crate) type ApiSchema = Schema<query::QueryRoot, EmptyMutation, subscription::SubscriptionRoot>;

/// What resolvers read from.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) pool: PgPool,
    pub(crate) chain_id: i64,
    pub(crate) loader: std::sync::Arc<DataLoader<loaders::Db>>,
    pub(crate) hub: Hub,
    /// Cancelled at shutdown: subscriptions end.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

impl Api {
    pub(crate) fn new(
        pool: PgPool,
        chain_id: i64,
        hub: Hub,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        let db = loaders::Db { pool: pool.clone(), chain_id, pending: Default::default() };
        let loader = std::sync::Arc::new(DataLoader::new(db, tokio::spawn));
        Self { pool, chain_id, loader, hub, shutdown }
    }
}

/// Builds the schema with its limits.
pub(crate) fn build(api: Api, max_depth: usize, max_complexity: usize) -> ApiSchema {
    Schema::build(query::QueryRoot, EmptyMutation, subscription::SubscriptionRoot)
        .data(api)
        .limit_depth(max_depth)
        .limit_complexity(max_complexity)
        .finish()
}

/// The schema in SDL, as `docs/schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(query::QueryRoot, EmptyMutation, subscription::SubscriptionRoot).finish().sdl()
}
