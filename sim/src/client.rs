//! One simulated player over one relay connection, a step at a time, and [`stream`], a player that keeps playing
//! (and reconnects) until told to stop.
//!
//! ```no_run
//! # async fn demo(relay: url::Url, domain: beatstream_primitives::VoucherDomain) -> beatstream_sim::Result<()> {
//! use alloy::primitives::U256;
//! use beatstream_sim::{client::Client, keys::Identity};
//!
//! let secp = secp256k1::Secp256k1::signing_only();
//! let identity = Identity::new(&secp, &domain, "my-seed", 1, 0, U256::from(10_000_000u64), u64::MAX);
//! let mut client = Client::connect(&relay).await?;
//! client.hello(&identity).await?;
//! let playing = client.play(1).await?;
//! let paid = client.pay(&identity, &domain, &playing, 3).await?; // three beats, each answered and acked
//! client.stop(&playing).await?;
//! client.close().await;
//! # let _ = paid; Ok(()) }
//! ```

use std::time::Duration;

use alloy::primitives::{Address, U256};
use beatstream_primitives::VoucherDomain;
use beatstream_stream_relay::protocol::{ChunkKeyFrame, ClientFrame, ServerFrame, Uint};
use futures_util::{SinkExt, StreamExt};
use secp256k1::{Secp256k1, SignOnly};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async_with_config, tungstenite::Message,
};
use tokio_util::sync::CancellationToken;
use tracing::warn;
use url::Url;

use crate::{Error, Result, audio::Listening, keys::Identity, player::ws_config};

/// How long a step waits for the relay's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// A session the relay opened for a `play`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Playing {
    /// The session id.
    pub session_id: String,
    /// The artist's address, which vouchers name.
    pub payee: Address,
    /// Base units per second.
    pub rate: U256,
}

/// A player's connection to a relay.
#[derive(Debug)]
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    secp: Secp256k1<SignOnly>,
    /// Chunk keys received in acks and not yet taken.
    keys: Vec<ChunkKeyFrame>,
    /// A session the relay closed itself at the end of its track, with its total, until [`Client::stop`] takes it.
    ended: Option<(String, U256)>,
}

impl Client {
    /// Opens a WebSocket to `relay` (`ws://host:port/ws/stream`).
    pub async fn connect(relay: &Url) -> Result<Self> {
        let (ws, _) = connect_async_with_config(relay.as_str(), Some(ws_config()), true)
            .await
            .map_err(|e| Error::Connection(format!("{relay}: {e}")))?;
        Ok(Self { ws, secp: Secp256k1::signing_only(), keys: Vec::new(), ended: None })
    }

    /// Presents `identity`'s grant and waits for `ready`; returns what the listener can still spend.
    pub async fn hello(&mut self, identity: &Identity) -> Result<U256> {
        self.send(ClientFrame::hello(&identity.grant, &identity.grant_sig)).await?;
        loop {
            if let ServerFrame::Ready { available, .. } = self.next().await? {
                return parse(&available, "available");
            }
        }
    }

    /// Plays `track_id` and waits for its session.
    pub async fn play(&mut self, track_id: u64) -> Result<Playing> {
        self.send(ClientFrame::Play {
            track_id: Uint(track_id.to_string()),
            from: None,
            beats: None,
        })
        .await?;
        loop {
            if let ServerFrame::Session { session_id, payee, rate_per_second, .. } =
                self.next().await?
            {
                let payee = payee
                    .parse()
                    .map_err(|_| Error::Unexpected(format!("session payee {payee:?}")))?;
                let rate = parse(&rate_per_second, "rate")?;
                return Ok(Playing { session_id, payee, rate });
            }
        }
    }

    /// Answers the next `beats` beats of `playing` with vouchers signed by `identity`'s session key, and waits for
    /// the last one's ack; returns the cumulative acked. When the track ends first (the relay closes the session
    /// after acking its last second), returns what was acked by then, and [`Client::ended`] is true.
    pub async fn pay(
        &mut self,
        identity: &Identity,
        domain: &VoucherDomain,
        playing: &Playing,
        beats: u64,
    ) -> Result<U256> {
        let (mut answered, mut sent, mut acked) = (0, U256::ZERO, U256::ZERO);
        while answered < beats || acked < sent {
            match self.next().await? {
                ServerFrame::Beat { session_id, owed, .. }
                    if session_id == playing.session_id && answered < beats =>
                {
                    let owed = parse(&owed, "owed")?;
                    let sig = identity.sign_voucher(&self.secp, domain, playing.payee, owed);
                    self.send(ClientFrame::voucher(identity.grant_id, playing.payee, owed, &sig))
                        .await?;
                    (answered, sent) = (answered + 1, owed);
                }
                ServerFrame::Ack { session_id, cumulative, keys }
                    if session_id == playing.session_id =>
                {
                    acked = acked.max(parse(&cumulative, "ack")?);
                    self.keys.extend(keys);
                }
                ServerFrame::Closed { session_id, total } if session_id == playing.session_id => {
                    if acked < sent {
                        return Err(Error::Unexpected(format!(
                            "session {session_id} closed with vouchers unacknowledged"
                        )));
                    }
                    self.ended = Some((session_id, parse(&total, "total")?));
                    return Ok(acked);
                }
                _ => {}
            }
        }
        Ok(acked)
    }

