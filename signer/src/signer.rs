//! [`Signer`]: one role's loaded key, whatever holds it.

use std::fmt;

use alloy::{
    consensus::SignableTransaction,
    primitives::{Address, B256, ChainId, Signature},
    signers::{SignerSync, local::PrivateKeySigner},
};

use crate::{Error, KeySource, Result, Role, kms::KmsKey};

/// Which backend holds a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A hex private key given to the process.
    PrivateKey,
    /// An encrypted keystore decrypted at start.
    Keystore,
    /// A key in AWS KMS; it never leaves KMS.
    AwsKms,
}

impl Backend {
    /// A stable name for logs: `private-key`, `keystore` or `aws-kms`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PrivateKey => "private-key",
            Self::Keystore => "keystore",
            Self::AwsKms => "aws-kms",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One role's signing key: a local key or a KMS key, used the same way. Cheap to clone.
///
/// It signs 32-byte hashes (a KMS key: one `Sign` request each) and transactions (their signing hash). It also
/// implements alloy's `Signer` and `TxSigner`, so anything written against those traits can use it.
#[derive(Clone)]
pub struct Signer {
    key: Key,
}

#[derive(Clone)]
enum Key {
    Local(PrivateKeySigner, Backend),
    Kms(KmsKey),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Signer");
        s.field("backend", &self.backend()).field("address", &self.address());
        if let Key::Kms(key) = &self.key {
            s.field("key_id", &key.key_id());
        }
        s.finish()
    }
}

impl Signer {
    /// Loads `source` for `role`: parses the hex key, decrypts the keystore, or opens and checks the KMS key.
    /// Errors name `role`'s flags, files or the KMS key, never a secret.
    pub async fn load(role: &Role, source: KeySource) -> Result<Self> {
        let key = match source {
            KeySource::PrivateKey { key, flag } => {
                let local = key
                    .trim()
                    .parse::<PrivateKeySigner>()
                    .map_err(|_| Error::BadPrivateKey { flag: flag.to_string() })?;
                Key::Local(local, Backend::PrivateKey)
            }
            KeySource::Keystore { path, password_file } => {
                let password = std::fs::read_to_string(&password_file)
                    .map_err(|cause| Error::PasswordFile { path: password_file, cause })?;
                let password = password.lines().next().unwrap_or_default();
                let local = PrivateKeySigner::decrypt_keystore(&path, password)
                    .map_err(|e| Error::Keystore { path, cause: e.to_string() })?;
                Key::Local(local, Backend::Keystore)
            }
            KeySource::AwsKms { key_id, aws } => {
                Key::Kms(KmsKey::open(&key_id, aws.as_ref()).await?)
            }
        };
        let signer = Self { key };
        tracing::debug!(target: "beatstream::signer", role = role.name, backend = %signer.backend(), address = %signer.address(), "key loaded");
        Ok(signer)
    }

    /// A signer over a local key (tests, the dev demo).
    pub const fn local(key: PrivateKeySigner) -> Self {
        Self { key: Key::Local(key, Backend::PrivateKey) }
    }

    /// The key's account.
    pub fn address(&self) -> Address {
        match &self.key {
            Key::Local(key, _) => key.address(),
            Key::Kms(key) => key.address(),
        }
    }

    /// Which backend holds the key.
    pub const fn backend(&self) -> Backend {
        match &self.key {
            Key::Local(_, backend) => *backend,
            Key::Kms(_) => Backend::AwsKms,
        }
    }

    /// Signs the 32-byte `hash` as it is (no prefix, no hashing).
    pub async fn sign_hash(&self, hash: &B256) -> Result<Signature> {
        match &self.key {
            Key::Local(key, _) => {
                key.sign_hash_sync(hash).map_err(|e| Error::LocalSign(e.to_string()))
            }
            Key::Kms(key) => key.sign_hash(hash).await,
        }
    }

    /// Signs `tx` (its signing hash; the transaction carries its own chain id).
    pub async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> Result<Signature> {
        self.sign_hash(&tx.signature_hash()).await
    }
}

#[async_trait::async_trait]
impl alloy::signers::Signer for Signer {
    async fn sign_hash(&self, hash: &B256) -> alloy::signers::Result<Signature> {
        Self::sign_hash(self, hash).await.map_err(alloy::signers::Error::other)
    }

    fn address(&self) -> Address {
        Self::address(self)
    }

    fn chain_id(&self) -> Option<ChainId> {
        None
    }

    fn set_chain_id(&mut self, _chain_id: Option<ChainId>) {}
}

#[async_trait::async_trait]
impl alloy::network::TxSigner<Signature> for Signer {
    fn address(&self) -> Address {
        Self::address(self)
    }

    async fn sign_transaction(
        &self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy::signers::Result<Signature> {
        Self::sign_transaction(self, tx).await.map_err(alloy::signers::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::keccak256;

    use super::*;
    use crate::{Choice, source::tests::ROLE};

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    const ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

    async fn load(choice: Choice<'_>) -> Result<Signer> {
        Signer::load(&ROLE, choice.select(&ROLE)?).await
    }

    #[tokio::test]
    async fn a_hex_key_signs_hashes_that_recover_to_its_address() {
        let signer = load(Choice { private_key: Some(KEY), ..Default::default() }).await.unwrap();
        assert_eq!(signer.address().to_string(), ADDRESS);
        assert_eq!(signer.backend(), Backend::PrivateKey);
        let hash = keccak256(b"hello");
        let sig = signer.sign_hash(&hash).await.unwrap();
        assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), signer.address());
        // Through alloy's trait: the same key, the same signature.
        let via_trait = alloy::signers::Signer::sign_hash(&signer, &hash).await.unwrap();
        assert_eq!(via_trait, sig);
        let shown = format!("{signer:?}");
        let address = format!("{:?}", signer.address());
        assert!(shown.contains(&address) && !shown.contains(&KEY[2..]), "{shown}");
    }

    #[tokio::test]
    async fn a_bad_key_is_named_but_not_printed() {
        let err = load(Choice { private_key: Some("0x1234secret"), ..Default::default() })
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY) is not a 32-byte hex private key"
        );
    }

    #[tokio::test]
    async fn an_encrypted_keystore_opens_with_its_password_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        let (local, name) = PrivateKeySigner::encrypt_keystore(
            dir.path(),
            &mut rng,
            alloy::hex::decode(KEY).unwrap(),
            "hunter2",
            None,
        )
        .unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let keystore = dir.path().join(name);
        let choice = Choice {
            keystore: Some(&keystore),
            keystore_password_file: Some(&password),
            ..Default::default()
        };
        let signer = load(choice).await.unwrap();
        assert_eq!(signer.address(), local.address());
        assert_eq!(signer.backend(), Backend::Keystore);

        std::fs::write(&password, "wrong\n").unwrap();
        let err = load(choice).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("decrypting the keystore {}", keystore.display())),
            "{err}"
        );
        std::fs::remove_file(&password).unwrap();
        let err = load(choice).await.unwrap_err().to_string();
        assert!(err.starts_with("reading the keystore password file"), "{err}");
    }

    #[tokio::test]
    async fn transactions_are_signed_over_their_signing_hash() {
        use alloy::consensus::TxEip1559;
        let signer = Signer::local(KEY.parse().unwrap());
        let mut tx =
            TxEip1559 { chain_id: 31337, nonce: 7, gas_limit: 21_000, ..Default::default() };
        let sig = signer.sign_transaction(&mut tx).await.unwrap();
        let hash = tx.signature_hash();
        assert_eq!(sig.recover_address_from_prehash(&hash).unwrap(), signer.address());
    }
}
