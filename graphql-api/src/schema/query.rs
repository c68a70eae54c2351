//! The query root, and the SQL behind lists, rankings and series.

use async_graphql::{Context, Enum, InputObject, Object, Result};
use sqlx::{Row, postgres::PgRow};

use super::{
    Api,
    list::{Bind, Filter, ListQuery, Page, page},
    types::*,
};

/// Order of event lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum)]
pub(crate) enum EventOrder {
    /// Newest first (by block, then log index).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
}

/// Order of artist lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enum)]
pub(crate) enum ArtistOrder {
    /// Alphabetical by name.
    #[default]
    Name,
    /// Most recently registered first.
    Newest,
}

/// Filter of `settlements`.
#[derive(Clone, Debug, Default, InputObject)]
pub(crate) struct SettlementWhere {
    /// Paid by this listener.
    pub(crate) listener: Option<String>,
    /// Paid to this payee address.
    pub(crate) payee: Option<String>,
    /// Under this grant.
    pub(crate) grant_id: Option<String>,
}

/// Filter of `sessions`.
#[derive(Clone, Debug, Default, InputObject)]
pub(crate) struct SessionWhere {
    /// Of this listener.
    pub(crate) listener: Option<String>,
    /// Paying this payee address.
    pub(crate) payee: Option<String>,
    /// Of this track.
    pub(crate) track_id: Option<String>,
    /// Only sessions not closed yet.
    #[graphql(default)]
    pub(crate) live: bool,
}

fn i(row: &PgRow, col: &str) -> Result<i64> {
    Ok(row.try_get::<i64, _>(col)?)
}

