//! The API service: binds, serves `/graphql` (queries and GraphiQL), `/graphql/ws` (subscriptions) and `/health`,
//! and stops at shutdown.

use std::{net::SocketAddr, time::Duration};

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Router,
    extract::{DefaultBodyLimit, State, WebSocketUpgrade},
    http::{HeaderValue, Method},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use beatstream_primitives::Deployment;
use tokio_util::sync::CancellationToken;
use tower_http::{
    cors::{AllowOrigin, Any, CorsLayer},
    limit::RequestBodyLimitLayer,
};
use tracing::info;

use crate::{Config, Error, Options, Result, db, live, schema, schema::ApiSchema};

/// Runs the API until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    Server::bind(config, shutdown).await?.serve().await
}

/// An API that is bound and ready to serve; [`Server::local_addr`] tells where (useful with port 0).
pub struct Server {
    listener: tokio::net::TcpListener,
    schema: ApiSchema,
    options: Options,
    shutdown: CancellationToken,
}

impl Server {
    /// Validates the settings, connects to Postgres (every query under the statement timeout), migrates, starts
    /// listening for changes and binds the listen address.
    pub async fn bind(config: Config, shutdown: CancellationToken) -> Result<Self> {
        let Config { database_url, options, .. } = config;
        options.validate()?;
        let chain_id = match options.chain_id {
            Some(id) => id,
            None => Deployment::load(&options.deployment)?.chain_id,
        };
        let db = db::Db::connect(
            &database_url,
            chain_id as i64,
            options.statement_timeout_ms,
            options.db_connections,
        )
        .await?;
        let hub = live::Hub::spawn(db.clone(), shutdown.clone());
        let api = schema::Api::new(db, hub, shutdown.clone());
        let schema = schema::build(api, options.max_depth, options.max_complexity);
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind { addr: options.listen, source })?;
        Ok(Self { listener, schema, options, shutdown })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until the shutdown token is cancelled.
    pub async fn serve(self) -> Result<()> {
        let addr = self.listener.local_addr()?;
        info!(target: "beatstream::api", graphiql = %format_args!("http://{addr}/graphql"), subscriptions = %format_args!("ws://{addr}/graphql/ws"), "api listening");
        let app = router(self.schema, &self.options);
        let server = axum::serve(self.listener, app)
            .with_graceful_shutdown(self.shutdown.clone().cancelled_owned());
        // Subscriptions end at shutdown; a client that keeps its socket open anyway gets five seconds.
        let shutdown = self.shutdown.clone();
        tokio::select! {
            served = server => served?,
            _ = async move {
                shutdown.cancelled().await;
                tokio::time::sleep(Duration::from_secs(5)).await;
            } => tracing::warn!(target: "beatstream::api", "connections still open 5 s after shutdown; closing"),
        }
        info!(target: "beatstream::api", "api stopped");
        Ok(())
    }
}

fn router(schema: ApiSchema, options: &Options) -> Router {
    let cors = if options.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::new().allow_origin(Any)
    } else {
        let origins: Vec<HeaderValue> =
            options.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(origins))
    }
    .allow_methods([Method::GET, Method::POST])
    .allow_headers(Any);
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(subscriptions))
        .route("/health", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(options.max_body_bytes))
        .layer(cors)
        .with_state(schema)
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish())
}

async fn graphql(State(schema): State<ApiSchema>, request: GraphQLRequest) -> GraphQLResponse {
    schema.execute(request.into_inner()).await.into()
}

async fn subscriptions(
    State(schema): State<ApiSchema>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| GraphQLWebSocket::new(socket, schema, protocol).serve())
}
