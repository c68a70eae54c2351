//! The studio on the wire: [`router`] serves `/studio/...` (JSON in and out, errors as
//! `{"error": {"code", "message"}}`) and the public `/audio/...` routes (`serve.rs`), and the extractors [`Session`]
//! and [`Artist`] authenticate a request.

use alloy::primitives::Address;
use axum::{
    Json, Router,
    body::Body,
    extract::{
        DefaultBodyLimit, FromRef, FromRequestParts, RawPathParams, State, rejection::JsonRejection,
    },
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::{Error, Result, Studio, serve, studio::Artist};

/// Largest request body the studio's JSON routes read: a sign-in message with a long list of resources fits.
/// Uploads have their own limit, `--studio-max-upload-bytes`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The studio's routes, to be merged into a server (the node mounts them on the API's address):
/// `POST /studio/siwe/nonce`, `POST /studio/siwe/verify`, `GET /studio/me?label=…`,
/// `POST /studio/artists/{label}/tracks`, and the public `GET /audio/{root}/manifest.json`,
/// `GET /audio/{root}/{index}` and `GET /audio/chunks/{hash}` (`docs/STUDIO.md`).
pub fn router(studio: Studio) -> Router {
    Router::new()
        .route("/studio/siwe/nonce", post(nonce))
        .route("/studio/siwe/verify", post(verify))
        .route("/studio/me", get(me))
        // Uploads stream to a file under their own limit, checked as they come.
        .route("/studio/artists/{label}/tracks", post(upload).layer(DefaultBodyLimit::disable()))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(serve::router())
        .with_state(studio)
}

/// The answer of `POST /studio/siwe/nonce`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NonceResponse {
    nonce: String,
    expires_at: i64,
}

/// The body of `POST /studio/siwe/verify`.
#[derive(Debug, Deserialize)]
struct VerifyRequest {
    message: String,
    signature: String,
}

/// The answer of `POST /studio/siwe/verify`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignInResponse {
    token: String,
    address: String,
    expires_at: i64,
}

/// The answer of `GET /studio/me`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MeResponse {
    address: String,
    label: String,
    node: String,
}

async fn nonce(State(studio): State<Studio>) -> Result<Json<NonceResponse>> {
    let issued = studio
        .issue_nonce()
        .instrument(tracing::info_span!(target: "beatstream::studio", "nonce"))
        .await?;
    Ok(Json(NonceResponse { nonce: issued.nonce, expires_at: issued.expires_at }))
}

async fn verify(
    State(studio): State<Studio>,
    body: std::result::Result<Json<VerifyRequest>, JsonRejection>,
) -> Result<Json<SignInResponse>> {
    let Json(request) = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge(MAX_BODY_BYTES),
        _ => Error::BadRequest(format!(
            "the body must be JSON {{\"message\": \"<EIP-4361 text>\", \"signature\": \"0x…\"}}: {}",
            e.body_text()
        )),
    })?;
    let signed_in = studio
        .sign_in(&request.message, &request.signature)
        .instrument(tracing::info_span!(target: "beatstream::studio", "verify"))
        .await?;
    Ok(Json(SignInResponse {
        token: signed_in.token,
        address: signed_in.address.to_checksum(None),
        expires_at: signed_in.expires_at,
    }))
}

async fn me(artist: Artist) -> Json<MeResponse> {
    Json(MeResponse {
        address: artist.address.to_checksum(None),
        label: artist.label,
        node: artist.node.to_string(),
    })
}

async fn upload(
    State(studio): State<Studio>,
    artist: Artist,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let span = tracing::info_span!(
        target: "beatstream::studio", "upload", label = %artist.label, address = %artist.address
    );
    let uploaded =
        studio.upload(&artist, content_length, body.into_data_stream()).instrument(span).await?;
    let location =
        HeaderValue::from_str(&uploaded.manifest_url).expect("a path of ASCII is a header value");
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(uploaded)).into_response())
}

/// The address signed in with the request's `Authorization: Bearer <token>`; refused with `unauthorized`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session(pub Address);

impl<S> FromRequestParts<S> for Session
where
    Studio: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let token = bearer(&parts.headers)?;
        Ok(Self(Studio::from_ref(state).session(token).await?))
    }
}

/// A signed-in address that manages the request's artist name: the route's `{label}` path parameter, else the
/// `label` query parameter. Refused with `bad_request` (no label), `unauthorized`, `invalid_label` or `not_manager`.
impl<S> FromRequestParts<S> for Artist
where
    Studio: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let from_path =
            RawPathParams::from_request_parts(parts, state).await.ok().and_then(|params| {
                params.iter().find(|(k, _)| *k == "label").map(|(_, v)| v.to_owned())
            });
        let label = match from_path {
            Some(label) => label,
            None => parts
                .uri
                .query()
                .and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "label")
                        .map(|(_, v)| v.into_owned())
                })
                .ok_or_else(|| {
                    Error::BadRequest("the artist name is missing: add ?label=<name>".into())
                })?,
        };
        let token = bearer(&parts.headers)?;
        let studio = Studio::from_ref(state);
        studio
            .authorize_label(token, &label)
            .instrument(
                tracing::info_span!(target: "beatstream::studio", "authorize", label = %label),
            )
            .await
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(headers: &HeaderMap) -> Result<&str> {
    let missing = Error::Unauthorized(
        "no bearer token: send Authorization: Bearer <token>, the token POST /studio/siwe/verify returned",
    );
    let value = headers.get(header::AUTHORIZATION).ok_or(missing)?;
    let value =
        value.to_str().map_err(|_| Error::Unauthorized("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(Error::Unauthorized("the Authorization header must be Bearer <token>")),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn reads_bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert!(
            matches!(bearer(&headers), Err(Error::Unauthorized(m)) if m.starts_with("no bearer token"))
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer(&headers).unwrap(), "abc");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(bearer(&headers), Err(Error::Unauthorized(_))));
    }
}
