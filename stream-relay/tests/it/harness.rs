//! Test support: a relay on a free port over a fresh database, indexer rows seeded exactly as the indexer writes
//! them (fixture data in a real Postgres), players with real keys and signatures, and a real WebSocket client.

use std::{net::SocketAddr, time::Duration};

use alloy::{
    primitives::{Address, B256, U256, keccak256},
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::{SessionGrant, VoucherDomain};
use beatstream_stream_relay::{
    Config, Server,
    protocol::{ClientFrame, ServerFrame},
};
use beatstream_testkit::TestDb;
use futures_util::{SinkExt, StreamExt};
use sqlx::PgPool;
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config,
    tungstenite::{
        Message,
        protocol::{CloseFrame, WebSocketConfig},
    },
};
use tokio_util::sync::CancellationToken;
use url::Url;

pub(crate) const CHAIN_ID: u64 = 31337;

pub(crate) fn vault() -> Address {
    Address::repeat_byte(0xaa)
}

pub(crate) fn domain() -> VoucherDomain {
    VoucherDomain::new(CHAIN_ID, vault())
}

/// An RPC endpoint nothing listens on: EOA grants never need the chain.
pub(crate) fn no_rpc() -> Url {
    "http://127.0.0.1:1".parse().unwrap()
}

/// Relay settings for tests: free port, the test vault, 100 ms beats.
pub(crate) fn config(db: &TestDb, rpc: Url) -> Config {
    let mut c = Config::new(db.url().to_owned(), rpc);
    c.options.listen = "127.0.0.1:0".parse().unwrap();
    c.chain_id = Some(CHAIN_ID);
    c.vault = Some(vault());
    c.options.beat_ms = 100;
    c.options.shutdown_secs = 5;
    c
}

/// A relay running in this process.
pub(crate) struct Relay {
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown: CancellationToken,
    pub(crate) task: JoinHandle<beatstream_stream_relay::Result<()>>,
}

impl Relay {
    pub(crate) async fn start(config: Config) -> eyre::Result<Self> {
        let shutdown = CancellationToken::new();
        let server = Server::bind(config, shutdown.clone()).await?;
        let addr = server.local_addr()?;
        let task = tokio::spawn(server.serve());
        Ok(Self { addr, shutdown, task })
    }

    pub(crate) fn url(&self) -> String {
        format!("ws://{}/ws/stream", self.addr)
    }

    pub(crate) async fn stop(self) -> eyre::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task).await???;
        Ok(())
    }
}

// ----- Indexer-owned rows, as the indexer writes them. -----

pub(crate) struct Artist {
    pub(crate) node: B256,
    pub(crate) payee: Address,
}

/// An artist `<label>.beatstream.eth` with `payee` as its ENS addr record and a default rate.
pub(crate) async fn seed_artist(
    pool: &PgPool,
    label: &str,
    payee: Address,
    rate: u64,
) -> eyre::Result<Artist> {
    let node = keccak256(label.as_bytes());
    sqlx::query(
        "INSERT INTO artists (chain_id, node, label, name, owner, addr, rate_per_second, registered_at,
                              registered_block, updated_block)
         VALUES ($1, $2, $3, $4, $5, $5, $6::numeric, now(), 1, 1)",
    )
    .bind(CHAIN_ID as i64)
    .bind(node.as_slice())
    .bind(label)
    .bind(format!("{label}.beatstream.eth"))
    .bind(payee.as_slice())
    .bind(rate.to_string())
    .execute(pool)
    .await?;
    Ok(Artist { node, payee })
}