fn s(row: &PgRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

fn b(row: &PgRow, col: &str) -> Result<Vec<u8>> {
    Ok(row.try_get::<Vec<u8>, _>(col)?)
}

pub(crate) fn settlement_list(chain_id: i64, filters: Vec<Filter>, newest: bool) -> ListQuery {
    ListQuery {
        select: "s.block_number, extract(epoch FROM s.block_time)::int8 AS block_time, s.tx_hash,
                 s.log_index::int8 AS log_index, s.grant_id, s.listener, s.payee, s.amount::text AS amount,
                 s.fee::text AS fee, (s.amount - s.fee)::text AS net, s.cumulative::text AS cumulative",
        from: "vault_settlements s",
        base: "s.chain_id = $1",
        chain_id,
        filters,
        keys: &[("s.block_number", "int8"), ("s.log_index", "int4")],
        descending: newest,
    }
}

pub(crate) fn settlement_node(row: &PgRow) -> Result<(Settlement, Vec<String>)> {
    let payee = b(row, "payee")?;
    let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
    let node = Settlement {
        block_number: block,
        block_time: i(row, "block_time")?,
        tx_hash: hex(&b(row, "tx_hash")?),
        log_index: log,
        grant_id: hex(&b(row, "grant_id")?),
        listener: address(&b(row, "listener")?),
        payee: address(&payee),
        amount: Amount::new(&s(row, "amount")?),
        fee: Amount::new(&s(row, "fee")?),
        net: Amount::new(&s(row, "net")?),
        cumulative: Amount::new(&s(row, "cumulative")?),
        payee_bytes: payee.as_slice().try_into().unwrap_or([0; 20]),
    };
    Ok((node, vec![block.to_string(), log.to_string()]))
}

pub(crate) fn track_list(chain_id: i64, filters: Vec<Filter>) -> ListQuery {
    ListQuery {
        select: "t.track_id::text AS id, t.title, t.duration::int8 AS duration,
                 (CASE WHEN t.rate_per_second > 0 THEN t.rate_per_second ELSE a.rate_per_second END)::text AS rate,
                 t.content_hash, t.metadata_uri, t.published,
                 extract(epoch FROM t.published_at)::int8 AS published_at, t.artist_node",
        from: "tracks t JOIN artists a ON a.chain_id = t.chain_id AND a.node = t.artist_node",
        base: "t.chain_id = $1",
        chain_id,
        filters,
        keys: &[("t.track_id", "numeric")],
        descending: false,
    }
}

pub(crate) fn track_node(row: &PgRow) -> Result<(Track, Vec<String>)> {
    let id = s(row, "id")?;
    let node = Track {
        id: id.clone(),
        title: s(row, "title")?,
        duration: i(row, "duration")?,
        rate_per_second: Amount::new(&s(row, "rate")?),
        content_hash: hex(&b(row, "content_hash")?),
        metadata_uri: s(row, "metadata_uri")?,
        published: row.try_get("published")?,
        published_at: i(row, "published_at")?,
        artist_node: b(row, "artist_node")?,
    };
    Ok((node, vec![id]))
}

pub(crate) async fn track_by_id(api: &Api, id: &str) -> Result<Option<Track>> {
    Ok(api.loader.load_one(super::loaders::TrackById(id.to_owned())).await?)
}

pub(crate) fn session_list(filters: Vec<Filter>) -> ListQuery {
    // A live session's row is written when it starts, pauses and ends; its amount and seconds in between come from
    // the pair's newest stored voucher.
    ListQuery {
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
    }
}

pub(crate) fn session_node(row: &PgRow) -> Result<(Session, Vec<String>)> {
    let payee = b(row, "payee")?;
    let id = s(row, "id")?;
    let status = match s(row, "status")?.as_str() {
        "live" => SessionStatus::Live,
        "paused" => SessionStatus::Paused,
        _ => SessionStatus::Closed,
    };
    let track_id = s(row, "track_id")?;
    let node = Session {
        id: id.clone(),
        grant_id: hex(&b(row, "grant_id")?),
        channel: if s(row, "channel")? == "yellow" {
            PaymentChannel::Yellow
        } else {
            PaymentChannel::Vault
        },
        listener: address(&b(row, "listener")?),
        payee: address(&payee),
        track_id: track_id.clone(),
        rate_per_second: Amount::new(&s(row, "rate")?),
        seconds: i(row, "seconds")?,
        amount: Amount::new(&s(row, "amount")?),
        status,
        close_reason: row.try_get("close_reason")?,
        started_at: i(row, "started_at")?,
        ended_at: row.try_get("ended_at")?,
        payee_bytes: payee.as_slice().try_into().unwrap_or([0; 20]),
        track_key: track_id,
    };
    Ok((node, vec![s(row, "started_key")?, id]))
}

fn artist_list(chain_id: i64, order: ArtistOrder) -> ListQuery {
    ListQuery {
        select: "a.node, a.label, a.name, a.owner, a.addr, a.rate_per_second::text AS rate,
                 extract(epoch FROM a.registered_at)::int8 AS registered_at, a.registered_block",
        from: "artists a",
        base: "a.chain_id = $1",
        chain_id,
        filters: Vec::new(),
        keys: match order {
            ArtistOrder::Name => &[("a.name", "text")],
            ArtistOrder::Newest => &[("a.registered_block", "int8"), ("a.name", "text")],
        },
        descending: order == ArtistOrder::Newest,
    }
}

fn artist_node(row: &PgRow, order: ArtistOrder) -> Result<(Artist, Vec<String>)> {
    use sqlx::FromRow;
    let r = ArtistRow::from_row(row)?;
    let key = match order {
        ArtistOrder::Name => vec![r.name.clone()],
        ArtistOrder::Newest => vec![r.registered_block.to_string(), r.name.clone()],
    };
    Ok((Artist::from(r), key))
}

pub(crate) async fn top_tracks(
    api: &Api,
    payee: Option<Vec<u8>>,
    since_hours: Option<i32>,
    limit: i32,
) -> Result<Vec<TrackRanking>> {
    // All time: the per-track totals; a window: the per-day totals of the days it touches.
    let rows: Vec<(String, i64, i64, String)> = match since_hours {
        None => {
            sqlx::query_as(
                "SELECT track_id::text, streams, seconds, amount::text FROM track_listening
                 WHERE ($1::bytea IS NULL OR payee = $1)
                 ORDER BY amount DESC, track_id LIMIT $2",
            )
            .bind(payee)
            .bind(i64::from(limit))
            .fetch_all(&api.pool)
            .await?
        }
        Some(hours) => {
            sqlx::query_as(
                "SELECT d.track_id::text, sum(d.streams)::int8, sum(d.seconds)::int8, sum(d.amount)::text
                 FROM track_listening_daily d
                 WHERE d.day >= (now() AT TIME ZONE 'UTC' - make_interval(hours => $2))::date
                   AND ($1::bytea IS NULL
                        OR d.track_id IN (SELECT track_id FROM track_listening WHERE payee = $1))
                 GROUP BY d.track_id ORDER BY sum(d.amount) DESC, d.track_id LIMIT $3",
            )
            .bind(payee)
            .bind(hours)
            .bind(i64::from(limit))
            .fetch_all(&api.pool)
            .await?
        }
    };
    let ids = rows.iter().map(|r| super::loaders::TrackById(r.0.clone()));
    let mut tracks = api.loader.load_many(ids).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, streams, seconds, revenue)| {
            let track = tracks.remove(&super::loaders::TrackById(id))?;
            Some(TrackRanking { track, streams, seconds, revenue: Amount::new(&revenue) })
        })
        .collect())
}

