//! The node's audio key: 32 bytes that seal each track's secret in the database (docs/PROTOCOL.md "Audio
//! content"). The studio seals with it at upload, the relay opens with it at `play` to release chunk keys, so both
//! read the same flags; `beatstream node` takes them once.

use std::path::PathBuf;

/// Where the audio key comes from: a file holding it as hex, or the hex itself.
#[derive(Clone, Default, PartialEq, Eq, clap::Args)]
pub struct AudioKeyArgs {
    /// File holding the node's audio key: 32 bytes as hex (64 digits, `0x` optional, surrounding whitespace
    /// ignored). Make one with `openssl rand -hex 32`. Every relay and studio of a deployment needs the same key.
    #[arg(long, env = "BEATSTREAM_AUDIO_KEY_FILE")]
    pub audio_key_file: Option<PathBuf>,
    /// The node's audio key as hex, instead of `--audio-key-file`.
    #[arg(long, env = "BEATSTREAM_AUDIO_KEY", hide_env_values = true)]
    pub audio_key: Option<String>,
}

impl std::fmt::Debug for AudioKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioKeyArgs")
            .field("audio_key_file", &self.audio_key_file)
            .field("audio_key", &self.audio_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why the audio key could not be read; never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum AudioKeyError {
    /// Both flags were given.
    #[error("give one of --audio-key-file and --audio-key (BEATSTREAM_AUDIO_KEY), not both")]
    Both,
    /// The file could not be read.
    #[error("reading --audio-key-file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not 32 bytes of hex.
    #[error(
        "the audio key ({from}) is not 32 bytes of hex (64 hex digits, `openssl rand -hex 32`)"
    )]
    Malformed {
        /// `--audio-key-file <path>` or `--audio-key`.
        from: String,
    },
}

impl AudioKeyArgs {
    /// The key, or `None` when neither flag is given.
    pub fn load(&self) -> Result<Option<[u8; 32]>, AudioKeyError> {
        let (text, from) = match (&self.audio_key_file, &self.audio_key) {
            (Some(_), Some(_)) => return Err(AudioKeyError::Both),
            (None, None) => return Ok(None),
            (Some(path), None) => (
                std::fs::read_to_string(path)
                    .map_err(|source| AudioKeyError::Read { path: path.clone(), source })?,
                format!("--audio-key-file {}", path.display()),
            ),
            (None, Some(hex)) => (hex.clone(), "--audio-key".to_owned()),
        };
        let text = text.trim();
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut key = [0u8; 32];
        alloy::hex::decode_to_slice(digits, &mut key)
            .map_err(|_| AudioKeyError::Malformed { from })?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hex_from_a_file_or_the_flag_and_never_prints_it() {
        let hex = "11".repeat(32);
        let f = tempfile_with(&format!("0x{hex}\n"));
        let from_file = AudioKeyArgs { audio_key_file: Some(f.clone()), audio_key: None };
        assert_eq!(from_file.load().unwrap(), Some([0x11; 32]));
        let from_flag = AudioKeyArgs { audio_key_file: None, audio_key: Some(hex.clone()) };
        assert_eq!(from_flag.load().unwrap(), Some([0x11; 32]));
        assert!(!format!("{from_flag:?}").contains("1111"));
        assert_eq!(AudioKeyArgs::default().load().unwrap(), None);
        let both = AudioKeyArgs { audio_key_file: Some(f.clone()), audio_key: Some(hex) };
        assert!(matches!(both.load(), Err(AudioKeyError::Both)));
        let short = AudioKeyArgs { audio_key_file: None, audio_key: Some("abcd".into()) };
        let err = short.load().unwrap_err().to_string();
        assert!(err.contains("not 32 bytes of hex") && !err.contains("abcd"), "{err}");
        std::fs::remove_file(f).unwrap();
    }

    fn tempfile_with(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("audio-key-{}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }
}
