//! The relay as a service: [`Server::bind`] sets it up (chain id, vault, Postgres, writers, Yellow), [`Server::serve`]
//! runs it until shutdown and stores what is in flight.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use alloy::primitives::Address;

use beatstream_primitives::{Deployment, VoucherDomain};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{info, warn};

use crate::{
    Config, Error, Result,
    chain::Chain,
    db::{self, Pool, store::Store},
    metrics::Metrics,
    relay::Relay,
    verify::Verifier,
    writer::{self, WriterConfig, Writers},
    ws,
    yellow::{Submitter, Yellow},
};

/// Runs the stream relay until `shutdown` is cancelled, then closes every session, stores what is in flight and
/// returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    Server::bind(config, shutdown).await?.serve().await
}

/// The relay id when none is given: the same on every restart of one relay (its host's name and its port), so a
/// restarted relay finds and closes the sessions its previous run left open; two relays running at once never share
/// it (one host cannot bind one port twice).
pub fn default_relay_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("relay-{host}-{port}")
}

/// A relay that is bound and ready to serve; [`Server::local_addr`] tells where (useful with port 0).
#[derive(Debug)]
pub struct Server {
    relay: Arc<Relay>,
    listener: tokio::net::TcpListener,
    writer_tasks: Vec<std::thread::JoinHandle<()>>,
    submitter: Option<Submitter>,
    pool: Pool,
    config: Config,
}

impl Server {
    /// Validates `config`, connects to the chain (for its id, unless given) and Postgres, migrates, starts the
    /// writers and binds the listen address.
    pub async fn bind(config: Config, shutdown: CancellationToken) -> Result<Self> {
        // The relay's own token: cancelled by `shutdown`, and by a writer that panics (which stops the relay alone,
        // with the panic's cause as `serve`'s error).
        let shutdown = shutdown.child_token();
        config.validate()?;
        raise_fd_limit();
        let chain = Chain::new(config.rpc.clone());
        let chain_id = match config.chain_id {
            Some(id) => id,
            None => chain.chain_id().await?,
        };
        let vault = match config.vault {
            Some(vault) => vault,
            None => vault_from_deployment(&config, chain_id)?,
        };

        let pool = db::connect(&config.database, config.options.db_connections).await?;

        let yellow = Yellow::from_config(&config.options.yellow).await?;
        let store = Store::new(pool.clone(), chain_id, vault);
        // Whatever a previous run under this id left open (a crash, a kill) is closed before the relay listens. The
        // default id names the port, so with port 0 the port is bound first.
        let bind = || async {
            tokio::net::TcpListener::bind(config.options.listen)
                .await
                .map_err(|source| Error::Bind { addr: config.options.listen, source })
        };
        let (relay_id, bound) = match (&config.options.relay_id, config.options.listen.port()) {
            (Some(id), _) => (id.clone(), None),
            (None, 0) => {
                let listener = bind().await?;
                (
                    default_relay_id(listener.local_addr().map_err(Error::Serve)?.port()),
                    Some(listener),
                )
            }
            (None, port) => (default_relay_id(port), None),
        };
        let closed = store.close_orphans(&relay_id).await?;
        if closed > 0 {
            warn!(target: "beatstream::relay", %relay_id, sessions = closed, "closed sessions of a previous run");
        }
        let listener = match bound {
            Some(listener) => listener,
            None => bind().await?,
        };
        let audio_key = config
            .audio_key
            .load()
            .map_err(|e| Error::Config(e.to_string()))?
            .map(beatstream_audio::NodeKey::from_bytes);
        let metrics = Metrics::new();
        let (writers, writer_tasks) = Writers::spawn(
            config.database.connect_options()?.application_name("beatstream-relay-writer"),
            WriterConfig {
                commit_interval: Duration::from_micros(config.options.commit_interval_us),
                chain_id: store.chain_id(),
                relay_id: relay_id.clone(),
                lease_multiple: config.options.lease_beats,
            },
            config.options.writers,
            config.options.commit_max,
            metrics.clone(),
            shutdown.clone(),
        )
        .map_err(Error::Serve)?;
        let submitter = yellow.as_ref().map(|y| {
            info!(target: "beatstream::relay", node = %config.options.yellow.yellow_url.as_ref().map(|u| u.as_str()).unwrap_or_default(), operator = %y.operator(), signer = %y.signer_backend(), app = %y.app_id, asset = %y.asset, "yellow transport on");
            Submitter::new(y.clone(), pool.clone(), relay_id.clone(), metrics.clone())
        });
        let relay = Arc::new(Relay {
            limits: (&config.options).into(),
            verifier: Verifier::new(VoucherDomain::new(chain_id, vault), chain),
            store,
            writers,
            metrics,
            relay_id,
            shutdown,
            yellow,
            audio_key,
        });
        Ok(Self { relay, listener, writer_tasks, submitter, pool, config })
    }

