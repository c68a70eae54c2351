//! The public audio routes: manifests and encrypted chunks, immutable and cacheable by any CDN, with ETags, single
//! byte ranges and CORS for every origin (`docs/STUDIO.md`, "Serving audio").
//!
//! - `GET /audio/{root}/manifest.json`: an uploaded track's manifest.
//! - `GET /audio/{root}/{index}`: chunk `index` of that track.
//! - `GET /audio/chunks/{hash}`: the stored chunk whose keccak256 is `hash`.

use std::{ops::Range, time::Duration};

use alloy::primitives::B256;
use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::cors::{Any, CorsLayer};

use crate::{
    Error, Result, Studio,
    range::{Wanted, content_range, wanted},
};

/// `Cache-Control` of everything served here: a name never changes what it holds.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The public audio routes, with their CORS layer.
pub(crate) fn router() -> Router<Studio> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([header::RANGE, header::IF_NONE_MATCH, header::IF_RANGE])
        .expose_headers([header::CONTENT_RANGE, header::CONTENT_LENGTH, header::ACCEPT_RANGES, header::ETAG])
        .max_age(Duration::from_secs(86_400))
        // Every origin gets the same answer: a `Vary` would only split CDN caches by origin.
        .vary([]);
    Router::new()
        .route("/audio/chunks/{hash}", get(chunk_by_hash))
        .route("/audio/{root}/manifest.json", get(manifest))
        .route("/audio/{root}/{index}", get(chunk_by_index))
        .layer(cors)
}

async fn manifest(
    State(studio): State<Studio>,
    Path(root): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let root = parse_hash(&root).ok_or_else(|| Error::UnknownTrack(root.clone()))?;
    let track = studio.track(root).await?.ok_or_else(|| Error::UnknownTrack(root.to_string()))?;
    let etag = etag(root);
    if let Some(response) = not_modified(&headers, &etag) {
        return Ok(response);
    }
    let size = track.json.len() as u64;
    let (status, range) = match wanted(range_header(&headers, &etag), size) {
        Wanted::Whole => (StatusCode::OK, 0..size),
        Wanted::Part(range) => (StatusCode::PARTIAL_CONTENT, range),
        Wanted::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size }),
    };
    let body = track.json.slice(range.start as usize..range.end as usize);
    Ok(answer(status, "application/json", &etag, &range, size, Body::from(body)))
}

async fn chunk_by_index(
    State(studio): State<Studio>,
    Path((root, index)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let root = parse_hash(&root).ok_or_else(|| Error::UnknownTrack(root.clone()))?;
    let track = studio.track(root).await?.ok_or_else(|| Error::UnknownTrack(root.to_string()))?;
    let hash = parse_index(&index)
        .and_then(|i| track.manifest.chunks.get(i as usize).copied())
        .ok_or_else(|| {
            Error::UnknownChunk(format!(
                "track {root} has no chunk {index:?}: its chunks are 0 to {}",
                track.manifest.chunk_count.saturating_sub(1)
            ))
        })?;
    chunk(&studio, hash, &headers).await
}

async fn chunk_by_hash(
    State(studio): State<Studio>,
    Path(hash): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let hash = parse_hash(&hash).ok_or_else(|| unknown_chunk(&hash))?;
    chunk(&studio, hash, &headers).await
}

/// Serves the stored chunk `hash`: whole, or one range of it read from the store as such.
async fn chunk(studio: &Studio, hash: B256, headers: &HeaderMap) -> Result<Response> {
    let etag = etag(hash);
    if let Some(response) = not_modified(headers, &etag) {
        return Ok(response);
    }
    let storage = studio.storage();
    let missing = || unknown_chunk(&hash.to_string());
    let (status, object) = match range_header(headers, &etag) {
        None => (StatusCode::OK, storage.get_chunk(hash, None).await?.ok_or_else(missing)?),
        Some(value) => {
            let size = storage.chunk_size(hash).await?.ok_or_else(missing)?;
            match wanted(Some(value), size) {
                Wanted::Whole => {
                    (StatusCode::OK, storage.get_chunk(hash, None).await?.ok_or_else(missing)?)
                }
                Wanted::Part(range) => (
                    StatusCode::PARTIAL_CONTENT,
                    storage.get_chunk(hash, Some(range)).await?.ok_or_else(missing)?,
                ),
                Wanted::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size }),
            }
        }
    };
    let body = Body::from_stream(object.body);
    Ok(answer(status, "application/octet-stream", &etag, &object.range, object.size, body))
}

