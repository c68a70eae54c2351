//! Column-wise bulk SQL: rows are turned into one array per column and written with a single `UNNEST` statement,
//! the fastest way to write many rows short of COPY (and unlike COPY it can upsert).

use alloy::primitives::{Address, B256, U256};
use sqlx::{Postgres, Row, Transaction, postgres::PgRow};

/// How a column travels: the array type `UNNEST` reads and the expression that converts it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Bytes,
    /// Decimal strings, cast to NUMERIC.
    Numeric,
    Text,
    /// BIGINT.
    Int,
    /// INTEGER: travels as int8 in arrays, but `COPY` in binary wants the column's own width.
    Int4,
    /// SMALLINT, likewise.
    Int2,
    Bool,
    /// Unix seconds, converted with `to_timestamp`.
    Time,
    Json,
    /// BYTEA[]: a [`Value::Array`] of [`Value::Bytes`].
    BytesArray,
    /// INTEGER[]: a [`Value::Array`] of [`Value::Int`].
    Int4Array,
    /// NUMERIC[]: a [`Value::Array`] of [`Value::Numeric`].
    NumericArray,
}

impl Kind {
    fn array_type(self) -> &'static str {
        match self {
            Self::Bytes => "bytea[]",
            Self::Numeric | Self::Text => "text[]",
            Self::Int | Self::Int4 | Self::Int2 | Self::Time => "int8[]",
            Self::Bool => "bool[]",
            Self::Json => "jsonb[]",
            // `UNNEST` cannot take an array per row (a 2-D array is one flat set of elements): each row's array
            // travels as its array literal, cast back in `write_expr`.
            Self::BytesArray | Self::Int4Array | Self::NumericArray => "text[]",
        }
    }

    /// The expression that turns the unnested column `u.name` into the table's type.
    fn write_expr(self, name: &str) -> String {
        match self {
            Self::Numeric => format!("u.{name}::numeric"),
            Self::Time => format!("to_timestamp(u.{name})"),
            Self::BytesArray => format!("u.{name}::bytea[]"),
            Self::Int4Array => format!("u.{name}::int4[]"),
            Self::NumericArray => format!("u.{name}::numeric[]"),
            _ => format!("u.{name}"),
        }
    }

    /// The expression that reads the table's column `name` back in this kind.
    fn read_expr(self, name: &str) -> String {
        match self {
            Self::Numeric => format!("{name}::text"),
            Self::Time => format!("extract(epoch FROM {name})::int8"),
            // INTEGER columns (durations, log indexes) read back as int8 like BIGINT ones.
            Self::Int | Self::Int4 | Self::Int2 => format!("{name}::int8"),
            Self::Int4Array => format!("{name}::int8[]"),
            Self::NumericArray => format!("{name}::text[]"),
            _ => name.to_owned(),
        }
    }
}

/// One cell.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Bytes(Vec<u8>),
    Numeric(String),
    Text(String),
    Int(i64),
    Bool(bool),
    Time(i64),
    Json(serde_json::Value),
    /// The elements of an array column, none of them `Null`.
    Array(Vec<Value>),
    Null,
}

impl From<Address> for Value {
    fn from(a: Address) -> Self {
        Self::Bytes(a.to_vec())
    }
}

impl From<B256> for Value {
    fn from(h: B256) -> Self {
        Self::Bytes(h.to_vec())
    }
}

impl From<U256> for Value {
    fn from(v: U256) -> Self {
        Self::Numeric(v.to_string())
    }
}

impl From<Option<Address>> for Value {
    fn from(a: Option<Address>) -> Self {
        a.map_or(Self::Null, Self::from)
    }
}

impl Value {
    pub(crate) fn address(self) -> Address {
        match self {
            Self::Bytes(b) if b.len() == 20 => Address::from_slice(&b),
            other => panic!("expected an address, found {other:?}"),
        }
    }

    pub(crate) fn opt_address(self) -> Option<Address> {
        match self {
            Self::Null => None,
            other => Some(other.address()),
        }
    }

    pub(crate) fn b256(self) -> B256 {
        match self {
            Self::Bytes(b) if b.len() == 32 => B256::from_slice(&b),
            other => panic!("expected a 32-byte hash, found {other:?}"),
        }
    }

    pub(crate) fn u256(self) -> U256 {
        match self {
            Self::Numeric(s) => s.parse().expect("NUMERIC(78,0) parses as U256"),
            other => panic!("expected a number, found {other:?}"),
        }
    }