    /// Sends a tip of `amount` to `payee` with `message`, signed by `identity`'s session key, and waits for its
    /// `tipAck`.
    pub async fn tip(
        &mut self,
        identity: &Identity,
        domain: &VoucherDomain,
        payee: Address,
        tip_id: U256,
        amount: U256,
        message: &str,
    ) -> Result<()> {
        let sig = identity.sign_tip(&self.secp, domain, payee, tip_id, amount, message);
        self.send(ClientFrame::tip(identity.grant_id, payee, tip_id, amount, message, &sig))
            .await?;
        loop {
            if let ServerFrame::TipAck { tip_id: acked, .. } = self.next().await?
                && acked == tip_id.to_string()
            {
                return Ok(());
            }
        }
    }

    /// The chunk keys acks released since the last call (tracks with audio only).
    pub fn take_keys(&mut self) -> Vec<ChunkKeyFrame> {
        std::mem::take(&mut self.keys)
    }

    /// Whether the relay closed `playing` itself at the end of its track.
    pub fn ended(&self, playing: &Playing) -> bool {
        self.ended.as_ref().is_some_and(|(id, _)| *id == playing.session_id)
    }

    /// Stops `playing` and waits for `closed`; returns what the session paid. A session that ended with its track
    /// is already closed: its total is returned without sending anything.
    pub async fn stop(&mut self, playing: &Playing) -> Result<U256> {
        if self.ended(playing) {
            let (_, total) = self.ended.take().expect("checked");
            return Ok(total);
        }
        self.send(ClientFrame::Stop { session_id: playing.session_id.clone() }).await?;
        loop {
            if let ServerFrame::Closed { session_id, total } = self.next().await?
                && session_id == playing.session_id
            {
                return parse(&total, "total");
            }
        }
    }

    /// Closes the connection (the relay closes any session still open).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: ClientFrame) -> Result<()> {
        self.ws
            .send(Message::text(frame.to_json()))
            .await
            .map_err(|e| Error::Connection(e.to_string()))
    }

    /// The next frame from the relay; an `error` frame is returned as [`Error::Relay`].
    pub async fn next(&mut self) -> Result<ServerFrame> {
        loop {
            let msg = tokio::time::timeout(ANSWER_TIMEOUT, self.ws.next())
                .await
                .map_err(|_| Error::Unexpected(format!("nothing within {ANSWER_TIMEOUT:?}")))?
                .ok_or_else(|| Error::Unexpected("the relay closed the connection".into()))?
                .map_err(|e| Error::Connection(e.to_string()))?;
            match msg {
                Message::Text(text) => {
                    return match serde_json::from_str(text.as_str()) {
                        Ok(ServerFrame::Error { code, message }) => {
                            Err(Error::Relay { code, message })
                        }
                        Ok(frame) => Ok(frame),
                        Err(e) => Err(Error::Unexpected(format!("frame {text:?}: {e}"))),
                    };
                }
                Message::Close(_) => {
                    return Err(Error::Unexpected("the relay closed the connection".into()));
                }
                _ => {}
            }
        }
    }
}

/// Plays `track_id` over and over, `beats_per_play` paid seconds each, until `shutdown`; after any failure waits
/// two seconds, reconnects and says hello again. With `audio`, fetches, verifies, decrypts and decodes the chunk of
/// every key an ack releases, counting into its counters.
pub async fn stream(
    relay: Url,
    domain: VoucherDomain,
    identity: Identity,
    track_id: u64,
    beats_per_play: u64,
    audio: Option<Listening>,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = plays(&relay, &domain, &identity, track_id, beats_per_play, audio.as_ref()) => r,
        };
        if let Err(e) = result {
            warn!(target: "beatstream::sim", listener = %identity.grant.listener, error = %e, "simulated player: reconnecting");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// One connection's plays, until it fails.
async fn plays(
    relay: &Url,
    domain: &VoucherDomain,
    identity: &Identity,
    track_id: u64,
    beats: u64,
    audio: Option<&Listening>,
) -> Result<()> {
    // A play longer than the track ends with it: the relay closes the session after acking its last second, and
    // `stop` then returns the total without sending anything.
    let mut client = Client::connect(relay).await?;
    client.hello(identity).await?;
    loop {
        let playing = client.play(track_id).await?;
        let paid = client.pay(identity, domain, &playing, beats).await;
        // The seconds paid for are listened to even when the play then failed.
        let keys = client.take_keys();
        if let Some(audio) = audio {
            audio.track.play(&keys, &audio.counters).await;
        }
        paid?;
        client.stop(&playing).await?;
    }
}

fn parse(value: &str, what: &str) -> Result<U256> {
    value.parse().map_err(|_| Error::Unexpected(format!("{what} {value:?} is not an amount")))
}
