//! TLS for every client the node opens (https and wss RPC, the Yellow node, Postgres): rustls on `ring`.
//!
//! rustls picks its cryptography from a process-wide provider; the HTTP client behind alloy panics when it
//! builds one with none installed. [`install_crypto_provider`] installs `ring` once; every entry point that
//! opens a connection (each service's `run`, the binary's `main`, the test kits) calls it first.

use std::sync::Once;

/// Installs rustls' `ring` provider as the process default, once; later calls do nothing.
///
/// If another provider was installed first (by an embedding program), that one is kept.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An `Err` means a provider was already installed: keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installing_twice_keeps_one_provider() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
