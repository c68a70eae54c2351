//! Each batch runs in a `batch` span holding its block range, so one batch can be followed in the log.

use std::sync::{Arc, Mutex};

use beatstream_testkit::TestDb;
use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id},
};
use tracing_subscriber::{Layer, layer::Context, prelude::*, registry::LookupSpan};

use crate::harness::{Chain, Running, config};

/// What the layer saw: each `batch` span's range, and the span each "committed" event was in.
#[derive(Clone, Default)]
struct Seen {
    batches: Arc<Mutex<Vec<(u64, u64)>>>,
    committed_in: Arc<Mutex<Vec<String>>>,
}

#[derive(Default)]
struct Fields {
    from: Option<u64>,
    to: Option<u64>,
    message: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "from" => self.from = Some(value),
            "to" => self.to = Some(value),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Seen {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "batch" {
            let mut fields = Fields::default();
            attrs.record(&mut fields);
            if let (Some(from), Some(to)) = (fields.from, fields.to) {
                self.batches.lock().unwrap().push((from, to));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "committed" {
            let span = ctx.event_span(event).map(|s| s.name().to_owned()).unwrap_or_default();
            self.committed_in.lock().unwrap().push(span);
        }
    }
}

#[tokio::test]
async fn each_batch_runs_in_a_span_with_its_block_range() -> eyre::Result<()> {
    let seen = Seen::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(seen.clone()));
    let chain = Chain::new().await?;
    let db = TestDb::new().await?;
    let indexer = Running::start(config(&chain, &db));
    let artist = chain.anvil.signer(1);
    chain.register(&artist, "spanned", 10).await?;
    indexer.catch_up(&chain).await?;
    indexer.stop().await?;

    // The batches cover the chain from the deployment block up, each once and in order.
    let mut batches = seen.batches.lock().unwrap().clone();
    assert!(batches.len() >= 2, "{batches:?}");
    batches.sort();
    for pair in batches.windows(2) {
        assert!(pair[0].0 <= pair[0].1 && pair[1].0 == pair[0].1 + 1, "{batches:?}");
    }
    // Each commit is logged inside its batch's span.
    let committed_in = seen.committed_in.lock().unwrap().clone();
    assert_eq!(committed_in.len(), batches.len(), "{committed_in:?}");
    assert!(committed_in.iter().all(|s| s == "batch"), "{committed_in:?}");
    Ok(())
}
