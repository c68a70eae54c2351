//! Uploaded tracks (migration `0013_audio.sql`): a row once every chunk and the manifest are stored, with the
//! track's secret sealed under the node's audio key; the manifest is served from it.

use alloy::primitives::{Address, B256};
use beatstream_audio::Manifest;
use sqlx::types::Json;

use super::pool::Db;
use crate::{Error, Result};

/// A stored track to record.
#[derive(Debug)]
pub(crate) struct NewTrack<'a> {
    /// Its manifest (root, chunk count, duration and the rest).
    pub(crate) manifest: &'a Manifest,
    /// The artist node it was uploaded under.
    pub(crate) artist_node: B256,
    /// The signed-in address that uploaded it.
    pub(crate) uploaded_by: Address,
    /// The track's secret sealed under the node's audio key.
    pub(crate) sealed_secret: &'a [u8],
}

impl Db {
    /// Records an uploaded track.
    pub(crate) async fn insert_track(&self, track: &NewTrack<'_>) -> Result<()> {
        let m = track.manifest;
        sqlx::query(
            "INSERT INTO audio_tracks
                 (chain_id, root, artist_node, uploaded_by, chunk_count, duration_ms, sealed_secret, manifest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.chain_id)
        .bind(m.root.as_slice())
        .bind(track.artist_node.as_slice())
        .bind(track.uploaded_by.as_slice())
        .bind(i32::try_from(m.chunk_count).map_err(|_| too_big("chunk count"))?)
        .bind(i64::try_from(m.duration_ms).map_err(|_| too_big("duration"))?)
        .bind(track.sealed_secret)
        .bind(Json(m))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The manifest of this chain's track `root`, if one was uploaded here.
    pub(crate) async fn manifest(&self, root: B256) -> Result<Option<Manifest>> {
        let row: Option<Json<Manifest>> = sqlx::query_scalar(
            "SELECT manifest FROM audio_tracks WHERE chain_id = $1 AND root = $2",
        )
        .bind(self.chain_id)
        .bind(root.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|Json(manifest)| manifest))
    }
}

fn too_big(what: &str) -> Error {
    Error::Database(format!("the track's {what} does not fit its column").into())
}
