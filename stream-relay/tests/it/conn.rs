//! The connection state machine driven through channels, without a socket: `conn::serve` reads `Inbound` items
//! from one channel and writes `Outbound` items into another, as the WebSocket adapter does.

use std::time::Duration;

use alloy::primitives::U256;
use beatstream_stream_relay::{
    Server,
    conn::{self, Inbound, Outbound},
    protocol::{ClientFrame, ServerFrame, Uint},
};
use beatstream_testkit::TestDb;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::*;

/// The player's end of a channel-driven connection.
struct Channels {
    to_relay: mpsc::UnboundedSender<Inbound>,
    from_relay: mpsc::UnboundedReceiver<Outbound>,
}

impl Channels {
    fn send(&self, frame: &ClientFrame) {
        self.to_relay.send(Inbound::Text(frame.to_json())).unwrap();
    }

    async fn recv(&mut self) -> eyre::Result<Outbound> {
        tokio::time::timeout(Duration::from_secs(5), self.from_relay.recv())
            .await?
            .ok_or_else(|| eyre::eyre!("the connection ended"))
    }

    /// The next protocol frame (a close item fails).
    async fn frame(&mut self) -> eyre::Result<ServerFrame> {
        match self.recv().await? {
            Outbound::Frame(frame) => Ok(frame),
            other => eyre::bail!("expected a frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn hello_play_beat_voucher_ack_stop_through_channels() -> eyre::Result<()> {
    let db = TestDb::new().await?;
    let scene = seed_scene(db.pool()).await?;
    let player = Player::new(1_000_000);
    seed_listener(db.pool(), player.listener(), 500_000, 0).await?;
    let stop = CancellationToken::new();
    let server = Server::bind(config(&db, no_rpc()), stop.clone()).await?;

    let (to_relay, inbound) = mpsc::unbounded_channel::<Inbound>();
    let (outbound, from_relay) = mpsc::unbounded_channel::<Outbound>();
    let inbound = futures_util::stream::unfold(inbound, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let outbound = futures_util::sink::unfold(outbound, |tx, item: Outbound| async move {
        tx.send(item).map(|()| tx)
    });
    let task = tokio::spawn(conn::serve(server.relay(), inbound, outbound));
    let mut c = Channels { to_relay, from_relay };

    // hello → ready with the listener's available funds.
    c.send(&player.hello());
    match c.frame().await? {
        ServerFrame::Ready { grant_id, available } => {
            assert_eq!(grant_id, player.grant_id().to_string());
            assert_eq!(available, "500000");
        }
        other => eyre::bail!("expected ready, got {other:?}"),
    }

    // play → session, and the first beat asks for one second at the artist's rate.
    c.send(&ClientFrame::Play { track_id: Uint("1".into()), from: None, beats: None });
    let session = match c.frame().await? {
        ServerFrame::Session { session_id, payee, rate_per_second, .. } => {
            assert_eq!(payee.parse::<alloy::primitives::Address>()?, scene.alice.payee);
            assert_eq!(rate_per_second, "100");
            session_id
        }
        other => eyre::bail!("expected session, got {other:?}"),
    };
    match c.frame().await? {
        ServerFrame::Beat { session_id, second, owed } => {
            assert_eq!((session_id.as_str(), second, owed.as_str()), (session.as_str(), 1, "100"));
        }
        other => eyre::bail!("expected beat 1, got {other:?}"),
    }

    // voucher → ack once stored.
    c.send(&player.voucher(scene.alice.payee, 100));
    loop {
        match c.frame().await? {
            ServerFrame::Ack { session_id, cumulative, .. } => {
                assert_eq!((session_id.as_str(), cumulative.as_str()), (session.as_str(), "100"));
                break;
            }
            ServerFrame::Beat { .. } => {}
            other => eyre::bail!("expected ack, got {other:?}"),
        }
    }
    let (stored, _) = stored_voucher(db.pool(), player.grant_id(), scene.alice.payee)
        .await?
        .ok_or_else(|| eyre::eyre!("the acked voucher is stored"))?;
    assert_eq!(stored, U256::from(100));

    // stop → closed with what the session paid.
    c.send(&ClientFrame::Stop { session_id: session.clone() });
    loop {
        match c.frame().await? {
            ServerFrame::Closed { session_id, total } => {
                assert_eq!((session_id.as_str(), total.as_str()), (session.as_str(), "100"));
                break;
            }
            ServerFrame::Beat { .. } => {}
            other => eyre::bail!("expected closed, got {other:?}"),
        }
    }

    // The player hangs up: the connection ends without a close frame of its own.
    drop(c.to_relay);
    tokio::time::timeout(Duration::from_secs(5), task).await??;
    stop.cancel();
    Ok(())
}