    pub(crate) fn int(self) -> i64 {
        match self {
            Self::Int(v) | Self::Time(v) => v,
            other => panic!("expected an integer, found {other:?}"),
        }
    }

    pub(crate) fn opt_time(self) -> Option<i64> {
        match self {
            Self::Null => None,
            other => Some(other.int()),
        }
    }

    pub(crate) fn text(self) -> String {
        match self {
            Self::Text(s) => s,
            other => panic!("expected text, found {other:?}"),
        }
    }

    pub(crate) fn array(self) -> Vec<Value> {
        match self {
            Self::Array(v) => v,
            other => panic!("expected an array, found {other:?}"),
        }
    }

    /// The array literal Postgres reads back as an array of this kind's elements (`{\\x01ab,\\x02cd}`, `{1,2}`).
    fn array_literal(&self) -> Option<String> {
        let Self::Array(elements) = self else { return None };
        let mut out = String::from("{");
        for (i, e) in elements.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match e {
                // `\\` is a backslash inside an array literal; bytea reads `\x` + hex.
                Self::Bytes(b) => {
                    out.push_str("\\\\x");
                    for byte in b {
                        out.push_str(&format!("{byte:02x}"));
                    }
                }
                Self::Int(i) => out.push_str(&i.to_string()),
                Self::Numeric(n) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => {
                    out.push_str(n)
                }
                _ => return None,
            }
        }
        out.push('}');
        Some(out)
    }

    pub(crate) fn bool(self) -> bool {
        match self {
            Self::Bool(b) => b,
            other => panic!("expected a bool, found {other:?}"),
        }
    }
}

/// Unix seconds clamped into Postgres' timestamp range (a contract may hold `type(uint64).max`).
pub(crate) fn clamp_time(seconds: impl TryInto<i64>) -> i64 {
    /// 9999-12-31T23:59:59Z.
    const MAX: i64 = 253_402_300_799;
    seconds.try_into().map_or(MAX, |s: i64| s.min(MAX))
}

/// Column arrays under construction.
pub(crate) struct Columns {
    kinds: Vec<Kind>,
    columns: Vec<Vec<Value>>,
}

impl Columns {
    pub(crate) fn new(kinds: impl IntoIterator<Item = Kind>) -> Self {
        let kinds: Vec<Kind> = kinds.into_iter().collect();
        let columns = kinds.iter().map(|_| Vec::new()).collect();
        Self { kinds, columns }
    }

