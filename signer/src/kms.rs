//! Keys in AWS KMS, through alloy's KMS signer.
//!
//! The SDK's client runs on the smithy hyper client with rustls on `ring` (the process' one TLS provider), not the
//! SDK's default HTTPS client, which pulls in rustls on aws-lc-rs (a C build). Region,
//! endpoint (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KMS`) and credentials come from the standard AWS environment
//! (variables, profile files, web identity, ECS and EC2 instance roles) unless [`AwsSettings`] replaces them.

use std::{fmt, time::Duration};

use alloy::primitives::{Address, B256, Signature, keccak256};
use alloy_signer_aws::{AwsSigner, AwsSignerError};
use aws_config::{BehaviorVersion, Region, timeout::TimeoutConfig};
use aws_sdk_kms::{
    Client,
    config::Credentials,
    error::{DisplayErrorContext, SdkError},
    operation::get_public_key::GetPublicKeyOutput,
    types::{KeySpec, KeyUsageType},
};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::{Error, Result};

/// The only key spec that makes Ethereum signatures.
pub const KEY_SPEC: &str = "ECC_SECG_P256K1";

/// Connecting to KMS: a dead endpoint fails in seconds, not minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One KMS request (the SDK retries a failed one, up to three attempts in all).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// A KMS operation with its retries: what a signature may cost a keeper step or a Yellow submission at most.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);

/// What the start-up check signs: a fixed digest, so a KMS that signs something else is caught before it matters.
const CHECK_MESSAGE: &[u8] = b"beatstream signer check";

/// AWS settings given in code, each replacing what the standard AWS environment says (tests pointing at a local
/// KMS-compatible server; embedding programs).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// The KMS endpoint (`AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// The region (`AWS_REGION`).
    pub region: Option<String>,
    /// Static credentials: access key id and secret access key (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for AwsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSettings")
            .field("endpoint_url", &self.endpoint_url)
            .field("region", &self.region)
            .field("credentials", &self.credentials.as_ref().map(|(id, _)| (id, "<redacted>")))
            .finish()
    }
}

/// A KMS key checked and ready to sign.
#[derive(Clone)]
pub(crate) struct KmsKey {
    signer: AwsSigner,
    key_id: String,
    /// The endpoint asked, for errors.
    endpoint: String,
}

impl fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsKey").field("key_id", &self.key_id).finish()
    }
}

impl KmsKey {
    /// Opens `key_id`: asks KMS for its public key, checks it is a secp256k1 signing key, and signs a test digest
    /// that must recover to its address.
    pub(crate) async fn open(key_id: &str, aws: Option<&AwsSettings>) -> Result<Self> {
        let (client, endpoint, region) = client(key_id, aws).await?;
        let public = client.get_public_key().key_id(key_id).send().await.map_err(|e| match &e {
            SdkError::ServiceError(s) if s.err().is_not_found_exception() => {
                Error::KmsKeyNotFound { key_id: key_id.to_owned(), region: region.clone() }
            }
            SdkError::ServiceError(_) => Error::KmsRefused {
                key_id: key_id.to_owned(),
                action: "GetPublicKey",
                cause: DisplayErrorContext(&e).to_string(),
            },
            _ => Error::KmsUnreachable {
                key_id: key_id.to_owned(),
                endpoint: endpoint.clone(),
                cause: DisplayErrorContext(&e).to_string(),
            },
        })?;
        let spec = key_spec(&public).unwrap_or("an unknown key spec");
        let usage = public.key_usage().map_or("an unknown usage", KeyUsageType::as_str);
        if spec != KEY_SPEC || public.key_usage() != Some(&KeyUsageType::SignVerify) {
            return Err(Error::KmsKeySpec {
                key_id: key_id.to_owned(),
                spec: spec.to_owned(),
                usage: usage.to_owned(),
            });
        }
        let signer = AwsSigner::new(client, key_id.to_owned(), None)
            .await
            .map_err(|e| kms_error(key_id, &endpoint, "GetPublicKey", e))?;
        let key = Self { signer, key_id: key_id.to_owned(), endpoint };
        key.sign_hash(&keccak256(CHECK_MESSAGE)).await?;
        Ok(key)
    }

    pub(crate) fn address(&self) -> Address {
        alloy::signers::Signer::address(&self.signer)
    }

