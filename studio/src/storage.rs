//! Where uploaded audio lives, through the `object_store` crate: a local directory or an S3-compatible bucket.
//!
//! Layout (under the directory, or the bucket's prefix):
//! - `chunks/<0x-hash>`: a stored chunk (ciphertext ‖ tag), named by its keccak256, the manifest's leaf. Content
//!   addressed: a name never changes what it holds, and identical bytes are stored once.
//! - `tracks/<0x-root>/manifest.json`: a track's manifest, exactly the bytes `GET /audio/<root>/manifest.json`
//!   serves.

use std::{ops::Range, path::Path as FsPath, sync::Arc};

use alloy::primitives::B256;
use axum::body::Bytes;
use futures_util::stream::BoxStream;
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload,
    aws::{AmazonS3Builder, AmazonS3ConfigKey},
    local::LocalFileSystem,
    path::Path,
    prefix::PrefixStore,
};

use crate::{Error, Result};

/// Where `--storage-url` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// A local directory (created if missing).
    Directory(std::path::PathBuf),
    /// An S3 bucket, and a prefix inside it (no leading or trailing `/`; empty for the bucket's root).
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix.
        prefix: String,
    },
}

impl Location {
    /// Parses `--storage-url`: a path, a `file:///` URL or `s3://<bucket>/<prefix>`.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let fail = |why: &str| {
            Err(Error::Config(format!(
                "--storage-url {url:?} {why}: give a directory (data/audio, /var/lib/beatstream/audio), a file:/// \
                 URL or s3://<bucket>/<prefix>"
            )))
        };
        if url.is_empty() {
            return fail("is empty");
        }
        let Some((scheme, _)) = url.split_once("://") else {
            return Ok(Self::Directory(url.into()));
        };
        let Ok(parsed) = url::Url::parse(url) else { return fail("is not a URL") };
        match scheme {
            "file" => match parsed.to_file_path() {
                Ok(path) => Ok(Self::Directory(path)),
                Err(()) => fail(
                    "is not an absolute file URL (a relative directory is given as a plain path)",
                ),
            },
            "s3" => {
                let Some(bucket) = parsed.host_str().filter(|b| !b.is_empty()) else {
                    return fail("names no bucket");
                };
                if parsed.query().is_some() || parsed.fragment().is_some() {
                    return fail("has a query or fragment");
                }
                Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                    prefix: parsed.path().trim_matches('/').to_owned(),
                })
            }
            _ => fail("has an unsupported scheme"),
        }
    }
}

/// A stored object being read: its total size, the byte range being sent, and the bytes.
pub(crate) struct Object {
    /// The object's full size in bytes.
    pub(crate) size: u64,
    /// The bytes of this answer, within `0..size`.
    pub(crate) range: Range<u64>,
    /// The bytes, as the store streams them.
    pub(crate) body: BoxStream<'static, object_store::Result<Bytes>>,
}

/// The store and its layout. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Storage {
    store: Arc<dyn ObjectStore>,
}

impl Storage {
    /// Opens `location`. An S3 store takes its settings from the `AWS_*` pairs of `env` (the process environment,
    /// normally), with `s3_endpoint` over `AWS_ENDPOINT_URL`; an `http://` endpoint is allowed as given. A directory
    /// is created if missing.
    pub(crate) fn open(
        location: &Location,
        s3_endpoint: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = match location {
            Location::Directory(dir) => Arc::new(local(dir)?),
            Location::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::new();
                for (key, value) in env {
                    if let Some(key) = key
                        .starts_with("AWS_")
                        .then(|| key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok())
                        .flatten()
                    {
                        builder = builder.with_config(key, value);
                    }
                }
                if let Some(endpoint) = s3_endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                if builder
                    .get_config_value(&AmazonS3ConfigKey::Endpoint)
                    .is_some_and(|e| e.starts_with("http://"))
                {
                    builder = builder.with_allow_http(true);
                }
                let s3 = builder
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| Error::Config(format!("--storage-url s3://{bucket}: {e}")))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        Ok(Self { store })
    }