pub(crate) async fn series(
    api: &Api,
    payee: Option<Vec<u8>>,
    interval: Interval,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<Bucket>> {
    let to = to.unwrap_or_else(|| unix_now() + 3600);
    let from = from.unwrap_or(to - 7 * 86_400);
    if to - from > 400 * 86_400 {
        return Err("a series spans at most 400 days".into());
    }
    let unit = match interval {
        Interval::Hour => "hour",
        Interval::Day => "day",
    };
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
        "SELECT extract(epoch FROM date_trunc($2, hour))::int8 AS bucket, sum(amount)::text, sum(fees)::text,
                sum(settlements)::int8
         FROM settlement_hourly
         WHERE chain_id = $1 AND ($3::bytea IS NULL OR payee = $3)
           AND hour >= to_timestamp($4) AND hour < to_timestamp($5)
         GROUP BY bucket ORDER BY bucket",
    )
    .bind(api.chain_id)
    .bind(unit)
    .bind(payee)
    .bind(from as f64)
    .bind(to as f64)
    .fetch_all(&api.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(start, amount, fees, settlements)| Bucket {
            start,
            amount: Amount::new(&amount),
            fees: Amount::new(&fees),
            settlements,
        })
        .collect())
}

fn by_addr(payee: &[u8]) -> super::loaders::ByAddr {
    super::loaders::ByAddr(payee.try_into().unwrap_or([0; 20]))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The query root. Everything is read-only.
pub(crate) struct QueryRoot;

#[Object]
impl QueryRoot {
    /// An artist by ENS name (`alice.beatstream.eth` or `alice`) or by address (its `addr` record).
    async fn artist(
        &self,
        ctx: &Context<'_>,
        name: Option<String>,
        address: Option<String>,
    ) -> Result<Option<Artist>> {
        let api = api(ctx);
        match (name, address) {
            (Some(name), None) => {
                let name = name.to_ascii_lowercase();
                let full = if name.contains('.') { name } else { format!("{name}.beatstream.eth") };
                let row: Option<ArtistRow> = sqlx::query_as(
                    "SELECT a.node, a.label, a.name, a.owner, a.addr, a.rate_per_second::text AS rate,
                            extract(epoch FROM a.registered_at)::int8 AS registered_at, a.registered_block
                     FROM artists a WHERE a.chain_id = $1 AND a.name = $2",
                )
                .bind(api.chain_id)
                .bind(full)
                .fetch_optional(&api.pool)
                .await?;
                Ok(row.map(Artist::from))
            }
            (None, Some(address)) => {
                let addr = parse_address(&address)?;
                Ok(api.loader.load_one(super::loaders::ByAddr(addr.0.0)).await?.map(Artist::from))
            }
            _ => Err("give exactly one of name and address".into()),
        }
    }

    /// Artists, by name or newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn artists(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] order_by: ArtistOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Artist>> {
        let api = api(ctx);
        page(&api.pool, artist_list(api.chain_id, order_by), (after, before, first, last), |row| {
            artist_node(row, order_by)
        })
        .await
    }

    /// A track by id.
    async fn track(&self, ctx: &Context<'_>, id: String) -> Result<Option<Track>> {
        if id.is_empty() || !id.bytes().all(|c| c.is_ascii_digit()) || id.len() > 78 {
            return Err("a track id is a decimal number".into());
        }
        track_by_id(api(ctx), &id).await
    }

    /// A listener's account, grants and spending.
    async fn listener(&self, _ctx: &Context<'_>, address: String) -> Result<Listener> {
        Ok(Listener { address: parse_address(&address)?.to_vec() })
    }

    /// A session by id.
    async fn session(&self, ctx: &Context<'_>, id: String) -> Result<Option<Session>> {
        if id.len() != 36 || !id.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-') {
            return Err("a session id is a UUID".into());
        }
        let list = session_list(vec![Filter::new("x.session_id =", Bind::Cast(id, "uuid"))]);
        let page = page(&api(ctx).pool, list, (None, None, Some(1), None), session_node).await?;
        Ok(page.edges.into_iter().next().map(|e| e.node))
    }

    /// Sessions, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] r#where: SessionWhere,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Session>> {
        let mut filters = Vec::new();
        if let Some(l) = r#where.listener {
            filters.push(Filter::new("x.listener =", Bind::Bytes(parse_address(&l)?.to_vec())));
        }
        if let Some(p) = r#where.payee {
            filters.push(Filter::new("x.payee =", Bind::Bytes(parse_address(&p)?.to_vec())));
        }
        if let Some(t) = r#where.track_id {
            if t.is_empty() || t.len() > 78 || !t.bytes().all(|c| c.is_ascii_digit()) {
                return Err("a track id is a decimal number".into());
            }
            filters.push(Filter::new("x.track_id =", Bind::Cast(t, "numeric")));
        }
        if r#where.live {
            filters.push(Filter::new("x.ended_at IS NULL AND 1 =", Bind::Int(1)));
        }
        page(&api(ctx).pool, session_list(filters), (after, before, first, last), session_node)
            .await
    }

    /// On-chain settlements.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    #[allow(clippy::too_many_arguments)]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] r#where: SettlementWhere,
        #[graphql(default)] order_by: EventOrder,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Settlement>> {
        let mut filters = Vec::new();
        if let Some(l) = r#where.listener {
            filters.push(Filter::new("s.listener =", Bind::Bytes(parse_address(&l)?.to_vec())));
        }
        if let Some(p) = r#where.payee {
            filters.push(Filter::new("s.payee =", Bind::Bytes(parse_address(&p)?.to_vec())));
        }
        if let Some(g) = r#where.grant_id {
            filters.push(Filter::new("s.grant_id =", Bind::Bytes(parse_hash(&g)?.to_vec())));
        }
        let list = settlement_list(api(ctx).chain_id, filters, order_by == EventOrder::Newest);
        page(&api(ctx).pool, list, (after, before, first, last), settlement_node).await
    }

    /// Deposits, newest first, optionally of one listener.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn deposits(
        &self,
        ctx: &Context<'_>,
        listener: Option<String>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Deposit>> {
        deposits(api(ctx), listener, (after, before, first, last)).await
    }

    /// Completed listener withdrawals, newest first, optionally of one listener.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        listener: Option<String>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Withdrawal>> {
        withdrawals(api(ctx), listener, (after, before, first, last)).await
    }

    /// The keeper's settlement transactions, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn keeper_transactions(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<KeeperTransaction>> {
        let api = api(ctx);
        let mut filters = Vec::new();
        if let Some(status) = status {
            filters.push(Filter::new("k.status =", Bind::Text(status)));
        }
        let list = ListQuery {
            select: "k.id, k.nonce, k.kind, k.status, k.confirmed_hash, k.confirmed_block, k.gas_used,
                     k.settled_count::int8 AS settled_count,
                     (SELECT count(*) FROM keeper_batch_items i WHERE i.batch_id = k.id) AS vouchers,
                     (SELECT count(*) FROM keeper_attempts a WHERE a.batch_id = k.id) AS attempts,
                     extract(epoch FROM k.created_at)::int8 AS created_at,
                     extract(epoch FROM k.confirmed_at)::int8 AS confirmed_at",
            from: "keeper_batches k",
            base: "k.chain_id = $1",
            chain_id: api.chain_id,
            filters,
            keys: &[("k.id", "int8")],
            descending: true,
        };
        page(&api.pool, list, (after, before, first, last), |row| {
            let id = i(row, "id")?;
            let hash: Option<Vec<u8>> = row.try_get("confirmed_hash")?;
            Ok((
                KeeperTransaction {
                    id,
                    nonce: i(row, "nonce")?,
                    kind: s(row, "kind")?,
                    status: s(row, "status")?,
                    hash: hash.map(|h| hex(&h)),
                    block_number: row.try_get("confirmed_block")?,
                    gas_used: row.try_get("gas_used")?,
                    vouchers: i(row, "vouchers")?,
                    settled: row.try_get("settled_count")?,
                    attempts: i(row, "attempts")?,
                    created_at: i(row, "created_at")?,
                    confirmed_at: row.try_get("confirmed_at")?,
                },
                vec![id.to_string()],
            ))
        })
        .await
    }

    /// Global totals.
    async fn stats(&self, ctx: &Context<'_>) -> Result<Stats> {
        let api = api(ctx);
        let row = sqlx::query(
            "SELECT
                (SELECT count(*) FROM artists WHERE chain_id = $1) AS artists,
                (SELECT count(*) FROM tracks WHERE chain_id = $1 AND published) AS tracks,
                (SELECT count(*) FROM listener_accounts WHERE chain_id = $1) AS listeners,
                (SELECT coalesce(sum(deposited_total), 0)::text FROM listener_accounts WHERE chain_id = $1) AS deposited,
                (SELECT coalesce(sum(earned_total), 0)::text FROM payee_earnings WHERE chain_id = $1) AS settled,
                (SELECT coalesce(sum(fees_total), 0)::text FROM payee_earnings WHERE chain_id = $1) AS fees,
                (SELECT coalesce(sum(settlements), 0)::int8 FROM payee_earnings WHERE chain_id = $1) AS settlements,
                (SELECT count(*) FROM sessions WHERE ended_at IS NULL) AS live,
                (SELECT block_number FROM chain_cursor WHERE chain_id = $1) AS indexed",
        )
        .bind(api.chain_id)
        .fetch_one(&api.pool)
        .await?;
        Ok(Stats {
            artists: i(&row, "artists")?,
            tracks: i(&row, "tracks")?,
            listeners: i(&row, "listeners")?,
            deposited: Amount::new(&s(&row, "deposited")?),
            settled: Amount::new(&s(&row, "settled")?),
            fees: Amount::new(&s(&row, "fees")?),
            settlements: i(&row, "settlements")?,
            live_sessions: i(&row, "live")?,
            indexed_block: row.try_get("indexed")?,
        })
    }

    /// Settled volume of everyone per hour or day between two unix times (default: the last 7 days).
    async fn series(
        &self,
        ctx: &Context<'_>,
        interval: Interval,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Vec<Bucket>> {
        series(api(ctx), None, interval, from, to).await
    }

    /// Artists who earned most in the last `hours` (default 24).
    async fn top_artists(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24, validator(minimum = 1, maximum = 8784))] hours: i32,
        #[graphql(default = 10, validator(minimum = 1, maximum = 100))] limit: i32,
    ) -> Result<Vec<ArtistRanking>> {
        let api = api(ctx);
        let rows: Vec<(Vec<u8>, String, i64)> = sqlx::query_as(
            "SELECT payee, sum(amount)::text, sum(settlements)::int8 FROM settlement_hourly
             WHERE chain_id = $1 AND hour >= date_trunc('hour', now() - make_interval(hours => $2))
             GROUP BY payee ORDER BY sum(amount) DESC, payee LIMIT $3",
        )
        .bind(api.chain_id)
        .bind(hours)
        .bind(i64::from(limit))
        .fetch_all(&api.pool)
        .await?;
        let mut artists = api.loader.load_many(rows.iter().map(|r| by_addr(&r.0))).await?;
        Ok(rows
            .into_iter()
            .map(|(payee, earned, settlements)| ArtistRanking {
                artist: artists.remove(&by_addr(&payee)).map(Artist::from),
                payee: address(&payee),
                earned: Amount::new(&earned),
                settlements,
            })
            .collect())
    }

    /// Tracks that earned most in the last `hours` (default 24).
    async fn top_tracks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24, validator(minimum = 1, maximum = 8784))] hours: i32,
        #[graphql(default = 10, validator(minimum = 1, maximum = 100))] limit: i32,
    ) -> Result<Vec<TrackRanking>> {
        top_tracks(api(ctx), None, Some(hours), limit).await
    }
}