    pub(crate) fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs the 32-byte `hash` as a digest. KMS returns `r` and `s` only; the recovery parity is the one whose
    /// recovered address is the key's (neither: the endpoint signed something else).
    pub(crate) async fn sign_hash(&self, hash: &B256) -> Result<Signature> {
        let sig = self
            .signer
            .sign_digest(hash)
            .await
            .map_err(|e| kms_error(&self.key_id, &self.endpoint, "Sign", e))?;
        let address = self.address();
        [false, true]
            .into_iter()
            .map(|parity| Signature::from_signature_and_parity(sig, parity))
            .find(|s| s.recover_address_from_prehash(hash).is_ok_and(|a| a == address))
            .ok_or_else(|| Error::KmsSignatureMismatch { key_id: self.key_id.clone(), address })
    }
}

/// A key's spec as `GetPublicKey` gives it. `CustomerMasterKeySpec` is the deprecated name of `KeySpec`: AWS sends
/// both, some KMS-compatible servers (moto) only the old one.
#[allow(deprecated)]
fn key_spec(public: &GetPublicKeyOutput) -> Option<&str> {
    use aws_sdk_kms::types::CustomerMasterKeySpec;
    public
        .key_spec()
        .map(KeySpec::as_str)
        .or_else(|| public.customer_master_key_spec().map(CustomerMasterKeySpec::as_str))
}

/// The KMS client for `key_id`, the endpoint it asks (for errors) and its region.
async fn client(key_id: &str, aws: Option<&AwsSettings>) -> Result<(Client, String, String)> {
    // rustls panics building a client config when two crypto providers are compiled in and none is installed. The
    // SDK's client is handed `ring` explicitly, and `ring` is made the process default too (what
    // `beatstream_primitives::tls` installs; a provider installed before is kept), so nothing built on this path can
    // meet that panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).http_client(http).timeout_config(timeouts);
    if let Some(aws) = aws {
        if let Some(url) = &aws.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &aws.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some((id, secret)) = &aws.credentials {
            loader = loader.credentials_provider(Credentials::new(
                id.clone(),
                secret.clone(),
                None,
                None,
                "beatstream",
            ));
        }
    }
    let config = loader.load().await;
    let region = config
        .region()
        .map(ToString::to_string)
        .ok_or_else(|| Error::KmsNoRegion { key_id: key_id.to_owned() })?;
    let endpoint = config
        .endpoint_url()
        .map_or_else(|| format!("https://kms.{region}.amazonaws.com"), str::to_owned);
    Ok((Client::new(&config), endpoint, region))
}

/// An error of alloy's KMS signer as ours: KMS' own answers as refusals, the rest as an unreachable KMS.
fn kms_error(key_id: &str, endpoint: &str, action: &'static str, e: AwsSignerError) -> Error {
    let refused = |cause: String| Error::KmsRefused { key_id: key_id.to_owned(), action, cause };
    let unreachable = |cause: String| Error::KmsUnreachable {
        key_id: key_id.to_owned(),
        endpoint: endpoint.to_owned(),
        cause,
    };
    match e {
        AwsSignerError::Sign(e @ SdkError::ServiceError(_)) => {
            refused(DisplayErrorContext(&e).to_string())
        }
        AwsSignerError::GetPublicKey(e @ SdkError::ServiceError(_)) => {
            refused(DisplayErrorContext(&e).to_string())
        }
        AwsSignerError::Sign(e) => unreachable(DisplayErrorContext(&e).to_string()),
        AwsSignerError::GetPublicKey(e) => unreachable(DisplayErrorContext(&e).to_string()),
        other => Error::KmsBadAnswer { key_id: key_id.to_owned(), what: other.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_access_key_never_prints() {
        let aws = AwsSettings {
            endpoint_url: Some("http://127.0.0.1:1".into()),
            region: Some("eu-west-1".into()),
            credentials: Some(("AKIDEXAMPLE".into(), "wJalrXUtnFEMI".into())),
        };
        let shown = format!("{aws:?}");
        assert!(shown.contains("AKIDEXAMPLE") && shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_fails_saying_so() {
        // A port nothing listens on: refused at once, retried by the SDK, then reported with the endpoint.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let aws = AwsSettings {
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
            region: Some("us-east-1".into()),
            credentials: Some(("test".into(), "test".into())),
        };
        let err = KmsKey::open("alias/keeper", Some(&aws)).await.unwrap_err();
        assert!(matches!(err, Error::KmsUnreachable { .. }), "{err:?}");
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!(
                "AWS KMS key alias/keeper: cannot reach KMS at http://127.0.0.1:{port}:"
            )),
            "{shown}"
        );
    }
}
