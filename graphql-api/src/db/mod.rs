//! Every SQL statement of the API and the rows they read. The schema asks for rows by what they mean (an artist by
//! name, a page of settlements after a cursor) and never sees a query; nothing outside this module uses `sqlx`.

pub(crate) mod artists;
mod health;
pub(crate) mod keeper;
mod list;
pub(crate) mod listeners;
mod loaders;
pub(crate) mod notify;
mod pool;
pub(crate) mod sessions;
pub(crate) mod settlements;
pub(crate) mod splits;
pub(crate) mod stats;
pub(crate) mod tips;
pub(crate) mod tracks;

pub(crate) use artists::{ArtistOrder, ArtistRow};
pub(crate) use list::{List, ListQuery};
pub(crate) use loaders::{
    ByAddr, ByNode, EarningsOf, ListeningOf, Loaders, PayeeEarnings, PayeeListening, PlaySplitOf,
    SplitEarningsOf, TextRow, TextsOf, TrackById, TrackStats, TrackStatsOf,
};
pub(crate) use pool::Db;
pub(crate) use tracks::TrackRow;
