//! Keyset pagination: every list orders by indexed columns and pages by comparing row values with the cursor's, so
//! page 10,000 costs what page 1 costs (no OFFSET).

use sqlx::{Postgres, QueryBuilder, postgres::PgRow};

use super::pool::Db;
use crate::Result;

/// A value bound into a filter.
#[derive(Clone, Debug)]
pub(super) enum Bind {
    Bytes(Vec<u8>),
    Int(i64),
    Text(String),
    /// Text bound as `$n::<cast>` (numeric ids, UUIDs), so the column's index is used.
    Cast(String, &'static str),
}

/// One `AND <expr> $n <close>` condition (the expression ends with its operator, e.g. `s.payee =`; `close` ends a
/// subquery the expression opened, or is empty).
#[derive(Clone, Debug)]
pub(super) struct Filter {
    expr: &'static str,
    value: Bind,
    close: &'static str,
}

impl Filter {
    pub(super) fn new(expr: &'static str, value: Bind) -> Self {
        Self { expr, value, close: "" }
    }

    /// A condition whose expression opens a subquery that `close` ends.
    pub(super) fn enclosed(expr: &'static str, value: Bind, close: &'static str) -> Self {
        Self { expr, value, close }
    }
}

/// A list query: `SELECT <select> FROM <from> WHERE <chain filter> AND <filters> AND <window> ORDER BY <keys>`.
#[derive(Clone, Debug)]
pub(crate) struct ListQuery {
    pub(super) select: &'static str,
    pub(super) from: &'static str,
    /// Always-on condition with `$1` bound to the chain id (or `true`).
    pub(super) base: &'static str,
    pub(super) chain_id: i64,
    pub(super) filters: Vec<Filter>,
    /// Key columns with the SQL cast of their cursor text, e.g. `("s.block_number", "int8")`. Together unique.
    pub(super) keys: &'static [(&'static str, &'static str)],
    /// Newest (largest key) first.
    pub(super) descending: bool,
}

impl ListQuery {
    fn push_where(&self, qb: &mut QueryBuilder<'static, Postgres>) {
        qb.push(" FROM ").push(self.from).push(" WHERE ");
        if self.base.contains("$1") {
            let (before, after) = self.base.split_once("$1").expect("checked");
            qb.push(before).push_bind(self.chain_id).push(after);
        } else {
            qb.push(self.base);
        }
        for f in &self.filters {
            qb.push(" AND ").push(f.expr).push(" ");
            match &f.value {
                Bind::Bytes(v) => qb.push_bind(v.clone()),
                Bind::Int(v) => qb.push_bind(*v),
                Bind::Text(v) => qb.push_bind(v.clone()),
                Bind::Cast(v, cast) => qb.push_bind(v.clone()).push("::").push(*cast),
            };
            qb.push(f.close);
        }
    }

    fn push_key_cmp(&self, qb: &mut QueryBuilder<'static, Postgres>, op: &str, cursor: &[String]) {
        let cols: Vec<&str> = self.keys.iter().map(|(c, _)| *c).collect();
        qb.push(" AND (").push(cols.join(", ")).push(") ").push(op).push(" (");
        for (i, ((_, cast), value)) in self.keys.iter().zip(cursor).enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            qb.push_bind(value.clone()).push("::").push(*cast);
        }
        qb.push(")");
    }

    /// Whether `cursor` holds one value per key column, each of which its column's type can read: a forged cursor
    /// is the client's mistake, not a failed query.
    pub(crate) fn accepts(&self, cursor: &[String]) -> bool {
        cursor.len() == self.keys.len()
            && self.keys.iter().zip(cursor).all(|((_, cast), value)| key_parses(cast, value))
    }

    /// The number of rows matching the filters, over all pages.
    pub(crate) async fn count(&self, db: &Db) -> Result<i64> {
        let mut qb = QueryBuilder::new("SELECT count(*)");
        self.push_where(&mut qb);
        Ok(qb.build_query_scalar().fetch_one(&mut *db.reader().await?).await?)
    }
}

