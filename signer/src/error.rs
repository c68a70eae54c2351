//! The error type of this crate. Messages name the flag, file or KMS key to fix, never a key's secret.

use std::path::PathBuf;

use alloy::primitives::Address;

/// Why a key could not be chosen, loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No backend was chosen for a role that needs a key.
    #[error("no {role} key: set one of {options}")]
    NoKey {
        /// The role ("keeper", "Yellow operator").
        role: &'static str,
        /// Its flags, each with its variable.
        options: String,
    },
    /// More than one backend was chosen for one role.
    #[error("several {role} keys: {given} are set; set exactly one")]
    SeveralKeys {
        /// The role.
        role: &'static str,
        /// The flags that were set.
        given: String,
    },
    /// A flag that needs another one came without it (a keystore and its password file).
    #[error("{flag} needs {needs}")]
    Incomplete {
        /// The flag that was set.
        flag: String,
        /// The flag it needs.
        needs: String,
    },
    /// The hex private key does not parse (the message never contains it).
    #[error("{flag} is not a 32-byte hex private key")]
    BadPrivateKey {
        /// The flag it came from.
        flag: String,
    },
    /// The keystore's password file could not be read.
    #[error("reading the keystore password file {path}: {cause}")]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// The keystore could not be read or decrypted (a wrong password, a corrupt file).
    #[error("decrypting the keystore {path}: {cause}")]
    Keystore {
        /// The keystore file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// No AWS region was found for a KMS key.
    #[error(
        "AWS KMS key {key_id}: no AWS region; set AWS_REGION (or the region of the AWS profile in use)"
    )]
    KmsNoRegion {
        /// The key id given.
        key_id: String,
    },
    /// KMS could not be reached in time (network, endpoint, DNS, TLS, timeout).
    #[error("AWS KMS key {key_id}: cannot reach KMS at {endpoint}: {cause}")]
    KmsUnreachable {
        /// The key id given.
        key_id: String,
        /// The endpoint asked (`AWS_ENDPOINT_URL`, or the region's).
        endpoint: String,
        /// The SDK's error, with its causes.
        cause: String,
    },
    /// KMS does not know the key (a wrong id, alias or region, or a key pending deletion).
    #[error(
        "AWS KMS key {key_id} was not found in region {region}: check the key id (or alias) and AWS_REGION"
    )]
    KmsKeyNotFound {
        /// The key id given.
        key_id: String,
        /// The region asked.
        region: String,
    },
    /// KMS answered with an error (credentials, permissions, a disabled key, throttling).
    #[error(
        "AWS KMS key {key_id}: {action} failed: {cause} (the credentials need kms:GetPublicKey and kms:Sign on \
         the key, and the key must be enabled)"
    )]
    KmsRefused {
        /// The key id given.
        key_id: String,
        /// The KMS operation (`GetPublicKey`, `Sign`).
        action: &'static str,
        /// KMS' error, with its causes.
        cause: String,
    },
    /// The key is not an Ethereum signing key.
    #[error(
        "AWS KMS key {key_id} is {spec} for {usage}; an Ethereum key must be {expected} for SIGN_VERIFY",
        expected = crate::KEY_SPEC
    )]
    KmsKeySpec {
        /// The key id given.
        key_id: String,
        /// Its key spec.
        spec: String,
        /// Its key usage.
        usage: String,
    },
    /// KMS returned something that is not a usable public key or signature.
    #[error("AWS KMS key {key_id}: {what}")]
    KmsBadAnswer {
        /// The key id given.
        key_id: String,
        /// What was wrong.
        what: String,
    },
    /// A signature from KMS does not recover to the key's address: the endpoint did not sign the 32-byte digest as
    /// a digest (`MessageType=DIGEST`).
    #[error(
        "AWS KMS key {key_id} returned a signature that does not recover to its address {address}: the KMS endpoint \
         does not sign MessageType=DIGEST as AWS does"
    )]
    KmsSignatureMismatch {
        /// The key id given.
        key_id: String,
        /// The key's address.
        address: Address,
    },
    /// A local key failed to sign (it signs any digest; kept for completeness).
    #[error("signing with the local key: {0}")]
    LocalSign(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
