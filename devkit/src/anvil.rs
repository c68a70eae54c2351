//! A private anvil per test, from the npm-pinned Foundry toolchain.

use std::path::{Path, PathBuf};

use alloy::{
    node_bindings::{Anvil as AnvilBuilder, AnvilInstance},
    primitives::Address,
    signers::local::PrivateKeySigner,
};
use url::Url;

use crate::{Error, Result};

/// A running anvil on a free port; killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    instance: AnvilInstance,
}

impl Anvil {
    /// Starts anvil with its defaults (chain id 31337, ten funded dev accounts).
    pub fn spawn() -> Result<Self> {
        Self::spawn_with(|builder| builder)
    }

    /// Starts anvil after `configure` adjusts the builder (block time, chain id, ...).
    pub fn spawn_with(configure: impl FnOnce(AnvilBuilder) -> AnvilBuilder) -> Result<Self> {
        // Port 0 (the builder's default) lets the OS pick, so tests can run in parallel;
        // an explicit IPv4 host avoids `localhost` resolving to ::1 where anvil is not.
        // Providers built on this chain (alloy's HTTP client) need the process's TLS provider.
        beatstream_primitives::tls::install_crypto_provider();
        let builder = AnvilBuilder::new().path(anvil_path()?).host("127.0.0.1");
        Ok(Self { instance: configure(builder).try_spawn()? })
    }

    /// HTTP JSON-RPC endpoint.
    pub fn endpoint_url(&self) -> Url {
        self.instance.endpoint_url()
    }

    /// WebSocket JSON-RPC endpoint.
    pub fn ws_endpoint_url(&self) -> Url {
        self.instance.ws_endpoint_url()
    }

    /// Chain id anvil reports.
    pub fn chain_id(&self) -> u64 {
        self.instance.chain_id()
    }

    /// Addresses of the funded dev accounts.
    pub fn addresses(&self) -> &[Address] {
        self.instance.addresses()
    }

    /// Signers for the funded dev accounts, in the same order as [`Self::addresses`].
    pub fn signers(&self) -> Vec<PrivateKeySigner> {
        self.instance.keys().iter().map(PrivateKeySigner::from).collect()
    }

    /// Signer for dev account `index`; panics if anvil has fewer accounts.
    pub fn signer(&self, index: usize) -> PrivateKeySigner {
        PrivateKeySigner::from(&self.instance.keys()[index])
    }

    /// Dev account `index`'s private key as `0x` hex, as services take it from the environment.
    pub fn private_key_hex(&self, index: usize) -> String {
        format!("0x{}", alloy::hex::encode(self.instance.keys()[index].to_bytes()))
    }

    /// The underlying alloy handle, for anything not wrapped here.
    pub fn instance(&self) -> &AnvilInstance {
        &self.instance
    }
}

/// The workspace root, found from this crate's manifest directory at compile time.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("devkit lives inside the workspace")
}

/// Path of the anvil binary installed by `make setup` under `node_modules/`.
///
/// Prefers the native binary of the platform package over the `.bin/anvil` Node wrapper:
/// it starts faster and signals reach anvil itself, so a killed test leaves no orphan.
pub fn anvil_path() -> Result<PathBuf> {
    foundry_tool("anvil").map_err(Error::AnvilMissing)
}

/// Path of a Foundry tool (`forge`, `anvil`, `cast`) installed by `make setup` under `node_modules/`: the native
/// binary of the platform package where there is one, else the `.bin/` Node wrapper (which starts slower, does not
/// forward every signal and loses the tool's exit status), else the first `tool` on `PATH`. `Err` holds the wrapper's
/// path when none exists.
pub fn foundry_tool(tool: &str) -> std::result::Result<PathBuf, PathBuf> {
    let modules = workspace_root().join("node_modules");
    let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("linux-amd64"),
        ("linux", "aarch64") => Some("linux-arm64"),
        ("macos", "x86_64") => Some("darwin-amd64"),
        ("macos", "aarch64") => Some("darwin-arm64"),
        _ => None,
    };
    if let Some(platform) = platform {
        let native = modules.join(format!("@foundry-rs/{tool}-{platform}/bin/{tool}"));
        if native.is_file() {
            return Ok(native);
        }
    }
    let wrapper = modules.join(".bin").join(tool);
    if wrapper.is_file() {
        return Ok(wrapper);
    }
    // A binary used away from the checkout it was built in (installed, or the checkout moved): the tool on `PATH`.
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(tool))
        .find(|path| path.is_file())
        .ok_or(wrapper)
}
