//! One tracing span per request (`request`) and per subscription (`subscription`), with the operation's name, so
//! `RUST_LOG=beatstream::api=debug` follows one; the last word on error codes before a response leaves; and the
//! request metrics ([`Metrics`]): requests by operation type and outcome, latency, errors by code, open
//! subscriptions.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerError, ServerResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextRequest, NextSubscribe,
    },
    futures_util::stream::BoxStream,
    parser::types::{ExecutableDocument, OperationType},
};
use futures_util::StreamExt;
use tracing::{Instrument, Span, debug, field, info_span};

use super::error;
use crate::Metrics;

/// Installs [`Requests`] on the schema, one per request, recording into `metrics`.
pub(crate) struct Traced {
    pub(crate) metrics: Metrics,
}

impl ExtensionFactory for Traced {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Requests { metrics: self.metrics.clone(), state: Default::default() })
    }
}

/// The extension itself, made afresh for each request.
struct Requests {
    metrics: Metrics,
    /// Shared with a subscription's stream, which outlives the hooks.
    state: Arc<Mutex<State>>,
}

/// What the hooks learn about their request.
#[derive(Debug, Default)]
struct State {
    /// The `operationName` the client asked for.
    name: Option<String>,
    /// The type of the operation that runs; unknown until the document parsed.
    operation: Option<OperationType>,
    /// Whether a response carried an error.
    failed: bool,
}

impl Requests {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }
}

/// The `operation` label of a request.
fn operation_label(operation: Option<OperationType>) -> &'static str {
    match operation {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

/// The operation of `document` that runs: the one named `name`, or the only one.
fn operation_of(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    let mut operations = document.operations.iter();
    match name {
        Some(name) => operations
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))
            .map(|(_, op)| op.node.ty),
        None => operations.next().map(|(_, op)| op.node.ty),
    }
}

/// Counts each error of a response by its code (every error has one by then: [`error::classify`]).
fn count_errors(metrics: &Metrics, errors: &[ServerError]) {
    for e in errors {
        let code = match e.extensions.as_ref().and_then(|ext| ext.get("code")) {
            Some(Value::String(code)) => code.as_str(),
            _ => "none",
        };
        metrics.errors.with_label_values(&[code]).inc();
    }
}

/// A subscription's place in the metrics: open while it lives, counted as a request when it ends.
struct Open {
    metrics: Metrics,
    state: Arc<Mutex<State>>,
}

impl Open {
    fn new(metrics: Metrics, state: Arc<Mutex<State>>) -> Self {
        metrics.subscriptions.inc();
        Self { metrics, state }
    }

    fn answered(&self, response: &Response) {
        count_errors(&self.metrics, &response.errors);
        if response.is_err() {
            self.state.lock().expect("not poisoned").failed = true;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.subscriptions.dec();
        let state = self.state.lock().expect("not poisoned");
        let outcome = if state.failed { "error" } else { "ok" };
        self.metrics.requests.with_label_values(&[operation_label(state.operation), outcome]).inc();
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Requests {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let span = info_span!(target: "beatstream::api", "request", operation = field::Empty);
        let started = Instant::now();
        let mut response = next.run(ctx).instrument(span.clone()).await;
        error::classify(&mut response.errors);
        debug!(target: "beatstream::api", parent: &span, errors = response.errors.len(), "answered");
        let operation = operation_label(self.state().operation);
        let outcome = if response.is_err() { "error" } else { "ok" };
        self.metrics.requests.with_label_values(&[operation, outcome]).inc();
        self.metrics.latency.observe(started.elapsed().as_secs_f64());
        count_errors(&self.metrics, &response.errors);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let span = info_span!(target: "beatstream::api", "subscription", operation = field::Empty);
        let stream = next.run(ctx, stream);
        let open = Open::new(self.metrics.clone(), self.state.clone());
        futures_util::stream::unfold((stream, span, open), |(mut stream, span, open)| async move {
            let mut response = stream.next().instrument(span.clone()).await?;
            error::classify(&mut response.errors);
            open.answered(&response);
            Some((response, (stream, span, open)))
        })
        .boxed()
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.state().name = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mut state = self.state();
        state.operation = operation_of(&document, state.name.as_deref());
        drop(state);
        Ok(document)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        Span::current().record("operation", operation_name.unwrap_or("anonymous"));
        next.run(ctx, operation_name).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    use tracing::{
        Subscriber,
        field::{Field, Visit},
        span::{Id, Record},
    };
    use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn hello(&self) -> &str {
            "hi"
        }
    }

    /// (span name, operation) of every `operation` recorded.
    #[derive(Clone, Default)]
    struct Operations(Arc<Mutex<Vec<(String, String)>>>);

    struct Operation(Option<String>);

    impl Visit for Operation {
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "operation" {
                self.0 = Some(value.to_owned());
            }
        }

        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Operations {
        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            let mut operation = Operation(None);
            values.record(&mut operation);
            if let (Some(span), Some(op)) = (ctx.span(id), operation.0) {
                self.0.lock().unwrap().push((span.name().to_owned(), op));
            }
        }
    }

    #[tokio::test]
    async fn each_request_runs_in_a_span_that_names_its_operation() {
        let operations = Operations::default();
        let _default = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(operations.clone()),
        );
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(Traced { metrics: Metrics::new() })
            .finish();

        assert!(schema.execute("query Greeting { hello }").await.errors.is_empty());
        assert!(schema.execute("{ hello }").await.errors.is_empty());
        // A request that fails validation never executes, and its error gets the client's code.
        let failed = schema.execute("{ nope }").await;
        let code = failed.errors[0].extensions.as_ref().and_then(|e| e.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from(error::BAD_USER_INPUT)));

        let seen = operations.0.lock().unwrap().clone();
        let expected = [("request", "Greeting"), ("request", "anonymous")];
        assert_eq!(seen, expected.map(|(s, o)| (s.to_owned(), o.to_owned())));
    }

    #[tokio::test]
    async fn requests_are_counted_by_operation_and_outcome_with_errors_by_code() {
        let metrics = Metrics::new();
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(Traced { metrics: metrics.clone() })
            .finish();
        assert!(schema.execute("query Greeting { hello }").await.is_ok());
        assert!(schema.execute("{ hello }").await.is_ok());
        // Parsed (a query) but invalid; and not even parsed.
        assert!(schema.execute("{ nope }").await.is_err());
        assert!(schema.execute("{ hello").await.is_err());
        // Of two operations, the one named runs.
        let two = Request::new("query A { hello } query B { hello }").operation_name("B");
        assert!(schema.execute(two).await.is_ok());

        let text = metrics.render();
        for line in [
            r#"beatstream_api_requests_total{operation="query",outcome="ok"} 3"#,
            r#"beatstream_api_requests_total{operation="query",outcome="error"} 1"#,
            r#"beatstream_api_requests_total{operation="unknown",outcome="error"} 1"#,
            r#"beatstream_api_errors_total{code="BAD_USER_INPUT"} 2"#,
            "beatstream_api_request_duration_seconds_count 5",
            "beatstream_api_subscriptions 0",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}
