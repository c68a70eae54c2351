//! Relay connections over the database's keyset lists: opaque cursors, page limits, `totalCount` on demand.

use async_graphql::{
    Context, Object, OutputType,
    connection::{Connection, CursorType, Edge, query},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{
    api::Api,
    error::{ApiError, Result},
};
use crate::db::{List, ListQuery};

/// Largest page: `first` or `last` above it is an error.
pub(crate) const MAX_PAGE: usize = 1_000;
/// Page size when neither `first` nor `last` is given.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// The complexity of a list field: its page size (as `page` will cap it; a negative or oversized one counts as
/// `MAX_PAGE`, and `page` refuses it) times that of each node. Saturating: a client's `last: -1` must not overflow.
pub(crate) fn page_cost(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let n = first
        .or(last)
        .map_or(DEFAULT_PAGE, |n| usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE));
    n.saturating_mul(child)
}

/// Relay connection arguments: `after`, `before`, `first`, `last`.
pub(crate) type Window = (Option<String>, Option<String>, Option<i32>, Option<i32>);

/// An opaque cursor: the key column values of a row, base64url of their JSON array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cursor(pub(crate) Vec<String>);

impl CursorType for Cursor {
    type Error = String;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| "invalid cursor".to_owned())?;
        serde_json::from_slice(&bytes).map(Self).map_err(|_| "invalid cursor".to_owned())
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.0).expect("strings serialize"))
    }
}

/// `totalCount`, computed only when the query asks for it.
pub(crate) struct TotalCount(ListQuery);

#[Object]
impl TotalCount {
    /// Rows matching the filter, over all pages. Costs a count query: ask only when shown.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        Ok(self.0.count(&ctx.data_unchecked::<Api>().db).await?)
    }
}

/// A page of a Relay connection.
pub(crate) type Page<T> = Connection<Cursor, T, TotalCount>;

/// The page of `list` the Relay arguments ask for, each row made a `T`.
pub(crate) async fn page<R, T>(
    api: &Api,
    list: List<R>,
    (after, before, first, last): Window,
) -> Result<Page<T>>
where
    T: OutputType + From<R>,
{
    for n in [first, last].into_iter().flatten() {
        if n < 0 || n as usize > MAX_PAGE {
            return Err(ApiError::bad_input(format!(
                "first and last must be between 0 and {MAX_PAGE}"
            )));
        }
    }
    query(
        after,
        before,
        first,
        last,
        |after: Option<Cursor>, before: Option<Cursor>, first, last| async move {
            let backward = last.is_some() && first.is_none();
            let limit = first.or(last).unwrap_or(DEFAULT_PAGE);
            if [&after, &before].into_iter().flatten().any(|c| !list.query().accepts(&c.0)) {
                return Err(ApiError::bad_input("invalid cursor"));
            }
            let rows = list
                .fetch(
                    &api.db,
                    after.as_ref().map(|c| &c.0[..]),
                    before.as_ref().map(|c| &c.0[..]),
                    limit,
                    backward,
                )
                .await?;
            let (has_previous, has_next) =
                if backward { (rows.more, before.is_some()) } else { (after.is_some(), rows.more) };
            let mut connection = Connection::with_additional_fields(
                has_previous,
                has_next,
                TotalCount(list.query().clone()),
            );
            connection
                .edges
                .extend(rows.nodes.into_iter().map(|(n, key)| Edge::new(Cursor(key), T::from(n))));
            Ok::<_, ApiError>(connection)
        },
    )
    .await
    .map_err(ApiError::Graphql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_cost_is_bounded_whatever_the_arguments() {
        assert_eq!(page_cost(None, None, 3), DEFAULT_PAGE * 3);
        assert_eq!(page_cost(Some(10), None, 3), 30);
        assert_eq!(page_cost(None, Some(-1), 3), MAX_PAGE * 3);
        assert_eq!(page_cost(Some(i32::MAX), None, usize::MAX), usize::MAX);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor(vec!["12".into(), "3".into()]);
        assert_eq!(Cursor::decode_cursor(&cursor.encode_cursor()), Ok(cursor));
        assert!(Cursor::decode_cursor("not base64!").is_err());
        assert!(Cursor::decode_cursor(&URL_SAFE_NO_PAD.encode(b"{\"a\":1}")).is_err());
    }
}
