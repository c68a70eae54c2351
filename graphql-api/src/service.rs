//! The API service: binds, serves `/graphql` (queries, and GraphiQL from the node's own bundle), `/graphql/ws`
//! (subscriptions), `/health`, `/ready`, `/metrics` and the app (`/`, [`crate::web`]), and stops at shutdown.

use std::{net::SocketAddr, time::Duration};

use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State, WebSocketUpgrade},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use beatstream_primitives::{
    Deployment,
    health::{Check, Readiness},
};
use tokio_util::sync::CancellationToken;
use tower_http::{
    cors::{AllowOrigin, Any, CorsLayer},
    limit::RequestBodyLimitLayer,
};
use tracing::info;

use crate::{Config, Error, Metrics, Options, Result, db, live, schema, schema::ApiSchema, web};

/// Runs the API until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    Server::bind(config, shutdown).await?.serve().await
}

/// An API that is bound and ready to serve; [`Server::local_addr`] tells where (useful with port 0).
pub struct Server {
    listener: tokio::net::TcpListener,
    schema: ApiSchema,
    ops: Ops,
    options: Options,
    shutdown: CancellationToken,
    extra: Router,
}

/// What `/health`, `/ready` and `/metrics` look at.
#[derive(Clone)]
struct Ops {
    db: db::Db,
    hub: live::Hub,
    metrics: Metrics,
    shutdown: CancellationToken,
}

impl Server {
    /// Validates the settings, connects to Postgres (every query under the statement timeout), migrates, starts
    /// listening for changes and binds the listen address.
    pub async fn bind(config: Config, shutdown: CancellationToken) -> Result<Self> {
        let Config { database, deployment, chain_id, options, .. } = config;
        options.validate()?;
        database.validate(true)?;
        // The app's settings need the contracts too; otherwise only the chain id is read, and only when not given.
        let app_config = match (&options.app_relay_url, &options.app_rpc_url) {
            (Some(relay), Some(rpc)) => {
                Some(web::app_config(&Deployment::load(&deployment)?, rpc, relay))
            }
            _ => None,
        };
        let chain_id = match chain_id {
            Some(id) => id,
            None => Deployment::load(&deployment)?.chain_id,
        };
        let db = db::Db::connect(
            &database,
            chain_id as i64,
            options.statement_timeout_ms,
            options.db_connections,
        )
        .await?;
        let hub = live::Hub::spawn(db.clone(), shutdown.clone());
        let metrics = Metrics::new();
        let ops = Ops {
            db: db.clone(),
            hub: hub.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        let api = schema::Api::new(db, hub, shutdown.clone());
        let schema = schema::build(api, metrics, options.max_depth, options.max_complexity);
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| Error::Bind { addr: options.listen, source })?;
        let extra = match app_config {
            Some(config) => web::config_route(config),
            None => Router::new(),
        };
        Ok(Self { listener, schema, ops, options, shutdown, extra })
    }

    /// Serves `routes` on the same address besides the API's own (the node mounts the studio here). They keep their
    /// own limits: the API's body limit and CORS apply to the API's routes only.
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra = self.extra.merge(routes);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until the shutdown token is cancelled.
    pub async fn serve(self) -> Result<()> {
        let addr = self.listener.local_addr()?;
        info!(target: "beatstream::api", app = %format_args!("http://{addr}/"), graphiql = %format_args!("http://{addr}/graphql"), subscriptions = %format_args!("ws://{addr}/graphql/ws"), "api listening");
        let app = router(self.schema, self.ops, &self.options).merge(self.extra);
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            // No Nagle: a response's body follows its headers in a second small write, which Nagle holds until the
            // client's delayed ACK (about 40 ms per request; docs/BENCHMARKS.md "Audio").
            let _ = tcp.set_nodelay(true);
        });
        let server = axum::serve(listener, app)
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

fn router(schema: ApiSchema, ops: Ops, options: &Options) -> Router {
    let cors = if options.cors_origins.iter().any(|o| o == "*") {
        CorsLayer::new().allow_origin(Any)
    } else {
        let origins: Vec<HeaderValue> =
            options.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(origins))
    }
    .allow_methods([Method::GET, Method::POST])
    .allow_headers(Any);
    let ops = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(ops);
    Router::new()
        .route("/graphql", get(web::graphiql).post(graphql))
        .route("/graphql/ws", get(subscriptions))
        .with_state(schema)
        .merge(ops)
        .merge(web::router())
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(options.max_body_bytes))
        .layer(cors)
}

/// Liveness: `ok` while the server answers and the notification hub behind subscriptions runs.
async fn health(State(ops): State<Ops>) -> Response {
    if ops.hub.is_running() || ops.shutdown.is_cancelled() {
        "ok".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "stuck: the notification hub stopped").into_response()
    }
}

/// Readiness: Postgres answers, and the `LISTEN` connection behind subscriptions is up.
async fn ready(State(ops): State<Ops>) -> Response {
    let database = Check::run("database", ops.db.ping()).await;
    let listen = if ops.hub.is_listening() {
        Check::pass("listen")
    } else {
        Check::fail("listen", "not listening for changes: subscriptions wait for the reconnect")
    };
    let readiness = Readiness::new(vec![database, listen]);
    let status = StatusCode::from_u16(readiness.status()).expect("200 or 503");
    (status, Json(readiness.to_json())).into_response()
}

async fn metrics(State(ops): State<Ops>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], ops.metrics.render()).into_response()
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
