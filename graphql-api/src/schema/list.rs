//! Relay connections over keyset pagination: every list orders by indexed columns and pages by comparing row
//! values with the cursor's, so page 10,000 costs what page 1 costs (no OFFSET).

use async_graphql::{
    Context, Object, OutputType, Result,
    connection::{Connection, CursorType, Edge, query},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sqlx::{PgPool, Postgres, QueryBuilder, postgres::PgRow};

/// Largest page: `first` or `last` above it is an error.
pub(crate) const MAX_PAGE: usize = 1_000;
/// Page size when neither `first` nor `last` is given.
pub(crate) const DEFAULT_PAGE: usize = 100;

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

/// A value bound into a filter.
#[derive(Clone, Debug)]
pub(crate) enum Bind {
    Bytes(Vec<u8>),
    Int(i64),
    Text(String),
    /// Text bound as `$n::<cast>` (numeric ids, UUIDs), so the column's index is used.
    Cast(String, &'static str),
}

/// One `AND <expr> $n` condition (the expression ends with its operator, e.g. `s.payee =`).
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) expr: &'static str,
    pub(crate) value: Bind,
}

impl Filter {
    pub(crate) fn new(expr: &'static str, value: Bind) -> Self {
        Self { expr, value }
    }
}

/// A list query: `SELECT <select> FROM <from> WHERE <chain filter> AND <filters> AND <window> ORDER BY <keys>`.
#[derive(Clone, Debug)]
pub(crate) struct ListQuery {
    pub(crate) select: &'static str,
    pub(crate) from: &'static str,
    /// Always-on condition with `$1` bound to the chain id (or `true`).
    pub(crate) base: &'static str,
    pub(crate) chain_id: i64,
    pub(crate) filters: Vec<Filter>,
    /// Key columns with the SQL cast of their cursor text, e.g. `("s.block_number", "int8")`. Together unique.
    pub(crate) keys: &'static [(&'static str, &'static str)],
    /// Newest (largest key) first.
    pub(crate) descending: bool,
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
        }
    }

    fn push_key_cmp(
        &self,
        qb: &mut QueryBuilder<'static, Postgres>,
        op: &str,
        cursor: &Cursor,
    ) -> Result<()> {
        if cursor.0.len() != self.keys.len() {
            return Err("invalid cursor".into());
        }
        let cols: Vec<&str> = self.keys.iter().map(|(c, _)| *c).collect();
        qb.push(" AND (").push(cols.join(", ")).push(") ").push(op).push(" (");
        for (i, ((_, cast), value)) in self.keys.iter().zip(&cursor.0).enumerate() {
            if i > 0 {
                qb.push(", ");
            }
            qb.push_bind(value.clone()).push("::").push(*cast);
        }
        qb.push(")");
        Ok(())
    }

    /// `totalCount` of the filtered list, ignoring the page.
    pub(crate) async fn count(&self, pool: &PgPool) -> Result<i64> {
        let mut qb = QueryBuilder::new("SELECT count(*)");
        self.push_where(&mut qb);
        Ok(qb.build_query_scalar().fetch_one(pool).await?)
    }
}

/// `totalCount`, computed only when the query asks for it.
pub(crate) struct TotalCount(ListQuery);

#[Object]
impl TotalCount {
    /// Rows matching the filter, over all pages. Costs a count query: ask only when shown.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        self.0.count(&ctx.data_unchecked::<crate::schema::Api>().pool).await
    }
}

/// A page of a Relay connection.
pub(crate) type Page<T> = Connection<Cursor, T, TotalCount>;

/// Runs `list` for the page the Relay arguments ask for; `node` turns a row into a node and its key values.
pub(crate) async fn page<T, F>(
    pool: &PgPool,
    list: ListQuery,
    (after, before, first, last): (Option<String>, Option<String>, Option<i32>, Option<i32>),
    node: F,
) -> Result<Page<T>>
where
    T: OutputType,
    F: Fn(&PgRow) -> Result<(T, Vec<String>)> + Send + Sync,
{
    for n in [first, last].into_iter().flatten() {
        if n < 0 || n as usize > MAX_PAGE {
            return Err(format!("first and last must be between 0 and {MAX_PAGE}").into());
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
            // Walking backward reverses the order; the page is flipped back below.
            let descending = list.descending != backward;
            let (past, upto) = if list.descending { ("<", ">") } else { (">", "<") };
            let mut qb = QueryBuilder::new("SELECT ");
            qb.push(list.select);
            list.push_where(&mut qb);
            if let Some(after) = &after {
                list.push_key_cmp(&mut qb, past, after)?;
            }
            if let Some(before) = &before {
                list.push_key_cmp(&mut qb, upto, before)?;
            }
            let dir = if descending { " DESC" } else { " ASC" };
            let order: Vec<String> = list.keys.iter().map(|(c, _)| format!("{c}{dir}")).collect();
            qb.push(" ORDER BY ")
                .push(order.join(", "))
                .push(" LIMIT ")
                .push_bind((limit + 1) as i64);
            let rows = qb.build().fetch_all(pool).await?;
            let more = rows.len() > limit;
            let mut nodes = Vec::with_capacity(limit.min(rows.len()));
            for row in rows.iter().take(limit) {
                nodes.push(node(row)?);
            }
            if backward {
                nodes.reverse();
            }
            let (has_previous, has_next) =
                if backward { (more, before.is_some()) } else { (after.is_some(), more) };
            let mut connection =
                Connection::with_additional_fields(has_previous, has_next, TotalCount(list));
            connection.edges.extend(nodes.into_iter().map(|(n, key)| Edge::new(Cursor(key), n)));
            Ok::<_, async_graphql::Error>(connection)
        },
    )
    .await
}