    /// The state every connection shares, for driving [`crate::conn::serve`] without a socket (tests).
    pub fn relay(&self) -> Arc<Relay> {
        self.relay.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(Error::Serve)
    }

    /// Serves until the shutdown token is cancelled, then closes every session and waits (bounded by
    /// `--relay-shutdown-secs`) for in-flight vouchers and closes to be stored.
    pub async fn serve(self) -> Result<()> {
        let Self { relay, listener, writer_tasks, submitter, pool, config } = self;
        // The submitter outlives the connections (it forwards their closes), then stops with its own token.
        let submitter_stop = CancellationToken::new();
        let submitter_task = submitter.map(|s| tokio::spawn(s.run(submitter_stop.clone())));
        let addr = listener.local_addr().map_err(Error::Serve)?;
        let vault = relay.verifier.domain().domain().verifying_contract.unwrap_or_default();
        info!(target: "beatstream::relay", url = %format_args!("ws://{addr}/ws/stream"), relay_id = %relay.relay_id, %vault, "relay listening");

        let tracker = TaskTracker::new();
        let shutdown = relay.shutdown.clone();
        let state = ws::AppState {
            relay: relay.clone(),
            tracker: tracker.clone(),
            max_connections: config.options.max_connections,
        };
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            // Acks are small and latency-bound: no Nagle.
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, ws::router(state))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(Error::Serve)?;

        // No new connections; open ones close their sessions and wait for their last commits.
        tracker.close();
        let grace = Duration::from_secs(config.options.shutdown_secs + 2);
        if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
            warn!(target: "beatstream::relay", "connections still open after the shutdown grace");
        }
        // The last handle on the writers: they drain their queues and stop.
        drop(relay);
        let joined = tokio::task::spawn_blocking(move || writer::join(writer_tasks));
        let writers = match tokio::time::timeout(grace, joined).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(Error::Serve(std::io::Error::other(join_error))),
            Err(_) => {
                warn!(target: "beatstream::relay", "writers still busy after the shutdown grace");
                Ok(())
            }
        };
        if let Some(task) = submitter_task {
            // One last round hands the node the closes just stored; what it cannot take waits for the next start.
            tokio::time::sleep(Duration::from_millis(600)).await;
            submitter_stop.cancel();
            let _ = task.await;
        }
        pool.close().await;
        writers?;
        info!(target: "beatstream::relay", "relay stopped");
        Ok(())
    }
}

fn vault_from_deployment(config: &Config, chain_id: u64) -> Result<Address> {
    let path =
        config.deployment.clone().unwrap_or_else(|| format!("deployments/{chain_id}.json").into());
    let deployment = Deployment::load(&path).map_err(|e| {
        Error::Config(format!(
            "{e}; pass --vault or --deployment (BEATSTREAM_VAULT, BEATSTREAM_DEPLOYMENT)"
        ))
    })?;
    if deployment.chain_id != chain_id {
        return Err(Error::Config(format!(
            "{} is for chain {}, the relay serves chain {chain_id}",
            path.display(),
            deployment.chain_id
        )));
    }
    Ok(deployment.contracts.vault)
}

/// Raises the open-file limit to its hard maximum: each connection is a file descriptor.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
