//! The roots https:// and wss:// endpoints are checked against: the system's, plus those of `--rpc-ca-file`.

use std::{path::Path, sync::Arc};

use rustls::pki_types::{CertificateDer, pem::PemObject};

use crate::{Error, Result};

/// Certificate authorities trusted besides the system's.
#[derive(Clone, Debug, Default)]
pub(super) struct Roots {
    extra: Vec<CertificateDer<'static>>,
}

impl Roots {
    /// The CAs of the PEM file at `path`, or none.
    pub(super) fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let fail = |why: String| Error::Config(format!("--rpc-ca-file {}: {why}", path.display()));
        let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let extra = CertificateDer::pem_slice_iter(&pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("not PEM certificates: {e}")))?;
        if extra.is_empty() {
            return Err(fail("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
        Ok(Self { extra })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.extra.is_empty()
    }

    /// The extra CAs for `reqwest`.
    pub(super) fn reqwest(&self) -> Result<Vec<reqwest::Certificate>> {
        self.extra
            .iter()
            .map(|der| {
                reqwest::Certificate::from_der(der)
                    .map_err(|e| Error::Config(format!("--rpc-ca-file: unusable certificate: {e}")))
            })
            .collect()
    }

    /// A rustls client configuration for WebSockets: the platform's verifier (as `reqwest` uses for https) with
    /// the extra CAs; `None` without any, so WebSockets keep their own defaults.
    pub(super) fn websocket(&self) -> Result<Option<Arc<rustls::ClientConfig>>> {
        if self.extra.is_empty() {
            return Ok(None);
        }
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let fail = |e: rustls::Error| Error::Config(format!("--rpc-ca-file: {e}"));
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            self.extra.clone(),
            provider.clone(),
        )
        .map_err(fail)?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(fail)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Some(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_cannot_be_used_says_why() {
        let missing = Roots::load(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err().to_string();
        assert!(
            missing.starts_with("--rpc-ca-file /nonexistent/ca.pem: cannot read it"),
            "{missing}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "not a certificate\n").unwrap();
        let empty = Roots::load(Some(file.path())).unwrap_err().to_string();
        assert!(
            empty.ends_with("holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
            "{empty}"
        );
        assert!(Roots::load(None).unwrap().is_empty());
    }
}
