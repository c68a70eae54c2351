//! Which backend a role's flags chose: exactly one of a hex key, a keystore, a KMS key.

use std::{fmt, path::PathBuf};

use crate::{AwsSettings, Error, Result};

/// A command-line flag and its variable, as errors name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// The flag without its dashes (`keeper-private-key`).
    pub long: &'static str,
    /// Its variable (`BEATSTREAM_KEEPER_PRIVATE_KEY`).
    pub env: &'static str,
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--{} ({})", self.long, self.env)
    }
}

/// A role that signs and the flags that choose its key, so that errors say what to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Role {
    /// What signs ("keeper", "Yellow operator").
    pub name: &'static str,
    /// The hex private key's flag.
    pub private_key: Flag,
    /// The keystore file's flag.
    pub keystore: Flag,
    /// The keystore password file's flag.
    pub keystore_password_file: Flag,
    /// The AWS KMS key id's flag.
    pub aws_kms_key_id: Flag,
}

/// What a role's flags hold, before [`Choice::select`] checks that they name exactly one backend.
#[derive(Clone, Copy, Default)]
pub struct Choice<'a> {
    /// The hex private key.
    pub private_key: Option<&'a str>,
    /// An encrypted JSON keystore.
    pub keystore: Option<&'a std::path::Path>,
    /// The file holding the keystore's password.
    pub keystore_password_file: Option<&'a std::path::Path>,
    /// A KMS key id, ARN, alias name or alias ARN.
    pub aws_kms_key_id: Option<&'a str>,
    /// AWS settings that replace the standard AWS environment for the KMS key.
    pub aws: Option<&'a AwsSettings>,
}

impl Choice<'_> {
    /// Whether any backend is named (a role whose key is optional runs only with one).
    pub fn is_set(&self) -> bool {
        self.private_key.is_some() || self.keystore.is_some() || self.aws_kms_key_id.is_some()
    }

    /// The one backend these flags name, or an error that names `role`'s flags: none, several, or a keystore and
    /// its password file without the other.
    pub fn select(&self, role: &Role) -> Result<KeySource> {
        let given: Vec<Flag> = [
            self.private_key.map(|_| role.private_key),
            self.keystore.map(|_| role.keystore),
            self.aws_kms_key_id.map(|_| role.aws_kms_key_id),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() > 1 {
            return Err(Error::SeveralKeys { role: role.name, given: list(&given, "and") });
        }
        if let (Some(_), None) = (self.keystore_password_file, self.keystore) {
            return Err(Error::Incomplete {
                flag: role.keystore_password_file.to_string(),
                needs: role.keystore.to_string(),
            });
        }
        match (self.private_key, self.keystore, self.aws_kms_key_id) {
            (Some(key), _, _) => {
                Ok(KeySource::PrivateKey { key: key.to_owned(), flag: role.private_key })
            }
            (_, Some(path), _) => {
                let password_file =
                    self.keystore_password_file.ok_or_else(|| Error::Incomplete {
                        flag: role.keystore.to_string(),
                        needs: role.keystore_password_file.to_string(),
                    })?;
                Ok(KeySource::Keystore {
                    path: path.to_owned(),
                    password_file: password_file.to_owned(),
                })
            }
            (_, _, Some(key_id)) => {
                Ok(KeySource::AwsKms { key_id: key_id.trim().to_owned(), aws: self.aws.cloned() })
            }
            (None, None, None) => Err(Error::NoKey {
                role: role.name,
                options: list(&[role.private_key, role.keystore, role.aws_kms_key_id], "or"),
            }),
        }
    }
}

/// `a, b and c`.
fn list(flags: &[Flag], last: &str) -> String {
    let names: Vec<String> = flags.iter().map(Flag::to_string).collect();
    match names.split_last() {
        Some((tail, head)) if !head.is_empty() => format!("{} {last} {tail}", head.join(", ")),
        _ => names.concat(),
    }
}

