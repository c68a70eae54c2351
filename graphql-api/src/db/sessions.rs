//! Sessions (plays), as the relay records them, with a live session's figures from its newest voucher.

use sqlx::{Row, postgres::PgRow};

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, b, i, s},
};

/// `sessions.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub(crate) enum SessionState {
    Live,
    Paused,
    Closed,
}

/// `sessions.channel`: how the session is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub(crate) enum Channel {
    Vault,
    Yellow,
}

/// A `sessions` row; a live session's `seconds` and `amount` are as of the pair's newest stored voucher.
#[derive(Clone, Debug)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) grant_id: Vec<u8>,
    pub(crate) channel: Channel,
    pub(crate) listener: Vec<u8>,
    pub(crate) payee: Vec<u8>,
    pub(crate) track_id: String,
    pub(crate) rate: String,
    pub(crate) seconds: i64,
    pub(crate) amount: String,
    pub(crate) status: SessionState,
    pub(crate) close_reason: Option<String>,
    pub(crate) started_at: i64,
    pub(crate) ended_at: Option<i64>,
}

/// Which sessions a list holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct SessionFilter {
    /// The one with this id (a UUID).
    pub(crate) id: Option<String>,
    pub(crate) listener: Option<Vec<u8>>,
    pub(crate) payee: Option<Vec<u8>>,
    /// A decimal track id.
    pub(crate) track_id: Option<String>,
    /// Only those not closed yet.
    pub(crate) live: bool,
}

/// Sessions matching `filter`, newest first.
pub(crate) fn list(filter: SessionFilter) -> List<SessionRow> {
    let mut filters = Vec::new();
    if let Some(id) = filter.id {
        filters.push(Filter::new("x.session_id =", Bind::Cast(id, "uuid")));
    }
    if let Some(l) = filter.listener {
        filters.push(Filter::new("x.listener =", Bind::Bytes(l)));
    }
    if let Some(p) = filter.payee {
        filters.push(Filter::new("x.payee =", Bind::Bytes(p)));
    }
    if let Some(t) = filter.track_id {
        filters.push(Filter::new("x.track_id =", Bind::Cast(t, "numeric")));
    }
    if filter.live {
        filters.push(Filter::new("x.ended_at IS NULL AND 1 =", Bind::Int(1)));
    }
    // A live session's row is written when it starts, pauses and ends; its amount and seconds in between come from
    // the pair's newest stored voucher.
    let query = ListQuery {
        select: "x.session_id::text AS id, x.grant_id, x.listener, x.payee, x.track_id::text AS track_id,
                 x.rate_per_second::text AS rate,
                 (CASE WHEN x.ended_at IS NULL AND x.rate_per_second > 0
                       THEN greatest(x.seconds, floor((coalesce(v.cumulative, y.paid, 0) - x.base_cumulative)
                                                      / x.rate_per_second))
                       ELSE x.seconds END)::int8 AS seconds,
                 (CASE WHEN x.ended_at IS NULL
                       THEN greatest(x.amount, coalesce(v.cumulative, y.paid, 0) - x.base_cumulative)
                       ELSE x.amount END)::text AS amount, x.channel,
                 x.status, x.close_reason, extract(epoch FROM x.started_at)::int8 AS started_at,
                 extract(epoch FROM x.ended_at)::int8 AS ended_at,
                 to_char(x.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' AS started_key",
        from: "sessions x LEFT JOIN vouchers v ON v.grant_id = x.grant_id AND v.payee = x.payee
               LEFT JOIN yellow_app_sessions y ON x.channel = 'yellow' AND y.app_session_id = x.grant_id",
        base: "true",
        chain_id: 0,
        filters,
        keys: &[("x.started_at", "timestamptz"), ("x.session_id", "uuid")],
        descending: true,
    };
    List::new(query, node)
}

fn node(row: &PgRow) -> sqlx::Result<(SessionRow, Vec<String>)> {
    let id = s(row, "id")?;
    let node = SessionRow {
        id: id.clone(),
        grant_id: b(row, "grant_id")?,
        channel: row.try_get("channel")?,
        listener: b(row, "listener")?,
        payee: b(row, "payee")?,
        track_id: s(row, "track_id")?,
        rate: s(row, "rate")?,
        seconds: i(row, "seconds")?,
        amount: s(row, "amount")?,
        status: row.try_get("status")?,
        close_reason: row.try_get("close_reason")?,
        started_at: i(row, "started_at")?,
        ended_at: row.try_get("ended_at")?,
    };
    Ok((node, vec![s(row, "started_key")?, id]))
}

/// The session with this id (a UUID), if any.
pub(crate) async fn by_id(db: &Db, id: &str) -> crate::Result<Option<SessionRow>> {
    let filter = SessionFilter { id: Some(id.to_owned()), ..Default::default() };
    let rows = list(filter).fetch(db, None, None, 1, false).await?;
    Ok(rows.nodes.into_iter().next().map(|(row, _)| row))
}
