//! One tracing span per request (`request`) and per subscription (`subscription`), with the operation's name, so
//! `RUST_LOG=beatstream::api=debug` follows one; and the last word on error codes before a response leaves.

use std::sync::Arc;

use async_graphql::{
    Response,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest, NextSubscribe,
    },
    futures_util::stream::BoxStream,
};
use futures_util::StreamExt;
use tracing::{Instrument, Span, debug, field, info_span};

use super::error;

/// Installs [`Requests`] on the schema.
pub(crate) struct Traced;

impl ExtensionFactory for Traced {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Requests)
    }
}

/// The extension itself.
struct Requests;

#[async_graphql::async_trait::async_trait]
impl Extension for Requests {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let span = info_span!(target: "beatstream::api", "request", operation = field::Empty);
        let mut response = next.run(ctx).instrument(span.clone()).await;
        error::classify(&mut response.errors);
        debug!(target: "beatstream::api", parent: &span, errors = response.errors.len(), "answered");
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
        futures_util::stream::unfold((stream, span), |(mut stream, span)| async move {
            let mut response = stream.next().instrument(span.clone()).await?;
            error::classify(&mut response.errors);
            Some((response, (stream, span)))
        })
        .boxed()
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
        let schema =
            Schema::build(Query, EmptyMutation, EmptySubscription).extension(Traced).finish();

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
}