/// Whether `value` reads as a key of SQL type `cast`.
fn key_parses(cast: &str, value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match cast {
        "int8" => value.parse::<i64>().is_ok(),
        "int4" => value.parse::<i32>().is_ok(),
        "numeric" => value.len() <= 78 && digits(value),
        // Bytes as Postgres writes them: `\x` and hex (addresses, hashes).
        "bytea" => value.strip_prefix("\\x").is_some_and(|h| {
            h.len() % 2 == 0 && h.len() <= 64 && h.bytes().all(|c| c.is_ascii_hexdigit())
        }),
        "uuid" => value.len() == 36 && value.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'),
        // As the session list writes it: `YYYY-MM-DD HH24:MI:SS.US+00`.
        "timestamptz" => {
            value.len() <= 40 && value.bytes().all(|c| c.is_ascii_digit() || b"-: .+".contains(&c))
        }
        _ => true,
    }
}

/// How a row of a list becomes a `T` and its key values.
pub(super) type Node<T> = fn(&PgRow) -> sqlx::Result<(T, Vec<String>)>;

/// A list of `T`: the query and how its rows read.
pub(crate) struct List<T> {
    query: ListQuery,
    node: Node<T>,
}

/// One page of a list, in the list's order, with each row's key values.
pub(crate) struct Rows<T> {
    /// The rows and their keys.
    pub(crate) nodes: Vec<(T, Vec<String>)>,
    /// Whether more rows lie beyond the page in the direction it was read.
    pub(crate) more: bool,
}

impl<T> List<T> {
    pub(super) fn new(query: ListQuery, node: Node<T>) -> Self {
        Self { query, node }
    }

    /// The query, for counting.
    pub(crate) fn query(&self) -> &ListQuery {
        &self.query
    }

    /// Up to `limit` rows after `after` and before `before` (cursors the list [accepts](ListQuery::accepts)):
    /// the first ones, or the last ones when `backward`.
    pub(crate) async fn fetch(
        &self,
        db: &Db,
        after: Option<&[String]>,
        before: Option<&[String]>,
        limit: usize,
        backward: bool,
    ) -> Result<Rows<T>> {
        let list = &self.query;
        // Walking backward reverses the order; the page is flipped back below.
        let descending = list.descending != backward;
        let (past, upto) = if list.descending { ("<", ">") } else { (">", "<") };
        let mut qb = QueryBuilder::new("SELECT ");
        qb.push(list.select);
        list.push_where(&mut qb);
        if let Some(after) = after {
            list.push_key_cmp(&mut qb, past, after);
        }
        if let Some(before) = before {
            list.push_key_cmp(&mut qb, upto, before);
        }
        let dir = if descending { " DESC" } else { " ASC" };
        let order: Vec<String> = list.keys.iter().map(|(c, _)| format!("{c}{dir}")).collect();
        qb.push(" ORDER BY ").push(order.join(", ")).push(" LIMIT ").push_bind((limit + 1) as i64);
        let rows = qb.build().fetch_all(&mut *db.reader().await?).await?;
        let more = rows.len() > limit;
        let mut nodes = Vec::with_capacity(limit.min(rows.len()));
        for row in rows.iter().take(limit) {
            nodes.push((self.node)(row)?);
        }
        if backward {
            nodes.reverse();
        }
        Ok(Rows { nodes, more })
    }
}

#[cfg(test)]
mod tests {
    use super::key_parses;

    #[test]
    fn cursor_keys_must_read_as_their_column_type() {
        assert!(key_parses("int8", "-1") && key_parses("int4", "7"));
        assert!(!key_parses("int8", "1; DROP TABLE x") && !key_parses("int4", "99999999999"));
        assert!(key_parses("numeric", "42") && !key_parses("numeric", "4.2"));
        assert!(key_parses("uuid", "00000000-0000-4000-8000-000000000001"));
        assert!(!key_parses("uuid", "not-a-uuid"));
        assert!(key_parses("timestamptz", "2026-12-04 17:05:30.123456+00"));
        assert!(!key_parses("timestamptz", "yesterday'"));
        assert!(key_parses("text", "anything at all"));
        assert!(
            key_parses("bytea", "\\x00ff")
                && !key_parses("bytea", "\\x0")
                && !key_parses("bytea", "00ff")
        );
    }
}
