//! One WebSocket endpoint, connected on first use and again after it dropped for good, so an endpoint that is down
//! when the service starts is only passed over.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use alloy::{
    pubsub::{ConnectionHandle, PubSubConnect, PubSubFrontend},
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{
        RpcError, TransportError, TransportErrorKind, TransportFut, TransportResult,
        ws::{WsBackend, WsConnect},
    },
};
use tokio::sync::Mutex;
use tokio_tungstenite::{Connector, tungstenite::client::IntoClientRequest};
use url::Url;

use super::{
    endpoint_label,
    http::{EndpointFailure, causes},
    tls::Roots,
};
use crate::Result;

/// Pings on an idle connection, as alloy's own WebSocket transport does.
const KEEPALIVE: Duration = Duration::from_secs(10);

/// A ws:// or wss:// JSON-RPC endpoint.
#[derive(Clone, Debug)]
pub(super) struct WsEndpoint {
    url: Url,
    label: Arc<str>,
    tls: Option<Arc<rustls::ClientConfig>>,
    connection: Arc<Mutex<Option<PubSubFrontend>>>,
}

impl WsEndpoint {
    /// An endpoint at `url`; wss:// trusts `roots` besides the system's and the webpki roots.
    pub(super) fn new(url: Url, roots: &Roots) -> Result<Self> {
        Ok(Self {
            label: endpoint_label(&url).into(),
            url,
            tls: roots.websocket()?,
            connection: Default::default(),
        })
    }

    async fn request(self, req: RequestPacket) -> TransportResult<ResponsePacket> {
        let frontend = {
            let mut connection = self.connection.lock().await;
            match &*connection {
                Some(frontend) => frontend.clone(),
                None => {
                    let frontend = self.connect().await?;
                    *connection = Some(frontend.clone());
                    frontend
                }
            }
        };
        let result = frontend.send_packet(req).await;
        if let Err(RpcError::Transport(TransportErrorKind::BackendGone)) = &result {
            // alloy gave up reconnecting: the next request connects afresh.
            self.connection.lock().await.take();
        }
        result
    }

    async fn connect(&self) -> TransportResult<PubSubFrontend> {
        let connected = match &self.tls {
            Some(tls) => Tls { url: self.url.clone(), tls: tls.clone() }.into_service().await,
            None => WsConnect::new(self.url.as_str()).into_service().await,
        };
        connected.map_err(|e| {
            TransportErrorKind::custom(EndpointFailure::Unreachable {
                endpoint: self.label.to_string(),
                reason: format!("WebSocket connection failed: {}", causes(&e)),
            })
        })
    }
}

impl tower::Service<RequestPacket> for WsEndpoint {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.clone().request(req))
    }
}

/// A wss:// connection checked against `--rpc-ca-file` too (alloy's `WsConnect` takes no TLS configuration).
struct Tls {
    url: Url,
    tls: Arc<rustls::ClientConfig>,
}

impl PubSubConnect for Tls {
    fn is_local(&self) -> bool {
        false
    }

    async fn connect(&self) -> TransportResult<ConnectionHandle> {
        // `WsConnect` builds the request, with the Authorization header of a URL's user part.
        let request = WsConnect::new(self.url.as_str())
            .into_client_request()
            .map_err(TransportErrorKind::custom)?;
        let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(Connector::Rustls(self.tls.clone())),
        )
        .await
        .map_err(TransportErrorKind::custom)?;
        let (handle, interface) = ConnectionHandle::new();
        WsBackend::from_socket(socket, interface, KEEPALIVE).spawn();
        Ok(handle)
    }
}