/// Where one role's key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A hex private key (with or without `0x`).
    PrivateKey {
        /// The key. Never printed.
        key: String,
        /// The flag it came from, for errors.
        flag: Flag,
    },
    /// An encrypted JSON keystore (as written by `cast wallet new` or geth) and the file holding its password (its
    /// first line).
    Keystore {
        /// The keystore.
        path: PathBuf,
        /// Its password file.
        password_file: PathBuf,
    },
    /// A key in AWS KMS: region, endpoint and credentials from the standard AWS environment unless `aws` is given.
    AwsKms {
        /// Key id, key ARN, alias name (`alias/…`) or alias ARN.
        key_id: String,
        /// Settings that replace the environment's.
        aws: Option<AwsSettings>,
    },
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PrivateKey { flag, .. } => f
                .debug_struct("PrivateKey")
                .field("key", &"<redacted>")
                .field("flag", flag)
                .finish(),
            Self::Keystore { path, password_file } => f
                .debug_struct("Keystore")
                .field("path", path)
                .field("password_file", password_file)
                .finish(),
            Self::AwsKms { key_id, aws } => {
                f.debug_struct("AwsKms").field("key_id", key_id).field("aws", aws).finish()
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use super::*;

    pub(crate) const ROLE: Role = Role {
        name: "keeper",
        private_key: Flag { long: "keeper-private-key", env: "BEATSTREAM_KEEPER_PRIVATE_KEY" },
        keystore: Flag { long: "keeper-keystore", env: "BEATSTREAM_KEEPER_KEYSTORE" },
        keystore_password_file: Flag {
            long: "keeper-keystore-password-file",
            env: "BEATSTREAM_KEEPER_KEYSTORE_PASSWORD_FILE",
        },
        aws_kms_key_id: Flag {
            long: "keeper-aws-kms-key-id",
            env: "BEATSTREAM_KEEPER_AWS_KMS_KEY_ID",
        },
    };

    #[test]
    fn none_names_every_flag() {
        let err = Choice::default().select(&ROLE).unwrap_err().to_string();
        assert_eq!(
            err,
            "no keeper key: set one of --keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY), --keeper-keystore \
             (BEATSTREAM_KEEPER_KEYSTORE) or --keeper-aws-kms-key-id (BEATSTREAM_KEEPER_AWS_KMS_KEY_ID)"
        );
        assert!(!Choice::default().is_set());
    }

    #[test]
    fn several_are_refused_naming_them_but_not_the_key() {
        let choice = Choice {
            private_key: Some("0xsecret"),
            aws_kms_key_id: Some("alias/keeper"),
            ..Default::default()
        };
        let err = choice.select(&ROLE).unwrap_err().to_string();
        assert_eq!(
            err,
            "several keeper keys: --keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY) and --keeper-aws-kms-key-id \
             (BEATSTREAM_KEEPER_AWS_KMS_KEY_ID) are set; set exactly one"
        );
        let all = Choice { keystore: Some(Path::new("k.json")), ..choice };
        assert!(all.select(&ROLE).unwrap_err().to_string().contains(
            "--keeper-private-key (BEATSTREAM_KEEPER_PRIVATE_KEY), --keeper-keystore (BEATSTREAM_KEEPER_KEYSTORE) and"
        ));
    }

    #[test]
    fn a_keystore_needs_its_password_file_and_the_other_way_round() {
        let keystore = Choice { keystore: Some(Path::new("k.json")), ..Default::default() };
        let err = keystore.select(&ROLE).unwrap_err().to_string();
        assert!(err.starts_with(
            "--keeper-keystore (BEATSTREAM_KEEPER_KEYSTORE) needs --keeper-keystore-password-file"
        ));
        let password =
            Choice { keystore_password_file: Some(Path::new("p")), ..Default::default() };
        let err = password.select(&ROLE).unwrap_err().to_string();
        assert!(err.starts_with("--keeper-keystore-password-file"), "{err}");
        assert!(err.ends_with("needs --keeper-keystore (BEATSTREAM_KEEPER_KEYSTORE)"), "{err}");
    }

    #[test]
    fn one_backend_is_chosen_and_its_secret_never_printed() {
        let key = Choice { private_key: Some("0xdeadbeef"), ..Default::default() };
        let source = key.select(&ROLE).unwrap();
        assert!(matches!(&source, KeySource::PrivateKey { key, .. } if key == "0xdeadbeef"));
        let shown = format!("{source:?}");
        assert!(!shown.contains("deadbeef") && shown.contains("<redacted>"), "{shown}");

        let kms = Choice { aws_kms_key_id: Some(" alias/keeper\n"), ..Default::default() };
        assert!(kms.is_set());
        assert_eq!(
            kms.select(&ROLE).unwrap(),
            KeySource::AwsKms { key_id: "alias/keeper".into(), aws: None }
        );
    }
}
