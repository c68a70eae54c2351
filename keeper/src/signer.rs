//! The keeper's key: a hex private key, an encrypted JSON keystore or an AWS KMS key, through `beatstream-signer`.

use beatstream_signer::Signer;

use crate::{Error, Result, SignerArgs};

/// Loads the key `args` name: exactly one backend, checked (a KMS key is asked for its public key and signs a test
/// digest). Errors say what is wrong, never what the key is.
pub(crate) async fn load(args: &SignerArgs) -> Result<Signer> {
    let source = args.choice().select(&SignerArgs::ROLE).map_err(Error::Signer)?;
    Signer::load(&SignerArgs::ROLE, source).await.map_err(Error::Signer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[tokio::test]
    async fn loads_a_hex_key() {
        let args = SignerArgs { private_key: Some(KEY.into()), ..Default::default() };
        let signer = load(&args).await.unwrap();
        assert_eq!(signer.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    }

    #[tokio::test]
    async fn errors_name_the_keeper_flags_but_never_the_key() {
        let args = SignerArgs { private_key: Some("0x1234secret".into()), ..Default::default() };
        let err = load(&args).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "keeper signer: --keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY) is not a 32-byte hex private key"
        );
        let err = load(&SignerArgs::default()).await.unwrap_err().to_string();
        assert!(err.starts_with("keeper signer: no keeper key: set one of"), "{err}");
        let both = SignerArgs {
            private_key: Some(KEY.into()),
            aws_kms_key_id: Some("alias/keeper".into()),
            ..Default::default()
        };
        let err = load(&both).await.unwrap_err().to_string();
        assert!(err.contains("several keeper keys") && !err.contains(&KEY[2..]), "{err}");
    }

    #[tokio::test]
    async fn loads_an_encrypted_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        let (signer, name) = alloy::signers::local::PrivateKeySigner::encrypt_keystore(
            dir.path(),
            &mut rng,
            alloy::hex::decode(KEY).unwrap(),
            "hunter2",
            None,
        )
        .unwrap();
        let password = dir.path().join("password");
        std::fs::write(&password, "hunter2\n").unwrap();
        let args = SignerArgs {
            keystore: Some(dir.path().join(name)),
            keystore_password_file: Some(password.clone()),
            ..Default::default()
        };
        assert_eq!(load(&args).await.unwrap().address(), signer.address());

        std::fs::write(&password, "wrong\n").unwrap();
        assert!(load(&args).await.unwrap_err().to_string().contains("decrypting"));
    }
}