    pub(crate) fn push(&mut self, row: impl IntoIterator<Item = Value>) {
        let mut n = 0;
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
            n += 1;
        }
        debug_assert_eq!(n, self.kinds.len(), "row width");
    }

    pub(crate) fn len(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// `$first::type[], ...` for the UNNEST of these columns, numbered from `first`.
    pub(crate) fn unnest_params(&self, first: usize) -> String {
        self.kinds
            .iter()
            .enumerate()
            .map(|(i, k)| format!("${}::{}", first + i, k.array_type()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Binds every column to `query`, in order.
    pub(crate) fn bind<'q>(
        self,
        mut query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        for (kind, column) in self.kinds.into_iter().zip(self.columns) {
            query = match kind {
                Kind::Bytes => query.bind(
                    column
                        .into_iter()
                        .map(|v| match v {
                            Value::Bytes(b) => Some(b),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Kind::Numeric | Kind::Text => query.bind(
                    column
                        .into_iter()
                        .map(|v| match v {
                            Value::Numeric(s) | Value::Text(s) => Some(s),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Kind::Int | Kind::Int4 | Kind::Int2 | Kind::Time => query.bind(
                    column
                        .into_iter()
                        .map(|v| match v {
                            Value::Int(i) | Value::Time(i) => Some(i),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Kind::Bool => query.bind(
                    column
                        .into_iter()
                        .map(|v| match v {
                            Value::Bool(b) => Some(b),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Kind::Json => query.bind(
                    column
                        .into_iter()
                        .map(|v| match v {
                            Value::Json(j) => Some(j),
                            _ => None,
                        })
                        .collect::<Vec<_>>(),
                ),
                Kind::BytesArray | Kind::Int4Array | Kind::NumericArray => query
                    .bind(column.iter().map(Value::array_literal).collect::<Vec<Option<String>>>()),
            };
        }
        query
    }
}

/// `SELECT exprs FROM UNNEST($first..) AS u(names)`: the bound arrays of `schema` as rows of the table's types.
pub(crate) fn unnest_select(schema: &[(&str, Kind)], first: usize) -> String {
    let names = schema.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let exprs = schema
        .iter()
        .map(|(n, k)| format!("{} AS {n}", k.write_expr(n)))
        .collect::<Vec<_>>()
        .join(", ");
    let params = schema
        .iter()
        .enumerate()
        .map(|(i, (_, k))| format!("${}::{}", first + i, k.array_type()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {exprs} FROM UNNEST({params}) AS u({names})")
}

/// A table's columns as (name, kind).
pub(crate) type Schema = &'static [(&'static str, Kind)];

/// `INSERT INTO table (chain_id, cols) SELECT $1, exprs FROM UNNEST(...) AS u(cols)` followed by `tail`.
pub(crate) async fn insert_unnest(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    chain_id: i64,
    schema: &[(&str, Kind)],
    columns: Columns,
    tail: &str,
) -> sqlx::Result<()> {
    if columns.len() == 0 {
        return Ok(());
    }
    let names = schema.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let exprs = schema.iter().map(|(n, k)| k.write_expr(n)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "INSERT INTO {table} (chain_id, {names}) SELECT $1, {exprs} FROM UNNEST({params}) AS u({names}) {tail}",
        params = columns.unnest_params(2)
    );
    columns.bind(sqlx::query(&sql).bind(chain_id)).execute(&mut **tx).await?;
    Ok(())
}

/// The select list that reads `schema` back as [`Value`]s with [`read_row`].
pub(crate) fn select_list(schema: &[(&str, Kind)]) -> String {
    schema.iter().map(|(n, k)| k.read_expr(n)).collect::<Vec<_>>().join(", ")
}

/// Reads the columns of `schema` from `row`, starting at column `offset`.
pub(crate) fn read_row(
    row: &PgRow,
    offset: usize,
    schema: &[(&str, Kind)],
) -> sqlx::Result<Vec<Value>> {
    schema
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let i = offset + i;
            Ok(match kind {
                Kind::Bytes => {
                    row.try_get::<Option<Vec<u8>>, _>(i)?.map_or(Value::Null, Value::Bytes)
                }
                Kind::Numeric => {
                    row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::Numeric)
                }
                Kind::Text => row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::Text),
                Kind::Int | Kind::Int4 | Kind::Int2 => {
                    row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int)
                }
                Kind::Time => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Time),
                Kind::Bool => row.try_get::<Option<bool>, _>(i)?.map_or(Value::Null, Value::Bool),
                Kind::Json => {
                    row.try_get::<Option<serde_json::Value>, _>(i)?.map_or(Value::Null, Value::Json)
                }
                Kind::BytesArray => {
                    row.try_get::<Option<Vec<Vec<u8>>>, _>(i)?.map_or(Value::Null, |a| {
                        Value::Array(a.into_iter().map(Value::Bytes).collect())
                    })
                }
                Kind::Int4Array => row
                    .try_get::<Option<Vec<i64>>, _>(i)?
                    .map_or(Value::Null, |a| Value::Array(a.into_iter().map(Value::Int).collect())),
                Kind::NumericArray => {
                    row.try_get::<Option<Vec<String>>, _>(i)?.map_or(Value::Null, |a| {
                        Value::Array(a.into_iter().map(Value::Numeric).collect())
                    })
                }
            })
        })
        .collect()
}

/// Bytes of COPY data sent per message: large enough to amortise the message, small enough that the server parses
/// one chunk while the next is encoded.
const COPY_CHUNK: usize = 1 << 20;

/// `COPY table (chain_id, cols) FROM STDIN` in binary format: the fastest way to append rows (the server neither
/// parses hex, decimals nor dates), several times an `UNNEST` insert's rate into an indexed table. Appends only: a
/// row that collides with an existing key fails the whole statement, and so the transaction, instead of being
/// skipped. Callers write only rows that cannot exist yet.
pub(crate) async fn copy_in(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    chain_id: i64,
    schema: &[(&str, Kind)],
    columns: Columns,
) -> sqlx::Result<()> {
    let rows = columns.len();
    if rows == 0 {
        return Ok(());
    }
    let names = schema.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let fields = i16::try_from(schema.len() + 1).expect("a table has few columns");
    let mut buf: Vec<u8> = Vec::with_capacity(COPY_CHUNK + 4096);
    // Signature, flags, header extension length.
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0i32.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
    let mut copy = tx
        .copy_in_raw(&format!("COPY {table} (chain_id, {names}) FROM STDIN (FORMAT binary)"))
        .await?;
    for row in 0..rows {
        buf.extend_from_slice(&fields.to_be_bytes());
        buf.extend_from_slice(&8i32.to_be_bytes());
        buf.extend_from_slice(&chain_id.to_be_bytes());
        for (kind, column) in columns.kinds.iter().zip(&columns.columns) {
            if let Err(reason) = put_binary(&mut buf, *kind, &column[row]) {
                copy.abort(reason.clone()).await?;
                return Err(sqlx::Error::Encode(format!("{table}: {reason}").into()));
            }
        }
        if buf.len() >= COPY_CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    copy.send(buf.as_slice()).await?;
    copy.finish().await?;
    Ok(())
}

/// Seconds from the Unix epoch to Postgres' (2000-01-01).
const PG_EPOCH: i64 = 946_684_800;

/// Appends one field of binary COPY: its length, then the value in the column type's binary format.
fn put_binary(buf: &mut Vec<u8>, kind: Kind, value: &Value) -> Result<(), String> {
    fn field(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<(), String> {
        let len = i32::try_from(bytes.len()).map_err(|_| "value too large".to_owned())?;
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(bytes);
        Ok(())
    }
    match (kind, value) {
        (_, Value::Null) => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        (Kind::Bytes, Value::Bytes(b)) => field(buf, b)?,
        (Kind::Numeric, Value::Numeric(s)) => put_numeric(buf, s)?,
        (Kind::Text, Value::Text(s)) => field(buf, s.as_bytes())?,
        (Kind::Int, Value::Int(i)) => field(buf, &i.to_be_bytes())?,
        (Kind::Int4, Value::Int(i)) => {
            let i = i32::try_from(*i).map_err(|_| format!("{i} does not fit an INTEGER"))?;
            field(buf, &i.to_be_bytes())?
        }
        (Kind::Int2, Value::Int(i)) => {
            let i = i16::try_from(*i).map_err(|_| format!("{i} does not fit a SMALLINT"))?;
            field(buf, &i.to_be_bytes())?
        }
        (Kind::Bool, Value::Bool(b)) => field(buf, &[u8::from(*b)])?,
        // Microseconds since 2000-01-01 UTC; clamped seconds stay far inside i64.
        (Kind::Time, Value::Time(t)) => field(buf, &((t - PG_EPOCH) * 1_000_000).to_be_bytes())?,
        // jsonb: a version byte, then the JSON text.
        (Kind::Json, Value::Json(j)) => {
            let text = j.to_string();
            buf.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
            buf.push(1);
            buf.extend_from_slice(text.as_bytes());
        }
        (Kind::Json, Value::Text(text)) => {
            buf.extend_from_slice(&(text.len() as i32 + 1).to_be_bytes());
            buf.push(1);
            buf.extend_from_slice(text.as_bytes());
        }
        (Kind::BytesArray, Value::Array(a)) => put_array(buf, BYTEA_OID, Kind::Bytes, a)?,
        (Kind::Int4Array, Value::Array(a)) => put_array(buf, INT4_OID, Kind::Int4, a)?,
        (Kind::NumericArray, Value::Array(a)) => put_array(buf, NUMERIC_OID, Kind::Numeric, a)?,
        (kind, value) => return Err(format!("a {kind:?} column cannot hold {value:?}")),
    }
    Ok(())
}

/// Element type OIDs: binary COPY of an array names its element type, which must be the column's.
const BYTEA_OID: u32 = 17;
const INT4_OID: u32 = 23;
const NUMERIC_OID: u32 = 1700;

/// A one-dimensional array in binary format: dimensions, has-nulls flag, element type, then (per dimension) length
/// and lower bound 1, then each element as a field of `element` (an empty array has no dimension).
fn put_array(buf: &mut Vec<u8>, oid: u32, element: Kind, values: &[Value]) -> Result<(), String> {
    let mut body = Vec::new();
    let dims = i32::from(!values.is_empty());
    body.extend_from_slice(&dims.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&oid.to_be_bytes());
    if !values.is_empty() {
        let len = i32::try_from(values.len()).map_err(|_| "array too long".to_owned())?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&1i32.to_be_bytes());
    }
    for v in values {
        if matches!(v, Value::Null | Value::Array(_)) {
            return Err(format!("an array element cannot be {v:?}"));
        }
        put_binary(&mut body, element, v)?;
    }
    let len = i32::try_from(body.len()).map_err(|_| "value too large".to_owned())?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    Ok(())
}

/// A non-negative decimal integer in NUMERIC's binary format: digit count, weight (of the first base-10,000 digit),
/// sign, display scale, then the base-10,000 digits, most significant first, without trailing zero digits.
fn put_numeric(buf: &mut Vec<u8>, decimal: &str) -> Result<(), String> {
    if decimal.is_empty() || !decimal.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{decimal:?} is not a non-negative integer"));
    }
    let s = decimal.trim_start_matches('0');
    let mut digits: Vec<i16> = Vec::with_capacity(s.len() / 4 + 1);
    let mut end = match s.len() % 4 {
        0 => 4,
        head => head,
    };
    let mut start = 0;
    while start < s.len() {
        digits.push(s[start..end].parse().expect("ascii digits"));
        start = end;
        end += 4;
    }
    let weight = digits.len() as i16 - 1;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    let weight = if digits.is_empty() { 0 } else { weight };
    buf.extend_from_slice(&(8 + 2 * digits.len() as i32).to_be_bytes());
    buf.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    buf.extend_from_slice(&weight.to_be_bytes());
    buf.extend_from_slice(&0u16.to_be_bytes()); // positive
    buf.extend_from_slice(&0u16.to_be_bytes()); // scale 0
    for d in digits {
        buf.extend_from_slice(&d.to_be_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use beatstream_testkit::TestDb;

    /// A row of the test table as read back.
    type Copied = (i64, String, i64, Option<Vec<u8>>, i64, i32, i16, String, String, bool);

    /// Every kind, edge values included, written with binary COPY and read back as Postgres prints them.
    #[tokio::test]
    async fn binary_copy_round_trips() -> eyre::Result<()> {
        let db = TestDb::new().await?;
        let mut tx = db.pool().begin().await?;
        sqlx::query(
            "CREATE TEMP TABLE copied (chain_id BIGINT, n NUMERIC(78, 0), t TIMESTAMPTZ, b BYTEA, \
             i8 BIGINT, i4 INTEGER, i2 SMALLINT, x TEXT, j JSONB, f BOOL) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;
        let schema: &[(&str, Kind)] = &[
            ("n", Kind::Numeric),
            ("t", Kind::Time),
            ("b", Kind::Bytes),
            ("i8", Kind::Int),
            ("i4", Kind::Int4),
            ("i2", Kind::Int2),
            ("x", Kind::Text),
            ("j", Kind::Json),
            ("f", Kind::Bool),
        ];
        let numbers = [
            "0".to_owned(),
            "1".into(),
            "9999".into(),
            "10000".into(),
            "100000000".into(),
            "123456789012".into(),
            "0007".into(),
            U256::MAX.to_string(),
        ];
        let mut cols = Columns::new(schema.iter().map(|(_, k)| *k));
        for (i, n) in numbers.iter().enumerate() {
            let odd = i % 2 == 1;
            cols.push([
                Value::Numeric(n.clone()),
                Value::Time(if odd { 0 } else { clamp_time(u64::MAX) - i as i64 }),
                if odd { Value::Null } else { Value::Bytes(vec![0, i as u8, 0xff]) },
                Value::Int(if odd { i64::MIN } else { i64::MAX }),
                Value::Int(if odd { -(i as i64) } else { i64::from(i32::MAX) }),
                Value::Int(i as i64),
                Value::Text(format!("tab\tbackslash\\ newline\n é {i}")),
                if odd {
                    Value::Text(format!("{{\"k\": [{i}, \"v\"]}}"))
                } else {
                    Value::Json(serde_json::json!({ "k": [i, "v"] }))
                },
                Value::Bool(odd),
            ]);
        }
        copy_in(&mut tx, "copied", 7, schema, cols).await?;
        let rows: Vec<Copied> = sqlx::query_as(
            "SELECT chain_id, n::text, extract(epoch FROM t)::int8, b, i8, i4, i2, x, j::text, f \
                 FROM copied ORDER BY i2",
        )
        .fetch_all(&mut *tx)
        .await?;
        assert_eq!(rows.len(), numbers.len());
        for (i, row) in rows.into_iter().enumerate() {
            let odd = i % 2 == 1;
            assert_eq!(row.0, 7);
            assert_eq!(row.1, numbers[i].trim_start_matches('0').parse::<U256>()?.to_string());
            assert_eq!(row.2, if odd { 0 } else { clamp_time(u64::MAX) - i as i64 });
            assert_eq!(row.3, (!odd).then(|| vec![0, i as u8, 0xff]));
            assert_eq!(row.4, if odd { i64::MIN } else { i64::MAX });
            assert_eq!(row.5, if odd { -(i as i32) } else { i32::MAX });
            assert_eq!(row.6, i as i16);
            assert_eq!(row.7, format!("tab\tbackslash\\ newline\n é {i}"));
            assert_eq!(row.8, format!("{{\"k\": [{i}, \"v\"]}}"));
            assert_eq!(row.9, odd);
        }
        Ok(())
    }

    /// Array columns, empty ones included, written with binary COPY and with an `UNNEST` insert, read back with
    /// `read_row` as they were written.
    #[tokio::test]
    async fn arrays_round_trip_through_copy_and_unnest() -> eyre::Result<()> {
        let db = TestDb::new().await?;
        let mut tx = db.pool().begin().await?;
        sqlx::query(
            "CREATE TEMP TABLE arrays (chain_id BIGINT, k INTEGER, b BYTEA[], i INTEGER[], \
             n NUMERIC(78, 0)[]) ON COMMIT DROP",
        )
        .execute(&mut *tx)
        .await?;
        let schema: &[(&str, Kind)] = &[
            ("k", Kind::Int4),
            ("b", Kind::BytesArray),
            ("i", Kind::Int4Array),
            ("n", Kind::NumericArray),
        ];
        let rows = |first: i64| {
            vec![
                vec![
                    Value::Int(first),
                    Value::Array(vec![
                        Value::Bytes(vec![0x00, 0x5c, 0x7b, 0x22, 0xff]),
                        Value::Bytes(vec![]),
                        Value::from(Address::repeat_byte(0xab)),
                    ]),
                    Value::Array(vec![
                        Value::Int(1),
                        Value::Int(9_999),
                        Value::Int(i64::from(i32::MAX)),
                    ]),
                    Value::Array(vec![
                        Value::Numeric("0".into()),
                        Value::Numeric("10000".into()),
                        Value::Numeric(U256::MAX.to_string()),
                    ]),
                ],
                vec![
                    Value::Int(first + 1),
                    Value::Array(vec![]),
                    Value::Array(vec![]),
                    Value::Array(vec![]),
                ],
            ]
        };
        let mut copied = Columns::new(schema.iter().map(|(_, k)| *k));
        let mut unnested = Columns::new(schema.iter().map(|(_, k)| *k));
        for row in rows(0) {
            copied.push(row);
        }
        for row in rows(2) {
            unnested.push(row);
        }
        copy_in(&mut tx, "arrays", 7, schema, copied).await?;
        insert_unnest(&mut tx, "arrays", 7, schema, unnested, "").await?;
        let read = sqlx::query(&format!("SELECT {} FROM arrays ORDER BY k", select_list(schema)))
            .fetch_all(&mut *tx)
            .await?;
        let read: Vec<Vec<Value>> =
            read.iter().map(|r| read_row(r, 0, schema)).collect::<sqlx::Result<_>>()?;
        let mut expected = rows(0);
        expected.extend(rows(2));
        assert_eq!(read, expected);
        let n: Vec<String> =
            sqlx::query_scalar("SELECT n::text FROM arrays ORDER BY k").fetch_all(&mut *tx).await?;
        assert_eq!(n[0], format!("{{0,10000,{}}}", U256::MAX));
        assert_eq!(n[1], "{}");
        Ok(())
    }

    #[test]
    fn rejects_what_a_column_cannot_hold() {
        let mut buf = Vec::new();
        assert!(put_binary(&mut buf, Kind::Int2, &Value::Int(40_000)).is_err());
        assert!(put_binary(&mut buf, Kind::Numeric, &Value::Numeric("-1".into())).is_err());
        assert!(put_binary(&mut buf, Kind::Bytes, &Value::Int(1)).is_err());
        let nested = Value::Array(vec![Value::Array(vec![])]);
        assert!(put_binary(&mut buf, Kind::NumericArray, &nested).is_err());
        assert!(put_binary(&mut buf, Kind::Int4Array, &Value::Array(vec![Value::Null])).is_err());
        assert_eq!(Value::Array(vec![Value::Numeric("-1".into())]).array_literal(), None);
    }
}
