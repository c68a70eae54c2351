//! The keeper's key: a hex private key from the environment, or an encrypted JSON keystore.

use alloy::signers::local::PrivateKeySigner;

use crate::{Error, Result, SignerArgs};

/// Loads the signer `args` name. Errors say what is wrong, never what the key is.
pub(crate) fn load(args: &SignerArgs) -> Result<PrivateKeySigner> {
    match (&args.private_key, &args.keystore) {
        (Some(_), Some(_)) => {
            Err(Error::Signer("give either a private key or a keystore, not both".into()))
        }
        (Some(key), None) => key.trim().parse::<PrivateKeySigner>().map_err(|_| {
            Error::Signer("BEATSTREAM_KEEPER_PRIVATE_KEY is not a 32-byte hex private key".into())
        }),
        (None, Some(path)) => {
            let password_file = args.keystore_password_file.as_ref().ok_or_else(|| {
                Error::Signer(
                    "a keystore needs --keeper-keystore-password-file \
                     (BEATSTREAM_KEEPER_KEYSTORE_PASSWORD_FILE)"
                        .into(),
                )
            })?;
            let password = std::fs::read_to_string(password_file)
                .map_err(|e| Error::Signer(format!("reading {}: {e}", password_file.display())))?;
            let password = password.lines().next().unwrap_or_default();
            PrivateKeySigner::decrypt_keystore(path, password)
                .map_err(|e| Error::Signer(format!("decrypting {}: {e}", path.display())))
        }
        (None, None) => Err(Error::Signer(
            "no key: set BEATSTREAM_KEEPER_PRIVATE_KEY or --keeper-keystore".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    #[test]
    fn loads_a_hex_key() {
        let args = SignerArgs { private_key: Some(KEY.into()), ..Default::default() };
        let signer = load(&args).unwrap();
        assert_eq!(signer.address().to_string(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    }

    #[test]
    fn a_bad_key_is_named_but_not_printed() {
        let args = SignerArgs { private_key: Some("0x1234secret".into()), ..Default::default() };
        let err = load(&args).unwrap_err().to_string();
        assert!(err.contains("not a 32-byte hex private key") && !err.contains("secret"), "{err}");
        assert!(load(&SignerArgs::default()).unwrap_err().to_string().contains("no key"));
    }

    #[test]
    fn loads_an_encrypted_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        let (signer, name) = PrivateKeySigner::encrypt_keystore(
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
        assert_eq!(load(&args).unwrap().address(), signer.address());

        std::fs::write(&password, "wrong\n").unwrap();
        assert!(load(&args).unwrap_err().to_string().contains("decrypting"));
    }
}
