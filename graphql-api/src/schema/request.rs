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
