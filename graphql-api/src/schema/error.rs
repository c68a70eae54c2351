//! What a client sees when a request fails: a message and a stable `extensions.code`, decided here and nowhere
//! else. Resolvers return [`ApiError`]; an internal failure is logged with its cause and reaches the client as
//! "internal error", so no SQL or database text ever leaves the server. `docs/API.md` lists the codes.

use std::sync::Arc;

use async_graphql::{ErrorExtensions, ServerError};

/// The request is malformed: a bad argument, a forged cursor, a page too large, a query too deep or too complex, a
/// syntax or validation error. The message says what to change.
pub(crate) const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
/// Something the request names does not exist (a session to follow, an artist without an address record).
pub(crate) const NOT_FOUND: &str = "NOT_FOUND";
/// The server failed; retrying may help. The cause is in the server's log, not in the response.
pub(crate) const INTERNAL: &str = "INTERNAL";

/// Message of every internal error.
const INTERNAL_MESSAGE: &str = "internal error";

/// Why a resolver failed. Deliberately not `Display`: it converts to a client error only through the `From` impl
/// below, which picks its code.
pub(crate) enum ApiError {
    /// The client's mistake; the message says what is wrong.
    BadInput(String),
    /// What the request names does not exist.
    NotFound(String),
    /// The server's failure: logged, never shown.
    Internal(Box<dyn std::error::Error + Send + Sync>),
    /// An error async-graphql built (connection arguments): passed on, [`BAD_USER_INPUT`] unless it has a code.
    Graphql(async_graphql::Error),
}

/// Result of a resolver.
pub(crate) type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    /// A bad argument.
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }

    /// Something missing.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<Arc<crate::Error>> for ApiError {
    fn from(e: Arc<crate::Error>) -> Self {
        Self::Internal(Box::new(e))
    }
}

fn coded(message: impl Into<String>, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code))
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::BadInput(message) => coded(message, BAD_USER_INPUT),
            ApiError::NotFound(message) => coded(message, NOT_FOUND),
            ApiError::Internal(cause) => {
                tracing::error!(target: "beatstream::api", error = %cause, "request failed");
                coded(INTERNAL_MESSAGE, INTERNAL)
            }
            ApiError::Graphql(e) if has_code(e.extensions.as_ref()) => e,
            ApiError::Graphql(e) => e.extend_with(|_, ext| ext.set("code", BAD_USER_INPUT)),
        }
    }
}

fn has_code(extensions: Option<&async_graphql::ErrorExtensionValues>) -> bool {
    extensions.is_some_and(|ext| ext.get("code").is_some())
}

/// Gives every error of a response that has no code yet [`BAD_USER_INPUT`]: those async-graphql raised itself before
/// or around the resolvers (parsing, validation, depth and complexity limits, argument validators). Resolvers' own
/// errors all carry their code already.
pub(crate) fn classify(errors: &mut [ServerError]) {
    for error in errors {
        if !has_code(error.extensions.as_ref()) {
            error.extensions.get_or_insert_with(Default::default).set("code", BAD_USER_INPUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: &async_graphql::Error) -> Option<String> {
        match e.extensions.as_ref()?.get("code")? {
            async_graphql::Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    #[test]
    fn each_error_gets_its_code_and_internal_ones_say_nothing() {
        let bad: async_graphql::Error = ApiError::bad_input("not an address: 0x12").into();
        assert_eq!(
            (bad.message.as_str(), code(&bad).as_deref()),
            ("not an address: 0x12", Some(BAD_USER_INPUT))
        );
        let missing: async_graphql::Error = ApiError::not_found("no session x").into();
        assert_eq!(code(&missing).as_deref(), Some(NOT_FOUND));

        let cause = crate::Error::Config("relation \"secret_table\" does not exist".into());
        let internal: async_graphql::Error = ApiError::from(cause).into();
        assert_eq!(
            (internal.message.as_str(), code(&internal).as_deref()),
            (INTERNAL_MESSAGE, Some(INTERNAL))
        );

        // Already coded errors keep their code; async-graphql's own get BAD_USER_INPUT.
        assert_eq!(code(&ApiError::Graphql(internal).into()).as_deref(), Some(INTERNAL));
        let raw = async_graphql::Error::new("invalid cursor");
        assert_eq!(code(&ApiError::Graphql(raw).into()).as_deref(), Some(BAD_USER_INPUT));

        let mut errors = vec![ServerError::new("Query is nested too deep.", None)];
        classify(&mut errors);
        assert_eq!(
            errors[0]
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map(|v| v.to_string())
                .as_deref(),
            Some("\"BAD_USER_INPUT\"")
        );
    }
}