async fn deposits(api: &Api, listener: Option<String>, window: Window) -> Result<Page<Deposit>> {
    let mut filters = Vec::new();
    if let Some(l) = listener {
        filters.push(Filter::new("d.listener =", Bind::Bytes(parse_address(&l)?.to_vec())));
    }
    let list = ListQuery {
        select: "d.block_number, d.log_index::int8 AS log_index, extract(epoch FROM d.block_time)::int8 AS block_time,
                 d.tx_hash, d.listener, d.sender, d.amount::text AS amount",
        from: "vault_deposits d",
        base: "d.chain_id = $1",
        chain_id: api.chain_id,
        filters,
        keys: &[("d.block_number", "int8"), ("d.log_index", "int4")],
        descending: true,
    };
    page(&api.pool, list, window, |row| {
        let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
        Ok((
            Deposit {
                block_number: block,
                block_time: i(row, "block_time")?,
                tx_hash: hex(&b(row, "tx_hash")?),
                listener: address(&b(row, "listener")?),
                sender: address(&b(row, "sender")?),
                amount: Amount::new(&s(row, "amount")?),
            },
            vec![block.to_string(), log.to_string()],
        ))
    })
    .await
}

async fn withdrawals(
    api: &Api,
    listener: Option<String>,
    window: Window,
) -> Result<Page<Withdrawal>> {
    let mut filters = Vec::new();
    if let Some(l) = listener {
        filters.push(Filter::new("w.listener =", Bind::Bytes(parse_address(&l)?.to_vec())));
    }
    let list = ListQuery {
        select: "w.block_number, w.log_index::int8 AS log_index, extract(epoch FROM w.block_time)::int8 AS block_time,
                 w.tx_hash, w.listener, w.recipient, w.amount::text AS amount",
        from: "vault_withdrawals w",
        base: "w.chain_id = $1",
        chain_id: api.chain_id,
        filters,
        keys: &[("w.block_number", "int8"), ("w.log_index", "int4")],
        descending: true,
    };
    page(&api.pool, list, window, |row| {
        let (block, log) = (i(row, "block_number")?, i(row, "log_index")?);
        Ok((
            Withdrawal {
                block_number: block,
                block_time: i(row, "block_time")?,
                tx_hash: hex(&b(row, "tx_hash")?),
                listener: address(&b(row, "listener")?),
                recipient: address(&b(row, "recipient")?),
                amount: Amount::new(&s(row, "amount")?),
            },
            vec![block.to_string(), log.to_string()],
        ))
    })
    .await
}