/// A published track; `rate` 0 means the artist's rate, as in the registry.
pub(crate) async fn seed_track(
    pool: &PgPool,
    id: u64,
    artist: &Artist,
    duration: i32,
    rate: u64,
) -> eyre::Result<()> {
    sqlx::query(
        "INSERT INTO tracks (chain_id, track_id, artist_node, title, duration, rate_per_second, content_hash,
                             metadata_uri, published, published_at, updated_block)
         VALUES ($1, $2::numeric, $3, $4, $5, $6::numeric, $7, 'ipfs://track', true, now(), 1)",
    )
    .bind(CHAIN_ID as i64)
    .bind(id.to_string())
    .bind(artist.node.as_slice())
    .bind(format!("track {id}"))
    .bind(duration)
    .bind(rate.to_string())
    .bind(keccak256(id.to_be_bytes()).as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// The indexer's rows for split version `version` of `artist` (`track` 0: the artist's own split) in force, with
/// `split` as its payee address.
pub(crate) async fn seed_split(
    pool: &PgPool,
    artist: &Artist,
    track: u64,
    version: i64,
    split: Address,
) -> eyre::Result<()> {
    sqlx::query(
        "INSERT INTO splits (chain_id, split, node, track_id, version, recipients, shares, set_at, set_block,
                             updated_block)
         VALUES ($1, $2, $3, $4::numeric, $5, ARRAY[$6::bytea], ARRAY[10000], now(), 2, 2)",
    )
    .bind(CHAIN_ID as i64)
    .bind(split.as_slice())
    .bind(artist.node.as_slice())
    .bind(track.to_string())
    .bind(version)
    .bind(artist.payee.as_slice())
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO split_in_force (chain_id, node, track_id, split, updated_block)
         VALUES ($1, $2, $3::numeric, $4, 2)
         ON CONFLICT (chain_id, node, track_id) DO UPDATE SET split = EXCLUDED.split",
    )
    .bind(CHAIN_ID as i64)
    .bind(artist.node.as_slice())
    .bind(track.to_string())
    .bind(split.as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// A listener's vault account after deposits (and maybe a withdrawal request).
pub(crate) async fn seed_listener(
    pool: &PgPool,
    listener: Address,
    available: u64,
    thawing: u64,
) -> eyre::Result<()> {
    sqlx::query(
        "INSERT INTO listener_accounts (chain_id, listener, available, thawing, thaw_end, deposited_total,
                                        updated_block)
         VALUES ($1, $2, $3::numeric, $4::numeric, CASE WHEN $4::numeric > 0 THEN now() + interval '1 day' END,
                 $3::numeric + $4::numeric, 1)",
    )
    .bind(CHAIN_ID as i64)
    .bind(listener.as_slice())
    .bind(available.to_string())
    .bind(thawing.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// The indexer's row for `listener`'s `revokeGrant(grant)`: refused by the relay at once, by the vault a day later.
pub(crate) async fn seed_revocation(
    pool: &PgPool,
    listener: Address,
    grant: B256,
) -> eyre::Result<()> {
    sqlx::query(
        "INSERT INTO grant_revocations (chain_id, listener, grant_id, revoked_at, effective_at, updated_block)
         VALUES ($1, $2, $3, now(), now() + interval '1 day', 2)",
    )
    .bind(CHAIN_ID as i64)
    .bind(listener.as_slice())
    .bind(grant.as_slice())
    .execute(pool)
    .await?;
    Ok(())
}

/// The indexer's row for `listener`'s `revokeGrantsBelow(floor)`: the newest floor, in force on-chain only a day
/// later (`previous` until then).
pub(crate) async fn seed_nonce_floor(
    pool: &PgPool,
    listener: Address,
    floor: u64,
    previous: u64,
) -> eyre::Result<()> {
    sqlx::query(
        "INSERT INTO listener_nonce_floors (chain_id, listener, floor, previous, floor_from, updated_block)
         VALUES ($1, $2, $3::numeric, $4::numeric, now() + interval '1 day', 2)
         ON CONFLICT (chain_id, listener) DO UPDATE
            SET floor = EXCLUDED.floor, previous = EXCLUDED.previous, floor_from = EXCLUDED.floor_from",
    )
    .bind(CHAIN_ID as i64)
    .bind(listener.as_slice())
    .bind(floor.to_string())
    .bind(previous.to_string())
    .execute(pool)
    .await?;
    Ok(())
}

/// Standard scene: artist "alice" (rate 100/s) with track 1 (artist rate, 600 s) and track 2 (250/s, 3 s);
/// artist "bob" (rate 50/s) with track 3.
pub(crate) struct Scene {
    pub(crate) alice: Artist,
    pub(crate) bob: Artist,
}

pub(crate) async fn seed_scene(pool: &PgPool) -> eyre::Result<Scene> {
    let alice = seed_artist(pool, "alice", Address::repeat_byte(0xa1), 100).await?;
    let bob = seed_artist(pool, "bob", Address::repeat_byte(0xb0), 50).await?;
    seed_track(pool, 1, &alice, 600, 0).await?;
    seed_track(pool, 2, &alice, 3, 250).await?;
    seed_track(pool, 3, &bob, 600, 0).await?;
    Ok(Scene { alice, bob })
}

// ----- Players. -----

/// A listener's wallet, a player's session key and the grant between them, all real keys.
pub(crate) struct Player {
    pub(crate) wallet: PrivateKeySigner,
    pub(crate) key: PrivateKeySigner,
    pub(crate) grant: SessionGrant,
}

impl Player {
    pub(crate) fn new(cap: u64) -> Self {
        Self::with_wallet(PrivateKeySigner::random(), cap)
    }

    pub(crate) fn with_wallet(wallet: PrivateKeySigner, cap: u64) -> Self {
        let key = PrivateKeySigner::random();
        let grant = SessionGrant {
            listener: wallet.address(),
            sessionKey: key.address(),
            cap: U256::from(cap),
            expiresAt: unix_now() + 3600,
            nonce: rand_nonce(),
        };
        Self { wallet, key, grant }
    }

    /// Another grant of the same listener, with `nonce`.
    pub(crate) fn with_nonce(wallet: PrivateKeySigner, cap: u64, nonce: u64) -> Self {
        let mut player = Self::with_wallet(wallet, cap);
        player.grant.nonce = nonce;
        player
    }

    pub(crate) fn listener(&self) -> Address {
        self.wallet.address()
    }

    pub(crate) fn grant_id(&self) -> B256 {
        self.grant.id()
    }

    pub(crate) fn hello(&self) -> ClientFrame {
        let sig = domain().sign_grant(&self.wallet, &self.grant).unwrap();
        ClientFrame::hello(&self.grant, &sig)
    }

    pub(crate) fn voucher_sig(&self, payee: Address, cumulative: u64) -> [u8; 65] {
        domain().sign_voucher(&self.key, self.grant_id(), payee, U256::from(cumulative)).unwrap()
    }

    pub(crate) fn voucher(&self, payee: Address, cumulative: u64) -> ClientFrame {
        let sig = self.voucher_sig(payee, cumulative);
        ClientFrame::voucher(self.grant_id(), payee, U256::from(cumulative), &sig)
    }

    /// A `tip` of `amount` to `payee` with `message`, signed by the session key.
    pub(crate) fn tip(
        &self,
        payee: Address,
        tip_id: u64,
        amount: u64,
        message: &str,
    ) -> ClientFrame {
        let (id, amount) = (U256::from(tip_id), U256::from(amount));
        let sig = domain()
            .sign_tip(&self.key, self.grant_id(), payee, id, amount, message.as_bytes())
            .unwrap();
        ClientFrame::tip(self.grant_id(), payee, id, amount, message, &sig)
    }
}

pub(crate) use beatstream_primitives::unix_now;

fn rand_nonce() -> u64 {
    u64::from_be_bytes(PrivateKeySigner::random().address()[..8].try_into().unwrap())
}

// ----- A WebSocket client. -----

pub(crate) struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a test waits for.
#[derive(Debug)]
pub(crate) enum Event {
    Frame(ServerFrame),
    Closed(Option<CloseFrame>),
}

impl Client {
    pub(crate) async fn connect(relay: &Relay) -> eyre::Result<Self> {
        Self::connect_url(&relay.url()).await
    }

    pub(crate) async fn connect_url(url: &str) -> eyre::Result<Self> {
        // Nagle off, as every latency-bound client should.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let (ws, _) = connect_async_with_config(url, Some(config), true).await?;
        Ok(Self { ws })
    }

    pub(crate) async fn send(&mut self, frame: &ClientFrame) -> eyre::Result<()> {
        self.send_text(&frame.to_json()).await
    }

    pub(crate) async fn send_text(&mut self, text: &str) -> eyre::Result<()> {
        self.ws.send(Message::text(text)).await?;
        Ok(())
    }

    pub(crate) async fn send_message(&mut self, message: Message) -> eyre::Result<()> {
        self.ws.send(message).await?;
        Ok(())
    }

    /// The next frame or close, within `secs`.
    pub(crate) async fn event_within(&mut self, secs: u64) -> eyre::Result<Event> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(secs), self.ws.next()).await?;
            match next {
                None => return Ok(Event::Closed(None)),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => {
                    return Ok(Event::Frame(serde_json::from_str(text.as_str())?));
                }
                Some(Ok(Message::Close(frame))) => return Ok(Event::Closed(frame)),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next frame; fails on close or after 5 s.
    pub(crate) async fn recv(&mut self) -> eyre::Result<ServerFrame> {
        match self.event_within(5).await? {
            Event::Frame(f) => Ok(f),
            Event::Closed(c) => eyre::bail!("connection closed: {c:?}"),
        }
    }

    /// The next frame that is not a `beat`.
    pub(crate) async fn recv_no_beat(&mut self) -> eyre::Result<ServerFrame> {
        loop {
            match self.recv().await? {
                ServerFrame::Beat { .. } => {}
                other => return Ok(other),
            }
        }
    }

    /// Skips frames until one matches.
    pub(crate) async fn recv_until(
        &mut self,
        pred: impl Fn(&ServerFrame) -> bool,
    ) -> eyre::Result<ServerFrame> {
        loop {
            let f = self.recv().await?;
            if pred(&f) {
                return Ok(f);
            }
        }
    }

    /// Expects an `error` with `code` next (beats aside); returns its message.
    pub(crate) async fn expect_error(&mut self, code: &str) -> eyre::Result<String> {
        match self.recv_no_beat().await? {
            ServerFrame::Error { code: got, message } if got == code => Ok(message),
            other => eyre::bail!("expected error {code}, got {other:?}"),
        }
    }

    /// Reads until the relay closes the connection; returns the close frame.
    pub(crate) async fn expect_close(
        &mut self,
        within_secs: u64,
    ) -> eyre::Result<Option<CloseFrame>> {
        loop {
            if let Event::Closed(c) = self.event_within(within_secs).await? {
                return Ok(c);
            }
        }
    }

    /// Sends `hello`; returns `available`.
    pub(crate) async fn hello(&mut self, player: &Player) -> eyre::Result<U256> {
        self.send(&player.hello()).await?;
        match self.recv().await? {
            ServerFrame::Ready { grant_id, available } => {
                assert_eq!(grant_id, player.grant_id().to_string());
                Ok(available.parse()?)
            }
            other => eyre::bail!("expected ready, got {other:?}"),
        }
    }

    /// Sends `play`; returns the session id and the first beat's owed.
    pub(crate) async fn play(&mut self, track: u64) -> eyre::Result<(String, U256)> {
        self.send(&ClientFrame::Play {
            track_id: beatstream_stream_relay::protocol::Uint(track.to_string()),
            from: None,
            beats: None,
        })
        .await?;
        let id = match self.recv_no_beat().await? {
            ServerFrame::Session { session_id, .. } => session_id,
            other => eyre::bail!("expected session, got {other:?}"),
        };
        let owed = self.beat_of(&id).await?.1;
        Ok((id, owed))
    }

    /// The next beat of `session`: (second, owed).
    pub(crate) async fn beat_of(&mut self, session: &str) -> eyre::Result<(u32, U256)> {
        loop {
            match self.recv().await? {
                ServerFrame::Beat { session_id, second, owed } if session_id == session => {
                    return Ok((second, owed.parse()?));
                }
                ServerFrame::Beat { .. } | ServerFrame::Ack { .. } => {}
                other => eyre::bail!("expected a beat, got {other:?}"),
            }
        }
    }

    /// Sends a voucher and waits for its ack.
    pub(crate) async fn pay(
        &mut self,
        player: &Player,
        payee: Address,
        cumulative: u64,
    ) -> eyre::Result<String> {
        self.send(&player.voucher(payee, cumulative)).await?;
        match self.recv_no_beat().await? {
            ServerFrame::Ack { session_id, cumulative: c, .. } if c == cumulative.to_string() => {
                Ok(session_id)
            }
            other => eyre::bail!("expected ack of {cumulative}, got {other:?}"),
        }
    }
}

/// The stored voucher of a pair: (cumulative, signature).
pub(crate) async fn stored_voucher(
    pool: &PgPool,
    grant: B256,
    payee: Address,
) -> eyre::Result<Option<(U256, Vec<u8>)>> {
    let row: Option<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT cumulative::text, signature FROM vouchers WHERE grant_id = $1 AND payee = $2",
    )
    .bind(grant.as_slice())
    .bind(payee.as_slice())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(c, s)| (c.parse().unwrap(), s)))
}

/// Sum of stored cumulatives of a listener.
pub(crate) async fn stored_total(pool: &PgPool, listener: Address) -> eyre::Result<U256> {
    let total: String = sqlx::query_scalar(
        "SELECT coalesce(sum(cumulative), 0)::text FROM vouchers WHERE listener = $1",
    )
    .bind(listener.as_slice())
    .fetch_one(pool)
    .await?;
    Ok(total.parse()?)
}