/// A `200` or `206` answer with the headers every audio object carries.
fn answer(
    status: StatusCode,
    content_type: &'static str,
    etag: &HeaderValue,
    range: &Range<u64>,
    size: u64,
    body: Body,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.end - range.start));
    if status == StatusCode::PARTIAL_CONTENT {
        let value = HeaderValue::from_str(&content_range(range, size)).expect("digits and a dash");
        headers.insert(header::CONTENT_RANGE, value);
    }
    cache_headers(headers, etag);
    response
}

/// `304 Not Modified` when the request's `If-None-Match` names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> Option<Response> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let matches = value.split(',').map(str::trim).any(|tag| {
        tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag.as_bytes()
    });
    matches.then(|| {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        cache_headers(response.headers_mut(), etag);
        response
    })
}

/// The `Range` header to honour: none when an `If-Range` names another entity (then the whole object is sent).
fn range_header<'h>(headers: &'h HeaderMap, etag: &HeaderValue) -> Option<&'h str> {
    if headers.get(header::IF_RANGE).is_some_and(|v| v != etag) {
        return None;
    }
    headers.get(header::RANGE).and_then(|v| v.to_str().ok())
}

fn cache_headers(headers: &mut HeaderMap, etag: &HeaderValue) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
}

/// The strong ETag of an object named by `hash`: the hash, quoted.
fn etag(hash: B256) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a header value")
}

/// A hash as the node writes it: `0x` and 64 lower-case hex digits; any other spelling names nothing here (so each
/// object has one URL, and one CDN cache entry).
fn parse_hash(text: &str) -> Option<B256> {
    let hex = text.strip_prefix("0x")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| hex.parse().ok())
        .flatten()
}

/// A chunk index as the node writes it: a decimal without leading zeros.
fn parse_index(text: &str) -> Option<u32> {
    (!text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0')))
    .then(|| text.parse().ok())
    .flatten()
}

fn unknown_chunk(hash: &str) -> Error {
    Error::UnknownChunk(format!("no chunk {hash:?} is stored here"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_one_spelling() {
        let hash = B256::repeat_byte(0xab);
        assert_eq!(parse_hash(&hash.to_string()), Some(hash));
        for other in [
            format!("0x{}", "AB".repeat(32)),
            "ab".repeat(32),
            format!("0x{}", "ab".repeat(31)),
            "0x".into(),
            format!("0x{}g", "ab".repeat(31)),
        ] {
            assert_eq!(parse_hash(&other), None, "{other}");
        }
        assert_eq!(parse_index("0"), Some(0));
        assert_eq!(parse_index("17"), Some(17));
        for other in ["", "01", "-1", "+1", "1.0", "4294967296"] {
            assert_eq!(parse_index(other), None, "{other}");
        }
    }

    #[test]
    fn if_none_match_and_if_range() {
        let tag = etag(B256::repeat_byte(1));
        let mut headers = HeaderMap::new();
        assert!(not_modified(&headers, &tag).is_none());
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0xother\""));
        assert!(not_modified(&headers, &tag).is_none());
        let list = format!("\"0xother\", W/{}", tag.to_str().unwrap());
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&list).unwrap());
        let response = not_modified(&headers, &tag).unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[header::ETAG], tag);
        assert_eq!(response.headers()[header::CACHE_CONTROL], IMMUTABLE);

        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-1"));
        assert_eq!(range_header(&headers, &tag), Some("bytes=0-1"));
        headers.insert(header::IF_RANGE, tag.clone());
        assert_eq!(range_header(&headers, &tag), Some("bytes=0-1"));
        headers.insert(header::IF_RANGE, HeaderValue::from_static("\"0xother\""));
        assert_eq!(range_header(&headers, &tag), None);
    }
}
