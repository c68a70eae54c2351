//! Tips (`vault_tips`, migration 0015) and the supporters of an artist: listeners ranked by what they paid it.

use sqlx::{Row, postgres::PgRow};

use super::{
    list::{Bind, Filter, List, ListQuery},
    pool::{Db, b, i, s},
};

/// A `vault_tips` row, and the artist its payee belongs to.
#[derive(Clone, Debug)]
pub(crate) struct TipRow {
    pub(crate) block_number: i64,
    pub(crate) block_time: i64,
    pub(crate) tx_hash: Vec<u8>,
    pub(crate) log_index: i64,
    pub(crate) grant_id: Vec<u8>,
    pub(crate) listener: Vec<u8>,
    pub(crate) payee: Vec<u8>,
    pub(crate) tip_id: String,
    pub(crate) amount: String,
    pub(crate) fee: String,
    pub(crate) net: String,
    /// The bytes as signed.
    pub(crate) message: Vec<u8>,
    /// The artist whose split payee (or, failing that, `addr` record) the payee is.
    pub(crate) artist_node: Option<Vec<u8>>,
}

const SELECT: &str =
    "t.block_number, extract(epoch FROM t.block_time)::int8 AS block_time, t.tx_hash,
     t.log_index::int8 AS log_index, t.grant_id, t.listener, t.payee, t.tip_id::text AS tip_id,
     t.amount::text AS amount, t.fee::text AS fee, (t.amount - t.fee)::text AS net, t.message,
     coalesce((SELECT sp.node FROM splits sp WHERE sp.chain_id = t.chain_id AND sp.split = t.payee),
              (SELECT a.node FROM artists a WHERE a.chain_id = t.chain_id AND a.addr = t.payee
               ORDER BY a.registered_block, a.node LIMIT 1)) AS artist_node";

/// The payees of the artist whose node the filter binds: its `addr` record and every split version's payee.
const TO_ARTIST: &str = "t.payee IN (SELECT p.payee FROM artists a,
     LATERAL (SELECT a.addr UNION ALL
              SELECT sp.split FROM splits sp WHERE sp.chain_id = a.chain_id AND sp.node = a.node) p (payee)
     WHERE a.chain_id = t.chain_id AND a.node =";

/// Which tips a list holds.
#[derive(Clone, Debug)]
pub(crate) enum TipFilter {
    /// Paid to the artist at this node (to its address or to any of its split payees).
    ToArtist(Vec<u8>),
    /// Sent by this listener.
    From(Vec<u8>),
}

/// Tips matching `filter` in chain order, newest first when `newest`.
pub(crate) fn list(db: &Db, filter: TipFilter, newest: bool) -> List<TipRow> {
    let filter = match filter {
        TipFilter::ToArtist(node) => Filter::enclosed(TO_ARTIST, Bind::Bytes(node), ")"),
        TipFilter::From(listener) => Filter::new("t.listener =", Bind::Bytes(listener)),
    };
    let query = ListQuery {
        select: SELECT,
        from: "vault_tips t",
        base: "t.chain_id = $1",
        chain_id: db.chain_id,
        filters: vec![filter],
        keys: &[("t.block_number", "int8"), ("t.log_index", "int4")],
        descending: newest,
    };
    List::new(query, tip_node)
}

fn tip_node(row: &PgRow) -> sqlx::Result<(TipRow, Vec<String>)> {
    let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
    let node = TipRow {
        block_number: block,
        block_time: i(row, "block_time")?,
        tx_hash: b(row, "tx_hash")?,
        log_index: log,
        grant_id: b(row, "grant_id")?,
        listener: b(row, "listener")?,
        payee: b(row, "payee")?,
        tip_id: s(row, "tip_id")?,
        amount: s(row, "amount")?,
        fee: s(row, "fee")?,
        net: s(row, "net")?,
        message: b(row, "message")?,
        artist_node: row.try_get("artist_node")?,
    };
    Ok((node, vec![block.to_string(), log.to_string()]))
}

/// What one listener paid one artist.
#[derive(Clone, Debug)]
pub(crate) struct SupporterRow {
    pub(crate) listener: Vec<u8>,
    /// Settled to the artist's payees (amounts before the fee).
    pub(crate) streamed: String,
    /// Tips to the artist's payees (amounts before the fee).
    pub(crate) tipped: String,
    pub(crate) total: String,
    pub(crate) tips: i64,
}

/// Per (artist, listener): what it settled (its settled cumulative per grant and payee, `settled_pairs`: one row
/// per pair, not per settlement) and tipped to the artist's payees (its `addr` record, its split payees). The outer
/// filter on `x.node` is pushed down through the grouping and the unions to the artist's payees.
const SUPPORT: &str = "(SELECT y.chain_id, y.node, y.listener, sum(y.streamed) AS streamed,
         sum(y.tipped) AS tipped, sum(y.streamed + y.tipped) AS total, count(*) FILTER (WHERE y.tip) AS tips
     FROM (SELECT s.chain_id, p.node, s.listener, s.cumulative AS streamed, 0::numeric AS tipped, false AS tip
           FROM settled_pairs s JOIN (
               SELECT a.chain_id, a.node, a.addr AS payee FROM artists a WHERE a.addr IS NOT NULL
               UNION SELECT sp.chain_id, sp.node, sp.split FROM splits sp
           ) p ON p.chain_id = s.chain_id AND p.payee = s.payee
           UNION ALL
           SELECT t.chain_id, p.node, t.listener, 0, t.amount, true
           FROM vault_tips t JOIN (
               SELECT a.chain_id, a.node, a.addr AS payee FROM artists a WHERE a.addr IS NOT NULL
               UNION SELECT sp.chain_id, sp.node, sp.split FROM splits sp
           ) p ON p.chain_id = t.chain_id AND p.payee = t.payee
     ) y GROUP BY y.chain_id, y.node, y.listener) x";

/// The listeners who paid the artist at `node`, most first (ties: the higher address first).
pub(crate) fn supporters(db: &Db, node: Vec<u8>) -> List<SupporterRow> {
    let query = ListQuery {
        select: "x.listener, x.streamed::text AS streamed, x.tipped::text AS tipped, x.total::text AS total,
                 x.tips",
        from: SUPPORT,
        base: "x.chain_id = $1",
        chain_id: db.chain_id,
        filters: vec![Filter::new("x.node =", Bind::Bytes(node))],
        keys: &[("x.total", "numeric"), ("x.listener", "bytea")],
        descending: true,
    };
    List::new(query, |row| {
        let node = SupporterRow {
            listener: b(row, "listener")?,
            streamed: s(row, "streamed")?,
            tipped: s(row, "tipped")?,
            total: s(row, "total")?,
            tips: i(row, "tips")?,
        };
        let key = vec![node.total.clone(), format!("\\x{}", alloy::hex::encode(&node.listener))];
        Ok((node, key))
    })
}
