//! The GraphQL schema: read-only queries, Relay connections, subscriptions. Resolvers read through [`crate::db`]
//! and turn its rows into the objects of [`types`]; their errors get their codes in [`error`].

mod api;
mod connection;
mod error;
mod query;
mod request;
mod subscription;
mod types;

use async_graphql::{EmptyMutation, Schema};

pub(crate) use api::Api;

/// The schema type.
pub(crate) type ApiSchema = Schema<query::QueryRoot, EmptyMutation, subscription::SubscriptionRoot>;

/// Builds the schema with its limits, recording requests into `metrics`.
pub(crate) fn build(
    api: Api,
    metrics: crate::Metrics,
    max_depth: usize,
    max_complexity: usize,
) -> ApiSchema {
    Schema::build(query::QueryRoot, EmptyMutation, subscription::SubscriptionRoot)
        .data(api)
        .extension(request::Traced { metrics })
        .limit_depth(max_depth)
        .limit_complexity(max_complexity)
        .finish()
}

/// The schema in SDL, as `docs/schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(query::QueryRoot, EmptyMutation, subscription::SubscriptionRoot).finish().sdl()
}

#[cfg(test)]
mod tests {
    /// `docs/schema.graphql` must be what the code serves. `make schema` rewrites it.
    #[test]
    fn schema_file_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema.graphql");
        let sdl = super::sdl();
        if std::env::var_os("BEATSTREAM_UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &sdl).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(on_disk == sdl, "docs/schema.graphql is stale: run `make schema` and commit it");
    }
}
