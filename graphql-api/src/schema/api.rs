//! What resolvers read from: the database, its dataloader, the notification hub.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use tokio_util::sync::CancellationToken;

use crate::{
    db::{Db, Loaders},
    live::Hub,
};

/// What resolvers read from.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) db: Db,
    pub(crate) loader: Arc<DataLoader<Loaders>>,
    pub(crate) hub: Hub,
    /// Cancelled at shutdown: subscriptions end.
    pub(crate) shutdown: CancellationToken,
}

impl Api {
    pub(crate) fn new(db: Db, hub: Hub, shutdown: CancellationToken) -> Self {
        let loader = Arc::new(DataLoader::new(Loaders::new(db.clone()), tokio::spawn));
        Self { db, loader, hub, shutdown }
    }
}
