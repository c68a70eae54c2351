//! A local KMS-compatible server for the tests of keys held in AWS KMS: moto's server (PyPI `moto[server]` 5.2.5,
//! installed into `target/venv` by `script/moto.sh`), started by `script/moto_kms.py`.
//!
//! **One behaviour of moto is corrected** in that launcher, and only one: moto ignores `MessageType=DIGEST` on
//! `Sign` (its docs say DIGEST is not implemented) and signs the SHA-256 of the 32 bytes instead, so an Ethereum
//! signature from it does not recover to the key's address. The launcher signs a DIGEST as the digest itself, as
//! AWS KMS does. Every other answer (keys, key specs, public keys, errors) is moto's.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use alloy::primitives::{Address, keccak256};
use aws_sdk_kms::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    types::{KeySpec, KeyUsageType},
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use beatstream_signer::AwsSettings;
use eyre::{WrapErr, bail, eyre};

use crate::workspace_root;

/// The region the server is asked in (moto keeps keys per region).
pub const REGION: &str = "us-east-1";
/// moto accepts any credentials.
const CREDENTIALS: (&str, &str) = ("testing", "testing");
/// Installing the server on a fresh clone, then starting it.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct MotoKms {
    child: Child,
    endpoint: String,
    client: Client,
}

impl MotoKms {
    /// Installs the server if needed (`script/moto.sh`, idempotent) and starts it on a free port.
    pub fn start() -> eyre::Result<Self> {
        let root = workspace_root();
        let status = Command::new(root.join("script/moto.sh"))
            .status()
            .wrap_err("running script/moto.sh (needs Python 3 with venv and pip)")?;
        if !status.success() {
            bail!(
                "script/moto.sh failed ({status}): moto's server could not be installed into target/venv"
            );
        }
        let mut child = Command::new(root.join("target/venv/bin/python"))
            .arg(root.join("script/moto_kms.py"))
            // The launcher serves until its standard input closes: it ends with this process, however it ends.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .wrap_err("starting script/moto_kms.py")?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                let _ = child.kill();
                return Err(eyre!(e).wrap_err("reading moto's first line"));
            }
            Err(_) => {
                let _ = child.kill();
                bail!("moto's server did not start within {START_TIMEOUT:?}");
            }
        };
        let Some(endpoint) = line.trim().strip_prefix("listening on ").map(str::to_owned) else {
            let _ = child.kill();
            bail!("moto's server said {line:?} instead of its address");
        };
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new(
                CREDENTIALS.0,
                CREDENTIALS.1,
                None,
                None,
                "moto",
            ))
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            )
            .build();
        Ok(Self { child, endpoint, client: Client::from_conf(config) })
    }

    /// The server's URL (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// AWS settings pointing a signer at this server.
    pub fn settings(&self) -> AwsSettings {
        AwsSettings {
            endpoint_url: Some(self.endpoint.clone()),
            region: Some(REGION.into()),
            credentials: Some((CREDENTIALS.0.into(), CREDENTIALS.1.into())),
        }
    }

    /// The standard AWS variables pointing a child process at this server.
    pub fn env(&self) -> [(&'static str, String); 4] {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", CREDENTIALS.0.into()),
            ("AWS_SECRET_ACCESS_KEY", CREDENTIALS.1.into()),
        ]
    }

    /// Creates a signing key of `spec` through the KMS API; returns its key id.
    pub async fn create_key(&self, spec: KeySpec) -> eyre::Result<String> {
        let created = self
            .client
            .create_key()
            .key_spec(spec)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .wrap_err("CreateKey")?;
        let key = created.key_metadata().ok_or_else(|| eyre!("CreateKey returned no key"))?;
        Ok(key.key_id().to_owned())
    }

    /// Creates an Ethereum key (`ECC_SECG_P256K1`); returns its key id and its address.
    pub async fn create_ethereum_key(&self) -> eyre::Result<(String, Address)> {
        let key_id = self.create_key(KeySpec::EccSecgP256K1).await?;
        let address = self.address(&key_id).await?;
        Ok((key_id, address))
    }

    /// The address of a secp256k1 key, from its public key as KMS gives it (DER `SubjectPublicKeyInfo`, ending
    /// in the uncompressed point `04 ‖ x ‖ y`): the last 20 bytes of `keccak256(x ‖ y)`. Worked out here rather
    /// than by the signer under test.
    pub async fn address(&self, key_id: &str) -> eyre::Result<Address> {
        let public =
            self.client.get_public_key().key_id(key_id).send().await.wrap_err("GetPublicKey")?;
        let der = public.public_key().ok_or_else(|| eyre!("no public key"))?.as_ref();
        let point = &der[der.len().saturating_sub(65)..];
        if der.len() != 88 || point[0] != 0x04 {
            bail!("not an uncompressed secp256k1 public key: {} bytes", der.len());
        }
        Ok(Address::from_slice(&keccak256(&point[1..])[12..]))
    }
}

impl Drop for MotoKms {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