/// A listener (any address; the fields are empty for one that never used the vault).
pub(crate) struct Listener {
    address: Vec<u8>,
}

#[Object]
impl Listener {
    /// The address.
    async fn address(&self) -> String {
        address(&self.address)
    }

    /// Vault balance, thawing withdrawal and lifetime totals.
    async fn balance(&self, ctx: &Context<'_>) -> Result<Option<Balance>> {
        let api = api(ctx);
        let row: Option<(String, String, Option<i64>, String, String, String)> = sqlx::query_as(
            "SELECT available::text, thawing::text, extract(epoch FROM thaw_end)::int8, deposited_total::text,
                    spent_total::text, withdrawn_total::text
             FROM listener_accounts WHERE chain_id = $1 AND listener = $2",
        )
        .bind(api.chain_id)
        .bind(&self.address)
        .fetch_optional(&api.pool)
        .await?;
        Ok(row.map(|(available, thawing, thaw_end, deposited, spent, withdrawn)| Balance {
            thaw_end: if thawing == "0" { None } else { thaw_end },
            available: Amount::new(&available),
            thawing: Amount::new(&thawing),
            deposited: Amount::new(&deposited),
            spent: Amount::new(&spent),
            withdrawn: Amount::new(&withdrawn),
        }))
    }

    /// Grants presented to a relay, newest expiry first (at most 100), each with its revocation if any.
    async fn grants(&self, ctx: &Context<'_>) -> Result<Vec<Grant>> {
        let api = api(ctx);
        type Row =
            (Vec<u8>, Vec<u8>, String, i64, String, String, String, Option<i64>, Option<i64>);
        // A floor revokes the grant when it is raised above its nonce; the vault applies it from the first raise
        // above the nonce that took effect (a raise replaced while pending never did, the newest always will).
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT g.grant_id, g.session_key, g.cap::text, extract(epoch FROM g.expires_at)::int8, g.nonce::text,
                    coalesce(gs.spent, 0)::text,
                    coalesce((SELECT sum(v.cumulative) FROM vouchers v WHERE v.grant_id = g.grant_id), 0)::text,
                    extract(epoch FROM least(r.revoked_at, f.revoked_at))::int8,
                    extract(epoch FROM least(r.effective_at, f.effective_at))::int8
             FROM grants g
             LEFT JOIN grant_spend gs ON gs.chain_id = g.chain_id AND gs.grant_id = g.grant_id
             LEFT JOIN grant_revocations r
                    ON r.chain_id = g.chain_id AND r.grant_id = g.grant_id AND r.listener = g.listener
             LEFT JOIN LATERAL (
                 SELECT min(x.block_time) AS revoked_at,
                        min(x.effective_at) FILTER (WHERE x.next_at IS NULL OR x.next_at >= x.effective_at)
                            AS effective_at
                 FROM (SELECT block_time, nonce_floor, effective_at,
                              lead(block_time) OVER (ORDER BY block_number, log_index) AS next_at
                       FROM vault_nonce_floor_raises
                       WHERE chain_id = g.chain_id AND listener = g.listener) x
                 WHERE x.nonce_floor > g.nonce
             ) f ON true
             WHERE g.chain_id = $1 AND g.listener = $2
             ORDER BY g.expires_at DESC, g.grant_id LIMIT 100",
        )
        .bind(api.chain_id)
        .bind(&self.address)
        .fetch_all(&api.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, key, cap, expires_at, nonce, spent, vouched, revoked_at, effective_at)| {
                Grant {
                    id: hex(&id),
                    session_key: address(&key),
                    cap: Amount::new(&cap),
                    expires_at,
                    spent: Amount::new(&spent),
                    vouched: Amount::new(&vouched),
                    nonce,
                    revoked: revoked_at.is_some(),
                    revoked_at,
                    revocation_effective_at: effective_at,
                }
            })
            .collect())
    }

    /// The listener's nonce floor, if it ever raised one.
    async fn nonce_floor(&self, ctx: &Context<'_>) -> Result<Option<NonceFloor>> {
        let api = api(ctx);
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT floor::text, previous::text, extract(epoch FROM floor_from)::int8
             FROM listener_nonce_floors WHERE chain_id = $1 AND listener = $2",
        )
        .bind(api.chain_id)
        .bind(&self.address)
        .fetch_optional(&api.pool)
        .await?;
        Ok(row.map(|(floor, previous, floor_from)| NonceFloor { floor, previous, floor_from }))
    }

    /// What the listener paid each artist: settled on-chain and promised by vouchers, most first.
    async fn spend_per_artist(&self, ctx: &Context<'_>) -> Result<Vec<ArtistSpend>> {
        let api = api(ctx);
        let rows: Vec<(Vec<u8>, String, String)> = sqlx::query_as(
            "SELECT payee, sum(settled)::text, sum(vouched)::text FROM (
                 SELECT payee, cumulative AS settled, 0 AS vouched FROM settled_pairs
                 WHERE chain_id = $1 AND listener = $2
                 UNION ALL
                 SELECT payee, 0, cumulative FROM vouchers WHERE listener = $2
             ) x GROUP BY payee ORDER BY sum(vouched) DESC, sum(settled) DESC, payee LIMIT 100",
        )
        .bind(api.chain_id)
        .bind(&self.address)
        .fetch_all(&api.pool)
        .await?;
        let mut artists = api.loader.load_many(rows.iter().map(|r| by_addr(&r.0))).await?;
        Ok(rows
            .into_iter()
            .map(|(payee, settled, vouched)| ArtistSpend {
                artist: artists.remove(&by_addr(&payee)).map(Artist::from),
                payee: address(&payee),
                settled: Amount::new(&settled),
                vouched: Amount::new(&vouched),
            })
            .collect())
    }

    /// The listener's sessions, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Session>> {
        let list =
            session_list(vec![Filter::new("x.listener =", Bind::Bytes(self.address.clone()))]);
        page(&api(ctx).pool, list, (after, before, first, last), session_node).await
    }

    /// Settlements the listener paid, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn settlements(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Settlement>> {
        let list = settlement_list(
            api(ctx).chain_id,
            vec![Filter::new("s.listener =", Bind::Bytes(self.address.clone()))],
            true,
        );
        page(&api(ctx).pool, list, (after, before, first, last), settlement_node).await
    }

    /// The listener's deposits, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn deposits(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Deposit>> {
        deposits(api(ctx), Some(address(&self.address)), (after, before, first, last)).await
    }

    /// The listener's completed withdrawals, newest first.
    #[graphql(complexity = "first.or(last).unwrap_or(100) as usize * child_complexity")]
    async fn withdrawals(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        before: Option<String>,
        first: Option<i32>,
        last: Option<i32>,
    ) -> Result<Page<Withdrawal>> {
        withdrawals(api(ctx), Some(address(&self.address)), (after, before, first, last)).await
    }
}