    /// Stores chunk `hash` unless it is there already; whether this call wrote it.
    pub(crate) async fn put_chunk(&self, hash: B256, bytes: Vec<u8>) -> Result<bool> {
        let path = chunk_path(hash);
        match self.store.head(&path).await {
            Ok(_) => return Ok(false),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.store.put(&path, PutPayload::from(bytes)).await?;
        Ok(true)
    }

    /// Stores a track's manifest.
    pub(crate) async fn put_manifest(&self, root: B256, json: Vec<u8>) -> Result<()> {
        self.store.put(&manifest_path(root), PutPayload::from(json)).await?;
        Ok(())
    }

    /// Removes chunk `hash` (nothing when it is not there).
    pub(crate) async fn delete_chunk(&self, hash: B256) -> Result<()> {
        delete(&*self.store, &chunk_path(hash)).await
    }

    /// Removes a track's manifest (nothing when it is not there).
    pub(crate) async fn delete_manifest(&self, root: B256) -> Result<()> {
        delete(&*self.store, &manifest_path(root)).await
    }

    /// The size of chunk `hash`, or `None` when no such chunk is stored.
    pub(crate) async fn chunk_size(&self, hash: B256) -> Result<Option<u64>> {
        match self.store.head(&chunk_path(hash)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads chunk `hash`, whole or the bytes `range` (within its size), or `None` when no such chunk is stored.
    pub(crate) async fn get_chunk(
        &self,
        hash: B256,
        range: Option<Range<u64>>,
    ) -> Result<Option<Object>> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        match self.store.get_opts(&chunk_path(hash), options).await {
            Ok(got) => Ok(Some(Object {
                size: got.meta.size,
                range: got.range.clone(),
                body: got.into_stream(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// `chunks/<0x-hash>`.
pub(crate) fn chunk_path(hash: B256) -> Path {
    Path::from(format!("chunks/{hash}"))
}

/// `tracks/<0x-root>/manifest.json`.
pub(crate) fn manifest_path(root: B256) -> Path {
    Path::from(format!("tracks/{root}/manifest.json"))
}

/// A directory store: created if missing; writes synced to disk before they count (a track's row in Postgres says
/// its chunks are stored), and directories left empty by a delete removed.
fn local(dir: &FsPath) -> Result<LocalFileSystem> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Config(format!("--storage-url: creating the directory {}: {e}", dir.display()))
    })?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| Error::Config(format!("--storage-url {}: {e}", dir.display())))?;
    Ok(store.with_fsync(true).with_automatic_cleanup(true))
}

async fn delete(store: &dyn ObjectStore, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl From<object_store::Error> for Error {
    fn from(e: object_store::Error) -> Self {
        Self::Storage(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls() {
        assert_eq!(
            Location::parse("data/audio").unwrap(),
            Location::Directory("data/audio".into())
        );
        assert_eq!(
            Location::parse("file:///var/lib/audio").unwrap(),
            Location::Directory("/var/lib/audio".into())
        );
        assert_eq!(
            Location::parse("s3://bucket/beat/stream/").unwrap(),
            Location::S3 { bucket: "bucket".into(), prefix: "beat/stream".into() }
        );
        assert_eq!(
            Location::parse("s3://bucket").unwrap(),
            Location::S3 { bucket: "bucket".into(), prefix: String::new() }
        );
        for (bad, says) in [
            ("", "is empty"),
            ("file://./data/audio", "not an absolute file URL"),
            ("gs://bucket/x", "unsupported scheme"),
            ("s3:///x", "names no bucket"),
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("--storage-url"), "{bad}: {e}");
        }
    }

    #[test]
    fn layout() {
        let hash = B256::repeat_byte(0xab);
        assert_eq!(chunk_path(hash).as_ref(), format!("chunks/0x{}", "ab".repeat(32)));
        assert_eq!(
            manifest_path(hash).as_ref(),
            format!("tracks/0x{}/manifest.json", "ab".repeat(32))
        );
    }

    #[tokio::test]
    async fn a_directory_store_dedupes_reads_ranges_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Directory(dir.path().join("audio"));
        let storage = Storage::open(&location, None, []).unwrap();
        let hash = B256::repeat_byte(1);
        assert!(storage.put_chunk(hash, b"0123456789".to_vec()).await.unwrap());
        assert!(!storage.put_chunk(hash, b"0123456789".to_vec()).await.unwrap(), "already there");
        assert_eq!(storage.chunk_size(hash).await.unwrap(), Some(10));
        let object = storage.get_chunk(hash, Some(2..5)).await.unwrap().unwrap();
        assert_eq!((object.size, object.range.clone()), (10, 2..5));
        let bytes: Vec<Bytes> = futures_util::TryStreamExt::try_collect(object.body).await.unwrap();
        assert_eq!(bytes.concat(), b"234");
        storage.delete_chunk(hash).await.unwrap();
        storage.delete_chunk(hash).await.unwrap();
        assert!(storage.get_chunk(hash, None).await.unwrap().is_none());
        assert_eq!(storage.chunk_size(hash).await.unwrap(), None);

        let track = dir.path().join("audio/tracks").join(hash.to_string());
        storage.put_manifest(hash, b"{}".to_vec()).await.unwrap();
        assert_eq!(std::fs::read(track.join("manifest.json")).unwrap(), b"{}");
        storage.delete_manifest(hash).await.unwrap();
        assert!(!track.exists(), "a directory left empty goes too");
    }
}
