//! The demo's chain side: `demo.beatstream.eth` with three tracks and a funded listener, simulated listeners (the
//! sim crate's players), and what `beatstream dev` prints while it runs.

use std::sync::Arc;

use alloy::{
    network::EthereumWallet,
    primitives::{Address, B256, U256, address},
    providers::{DynProvider, Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use beatstream_primitives::{
    Deployment, VoucherDomain,
    contracts::{
        BeatStreamRegistry::{self, TextRecord, TrackInput},
        BeatStreamVault, MockUSDC,
    },
};
use beatstream_sim::{
    audio::{AudioCounters, Listening, TrackAudio},
    keys::Identity,
};
use beatstream_studio::client::StudioClient;
use eyre::WrapErr;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::totals::{totals, wait_indexed};
use crate::cli::DevArgs;

const USDC: u64 = 1_000_000;
/// The demo artist's rate: 0.001 USDC a second.
const DEMO_RATE: u64 = 1_000;
/// Paid seconds per play of a simulated listener before it stops and plays again.
const BEATS_PER_PLAY: u64 = 60;
/// The demo tracks: title, seed of their generated music, and seconds.
const DEMO_TRACKS: [(&str, u64, u32); 3] =
    [("Genesis Block", 1, 30), ("Gas Lights", 2, 45), ("Finality", 3, 60)];
/// The demo's split: "Gas Lights" (the second track) pays the artist 70%, a featured vocalist (anvil account 3) 20% and
/// a producer (account 4) 10%, in basis points.
const DEMO_SPLIT_TRACK: usize = 1;
const FEATURED: Address = address!("0x90F79bf6EB2c4f870365E785982E1f101E93b906");
const PRODUCER: Address = address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");
const DEMO_SPLIT_SHARES: [u16; 3] = [7_000, 2_000, 1_000];
/// The demo listener's tips: to the artist (`None`) or to the split track's payee (`Some`), in base units, with a
/// message (markup included: the app shows it escaped).
const DEMO_TIPS: [(bool, u64, &str); 3] = [
    (false, 2 * USDC, "First tip on BeatStream. Love the synths!"),
    (true, USDC / 2, "Gas Lights on repeat ♥ that vocal"),
    (false, USDC, "<b>gm</b> from the dev node, shown escaped, never rendered"),
];

/// The demo's chain side.
pub(super) struct Demo {
    deployment: Deployment,
    domain: VoucherDomain,
    admin: DynProvider,
    artist: DynProvider,
    listener: DynProvider,
    keys: Vec<PrivateKeySigner>,
}

impl Demo {
    pub(super) fn new(
        rpc: &Url,
        deployment: &Deployment,
        keys: &[PrivateKeySigner],
    ) -> eyre::Result<Self> {
        // The services' client (any scheme, TLS, retries), with a wallet per role.
        let client = beatstream_primitives::rpc::client(&rpc.clone().into())?;
        let as_ = |k: &PrivateKeySigner| {
            ProviderBuilder::new()
                .wallet(EthereumWallet::from(k.clone()))
                .connect_client(client.clone())
                .erased()
        };
        Ok(Self {
            deployment: *deployment,
            domain: VoucherDomain::new(deployment.chain_id, deployment.contracts.vault),
            admin: as_(&keys[0]),
            artist: as_(&keys[1]),
            listener: as_(&keys[2]),
            keys: keys.to_vec(),
        })
    }

    /// Seeds the demo, prints where to look, starts the simulated players and prints totals until `shutdown`.
    pub(super) async fn run(
        self,
        args: DevArgs,
        rpc: Url,
        database_url: String,
        shutdown: CancellationToken,
    ) -> eyre::Result<()> {
        let seeded = async {
            let tracks = self.seed(&args).await.wrap_err("seeding the demo artist and listener")?;
            wait_indexed(&database_url, &rpc).await?;
            self.tip(&args).await.wrap_err("sending the demo listener's tips through the relay")?;
            eyre::Ok(tracks)
        };
        let tracks = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            seeded = seeded => seeded?,
        };
        let keys = &self.keys;
        let deployment = &self.deployment;
        if let Some(path) = &args.info_file {
            self.write_info(path, &args, &rpc, &tracks)
                .await
                .wrap_err_with(|| format!("writing the info file {}", path.display()))?;
        }

        println!();
        println!("BeatStream dev node is ready.");
        println!(
            "  App:        http://{}/ (listener: a burner account the faucet funds; artist: #/artist)",
            args.api_listen
        );
        println!("  GraphiQL:   http://{}/graphql", args.api_listen);
        println!("  Subscriptions: ws://{}/graphql/ws", args.api_listen);
        println!("  Relay:      ws://{}/ws/stream", args.relay_listen);
        println!(
            "  Chain:      {rpc} (chain {}), vault {}",
            deployment.chain_id, deployment.contracts.vault
        );
        println!("  Postgres:   {database_url}");
        println!(
            "  Demo:       demo.beatstream.eth (artist {}), listener {}",
            keys[1].address(),
            keys[2].address()
        );
        println!(
            "  Audio:      generated music, uploaded through the studio and published by the demo artist:"
        );
        for (i, (title, root, duration)) in tracks.iter().enumerate() {
            println!(
                "    track {} {title:?} ({duration} s): http://{}/audio/{root}/manifest.json",
                i + 1,
                args.api_listen
            );
        }
        println!(
            "  Split:      track {} {:?} pays demo 70%, {} 20% (featured vocalist), {} 10% (producer)",
            DEMO_SPLIT_TRACK + 1,
            DEMO_TRACKS[DEMO_SPLIT_TRACK].0,
            FEATURED,
            PRODUCER
        );
        println!(
            "  Tips:       {} from the demo listener, with messages; the keeper settles them with its next batch",
            DEMO_TIPS.len()
        );
        println!();
        println!("Paste into GraphiQL:");
        println!(
            "  {{ artist(name: \"demo\") {{ name earnings {{ earned {{ usdc }} pending {{ usdc }} }} stats {{ streams seconds \
             uniqueListeners }} tracks {{ edges {{ node {{ id title }} }} }} }} stats {{ liveSessions settled {{ usdc }} }} }}"
        );
        println!();
        if args.listeners > 0 {
            println!("Starting {} simulated listeners; Ctrl-C stops everything.", args.listeners);
            let players = self
                .fund_players(args.listeners)
                .await
                .wrap_err("funding the simulated listeners")?;
            let relay_url: Url = format!("ws://{}/ws/stream", args.relay_listen).parse()?;
            // Each track's manifest, fetched and checked against the chain as a player does.
            let http = beatstream_sim::audio::http_client()?;
            let base: Url = format!("http://{}", args.api_listen).parse()?;
            let mut audio = Vec::with_capacity(tracks.len());
            for (_, root, duration) in &tracks {
                let track = TrackAudio::fetch(&http, &base, *root, *duration)
                    .await?
                    .ok_or_else(|| eyre::eyre!("the node serves no audio for {root}"))?;
                audio.push(Arc::new(track));
            }
            let counters = Arc::new(AudioCounters::default());
            // The sim crate's player: plays a minute at a time, paying every beat, fetches, verifies and decrypts
            // each second whose key an ack releases, and reconnects after errors.
            for (i, identity) in players.into_iter().enumerate() {
                let listening =
                    Listening { track: audio[i % 3].clone(), counters: counters.clone() };
                tokio::spawn(beatstream_sim::client::stream(
                    relay_url.clone(),
                    self.domain.clone(),
                    identity,
                    (i % 3) as u64 + 1,
                    BEATS_PER_PLAY,
                    Some(listening),
                    shutdown.clone(),
                ));
            }
            totals(&database_url, Some(counters), shutdown).await
        } else {
            println!(
                "Ctrl-C stops everything. `--listeners N` (make dev ARGS=\"--listeners 10\") adds simulated players."
            );
            totals(&database_url, None, shutdown).await
        }
    }

    /// `demo.beatstream.eth` with records and three tracks whose generated audio the artist uploads to the studio
    /// and publishes; a listener with 100 USDC deposited. Returns each track's title, root and seconds.
    async fn seed(&self, args: &DevArgs) -> eyre::Result<Vec<(&'static str, B256, u32)>> {
        let registry = BeatStreamRegistry::new(self.deployment.contracts.registry, &self.artist);
        let records = vec![
            TextRecord {
                key: "avatar".into(),
                value: "https://beatstream.example/demo.png".into(),
            },
            TextRecord { key: "description".into(), value: "The BeatStream demo artist".into() },
            TextRecord { key: "genre".into(), value: "electronic".into() },
        ];
        let node = beatstream_primitives::register_artist(
            &registry,
            self.keys[1].address(),
            "demo",
            U256::from(DEMO_RATE),
            records,
        )
        .await?;
        // The artist signs in to the studio with their wallet, uploads each track's audio and publishes it with
        // the root and seconds the studio answers, as docs/STUDIO.md tells an artist to.
        let api: Url = format!("http://{}", args.api_listen).parse()?;
        let studio = StudioClient::sign_in(&api, self.deployment.chain_id, &self.keys[1])
            .await
            .wrap_err("signing in to the studio as the demo artist")?;
        let mut tracks = Vec::with_capacity(DEMO_TRACKS.len());
        for (title, seed, seconds) in DEMO_TRACKS {
            let wav =
                tokio::task::spawn_blocking(move || beatstream_audio::demo::track(seed, seconds))
                    .await?;
            let uploaded = studio
                .upload("demo", "audio/wav", wav)
                .await
                .wrap_err_with(|| format!("uploading {title:?}"))?;
            let input = TrackInput {
                title: title.into(),
                duration: uploaded.duration,
                ratePerSecond: 0,
                contentHash: uploaded.root,
                metadataURI: format!("ipfs://demo/{}", title.to_lowercase().replace(' ', "-")),
            };
            ensure(registry.publishTrack(node, input).send().await?).await?;
            if tracks.len() == DEMO_SPLIT_TRACK {
                // The track just published is the registry's newest.
                let track_id = registry.trackCount().call().await?;
                let recipients = vec![self.keys[1].address(), FEATURED, PRODUCER];
                let shares = DEMO_SPLIT_SHARES.to_vec();
                let vault = BeatStreamVault::new(self.deployment.contracts.vault, &self.artist);
                ensure(vault.setSplit(node, track_id, recipients, shares).send().await?)
                    .await
                    .wrap_err_with(|| format!("setting the split of {title:?}"))?;
            }
            tracks.push((title, uploaded.root, uploaded.duration));
        }
        let amount = U256::from(100 * USDC);
        let usdc = MockUSDC::new(self.deployment.contracts.usdc, &self.listener);
        ensure(usdc.mint(self.keys[2].address(), amount).send().await?).await?;
        ensure(usdc.approve(self.deployment.contracts.vault, amount).send().await?).await?;
        let vault = BeatStreamVault::new(self.deployment.contracts.vault, &self.listener);
        ensure(vault.deposit(amount).send().await?).await?;
        Ok(tracks)
    }

    /// The demo listener's tips, through the relay like a player's: a grant of its own, each tip signed by the
    /// session key, sent and acked. The split track's tip names its split payee (`playPayee`).
    async fn tip(&self, args: &DevArgs) -> eyre::Result<()> {
        let registry = BeatStreamRegistry::new(self.deployment.contracts.registry, &self.artist);
        let vault = BeatStreamVault::new(self.deployment.contracts.vault, &self.artist);
        let count = registry.trackCount().call().await?;
        let split_track = count - U256::from(DEMO_TRACKS.len() - 1 - DEMO_SPLIT_TRACK);
        let split_payee = vault.playPayee(split_track).call().await?;
        let secp = secp256k1::Secp256k1::signing_only();
        let wallet = beatstream_sim::keys::Key::from_secret(&secp, self.keys[2].to_bytes())
            .ok_or_else(|| eyre::eyre!("the demo listener's key"))?;
        let seed = format!("dev-tips/{}", PrivateKeySigner::random().address());
        let session = beatstream_sim::keys::Key::derive(&secp, &seed, "session");
        let expires_at = beatstream_primitives::unix_now() + 86_400;
        let identity = Identity::from_keys(
            &secp,
            &self.domain,
            wallet,
            session,
            U256::from(10 * USDC),
            expires_at,
            beatstream_primitives::unix_now(),
        );
        let relay: Url = format!("ws://{}/ws/stream", args.relay_listen).parse()?;
        let mut client = beatstream_sim::client::Client::connect(&relay).await?;
        client.hello(&identity).await?;
        for (i, (to_split, amount, message)) in DEMO_TIPS.into_iter().enumerate() {
            let payee = if to_split { split_payee } else { self.keys[1].address() };
            client
                .tip(&identity, &self.domain, payee, U256::from(i + 1), U256::from(amount), message)
                .await?;
        }
        client.close().await;
        Ok(())
    }

    /// `--info-file`: where everything is, as JSON (docs/CONFIGURATION.md), written whole (a temporary file renamed) so
    /// a reader polling for it never sees half of it.
    async fn write_info(
        &self,
        path: &std::path::Path,
        args: &DevArgs,
        rpc: &Url,
        tracks: &[(&'static str, B256, u32)],
    ) -> eyre::Result<()> {
        let (deployment, keys) = (&self.deployment, &self.keys);
        // Each track's id, found by its root among the registry's tracks (a chain given with --rpc-url may have
        // others before them).
        let registry = BeatStreamRegistry::new(deployment.contracts.registry, &self.artist);
        let count: u64 = registry.trackCount().call().await?.saturating_to();
        let mut ids = Vec::with_capacity(tracks.len());
        for (_, root, _) in tracks {
            let mut found = None;
            for id in (1..=count).rev() {
                if registry.track(U256::from(id)).call().await?.contentHash == *root {
                    found = Some(id);
                    break;
                }
            }
            ids.push(found.ok_or_else(|| eyre::eyre!("no published track has root {root}"))?);
        }
        let api = format!("http://{}", args.api_listen);
        let key = |k: &PrivateKeySigner| alloy::hex::encode_prefixed(k.to_bytes());
        let root_node = deployment.root_node;
        let label_hash = alloy::primitives::keccak256("demo");
        let node =
            alloy::primitives::keccak256([root_node.as_slice(), label_hash.as_slice()].concat());
        let info = serde_json::json!({
            "chainId": deployment.chain_id,
            "rpcUrl": rpc.as_str().trim_end_matches('/'),
            "apiUrl": api,
            "graphqlUrl": format!("{api}/graphql"),
            "graphqlWsUrl": format!("ws://{}/graphql/ws", args.api_listen),
            "relayUrl": format!("ws://{}/ws/stream", args.relay_listen),
            "contracts": deployment.contracts,
            "rootNode": root_node,
            "withdrawalDelay": deployment.withdrawal_delay,
            "deployment": deployment,
            "demo": {
                "artist": {
                    "label": "demo",
                    "name": "demo.beatstream.eth",
                    "address": keys[1].address().to_checksum(None),
                    "node": node,
                    "privateKey": key(&keys[1]),
                },
                "listener": {
                    "address": keys[2].address().to_checksum(None),
                    "privateKey": key(&keys[2]),
                },
                "tracks": tracks.iter().zip(&ids).map(|((title, root, duration), id)| serde_json::json!({
                    "id": id.to_string(),
                    "title": title,
                    "root": root,
                    "duration": duration,
                    "manifestUrl": format!("{api}/audio/{root}/manifest.json"),
                })).collect::<Vec<_>>(),
            },
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&info)? + "\n")?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Fresh wallets with 10 USDC each deposited by account 0, and a grant and session key each.
    async fn fund_players(&self, n: usize) -> eyre::Result<Vec<Identity>> {
        let per = U256::from(10 * USDC);
        let usdc = MockUSDC::new(self.deployment.contracts.usdc, &self.admin);
        let total = per * U256::from(n);
        ensure(usdc.mint(self.keys[0].address(), total).send().await?).await?;
        ensure(usdc.approve(self.deployment.contracts.vault, total).send().await?).await?;
        let vault = BeatStreamVault::new(self.deployment.contracts.vault, &self.admin);
        let expires_at = beatstream_primitives::unix_now() + 7 * 86_400;
        // A fresh seed per run: new wallets and keys every time, as random keys would be.
        let seed = format!("dev/{}", PrivateKeySigner::random().address());
        let secp = secp256k1::Secp256k1::signing_only();
        let mut players = Vec::with_capacity(n);
        let mut pending = Vec::new();
        for i in 0..n {
            let identity = Identity::new(&secp, &self.domain, &seed, 0, i, per, expires_at);
            pending.push(vault.depositFor(identity.wallet.address, per).send().await?);
            players.push(identity);
        }
        for tx in pending {
            ensure(tx).await?;
        }
        Ok(players)
    }
}

async fn ensure(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> eyre::Result<()> {
    let receipt = pending.get_receipt().await?;
    eyre::ensure!(receipt.status(), "transaction {} reverted", receipt.transaction_hash);
    Ok(())
}
