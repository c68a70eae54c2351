//! The store on S3: moto's server (`beatstream_testkit::kms::MotoKms`, which serves S3 beside KMS; the one moto
//! behaviour its launcher corrects is KMS's, not used here), reached with the standard `AWS_*` variables. An upload
//! is stored under the bucket's prefix, served, verified and decrypted as with a directory; a refused one leaves no
//! object.

use std::path::Path;

use alloy::primitives::B256;
use beatstream_testkit::kms::{MotoKms, REGION};
use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, aws::AmazonS3Builder, path::Path as Key};
use reqwest::StatusCode;

use crate::{
    harness::{Env, assert_error},
    upload::{artist, check_track, fixture},
};

const BUCKET: &str = "beatstream-audio";
const PREFIX: &str = "node-1/audio";

/// The bucket, read by a client of the test's own (moto takes any credentials).
fn bucket(endpoint: &str) -> eyre::Result<impl ObjectStore> {
    Ok(AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_region(REGION)
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .with_bucket_name(BUCKET)
        .build()?)
}

/// The keys under [`PREFIX`] in the bucket.
async fn keys(endpoint: &str) -> eyre::Result<Vec<String>> {
    let mut keys: Vec<String> = bucket(endpoint)?
        .list(Some(&Key::from(PREFIX)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await?;
    keys.sort();
    Ok(keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_stored_in_an_s3_bucket_and_served_from_it() -> eyre::Result<()> {
    beatstream_primitives::tls::install_crypto_provider();
    let moto = tokio::task::spawn_blocking(MotoKms::start).await??;
    let endpoint = moto.endpoint().to_owned();
    // moto takes unsigned requests: the test makes its bucket without an S3 client of its own.
    let created = reqwest::Client::new().put(format!("{endpoint}/{BUCKET}")).send().await?;
    eyre::ensure!(created.status().is_success(), "creating the bucket: {}", created.status());
    let env = Env::with_env(
        |o| o.storage_url = format!("s3://{BUCKET}/{PREFIX}"),
        moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        true,
    )
    .await?;
    let token = artist(&env, 2, "aurora").await?;

    // A refused upload whose first chunk was stored: nothing is left in the bucket.
    let flac = std::fs::read(fixture("tone.flac"))?;
    let answer = env.upload(Some(&token), "aurora", flac[..flac.len() * 3 / 4].to_vec()).await?;
    assert_error(&answer, 422, "audio_corrupt");
    assert_eq!(keys(&endpoint).await?, Vec::<String>::new());
    assert!(env.uploads_left().is_empty());

    let (status, body) =
        env.upload(Some(&token), "aurora", std::fs::read(fixture("tone.mp3"))?).await?;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let root: B256 = body["root"].as_str().expect("a root").parse()?;
    let manifest = check_track(&env, root, Path::new(&fixture("tone.mp3"))).await?;

    // The layout under the prefix, and the bucket's manifest is the one served.
    let mut expected: Vec<String> =
        manifest.chunks.iter().map(|hash| format!("{PREFIX}/chunks/{hash}")).collect();
    expected.push(format!("{PREFIX}/tracks/{root}/manifest.json"));
    expected.sort();
    assert_eq!(keys(&endpoint).await?, expected);
    let key = Key::from(format!("{PREFIX}/tracks/{root}/manifest.json"));
    let in_bucket = bucket(&endpoint)?.get(&key).await?.bytes().await?;
    assert_eq!(in_bucket.to_vec(), manifest.to_json());

    // A range, read from the bucket as a range.
    let whole = env.fetch(&format!("/audio/{root}/0"), &[]).await?;
    let part = env.fetch(&format!("/audio/{root}/0"), &[("range", "bytes=5-24")]).await?;
    assert_eq!((part.status, &part.body[..]), (StatusCode::PARTIAL_CONTENT, &whole.body[5..25]));
    assert_eq!(part.header("content-range"), format!("bytes 5-24/{}", whole.body.len()));
    Ok(())
}
