//! The crate's one error type, and the stable codes a client sees.

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong probing, chunking, encrypting or verifying audio.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file has no bytes, or decodes to no audio frames.
    #[error("the file holds no audio")]
    Empty,
    /// The file is not MP3, Ogg Opus, FLAC or WAV, or uses a variant of them this crate does not take.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// The file is of a supported kind but does not decode cleanly to its end.
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    /// The audio lasts longer than [`Limits::max_duration_ms`](crate::Limits::max_duration_ms).
    #[error("the audio lasts longer than the limit of {max_ms} ms")]
    TooLong {
        /// The limit that was passed.
        max_ms: u64,
    },
    /// The file has more bytes than [`Limits::max_bytes`](crate::Limits::max_bytes).
    #[error("the file is larger than the limit of {max_bytes} bytes")]
    TooLarge {
        /// The limit that was passed.
        max_bytes: u64,
    },
    /// Reading the source file failed for a reason other than its content.
    #[error("reading the audio: {0}")]
    Io(std::io::Error),
    /// A ciphertext does not open under the given key, index or node key (wrong key, wrong index, tampering).
    #[error("the ciphertext does not open under this key")]
    Decrypt,
    /// A manifest is malformed or does not commit to what it claims (root, chunk hash, count or duration).
    #[error("manifest does not verify: {0}")]
    Manifest(String),
}

impl Error {
    /// The stable code a client sees for this error; a client matches on it, never on the message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "audio_empty",
            Self::Unsupported(_) => "audio_unsupported",
            Self::Corrupt(_) => "audio_corrupt",
            Self::TooLong { .. } => "audio_too_long",
            Self::TooLarge { .. } => "audio_too_large",
            Self::Io(_) => "audio_io",
            Self::Decrypt => "audio_decrypt",
            Self::Manifest(_) => "audio_manifest",
        }
    }
}

impl From<std::io::Error> for Error {
    /// Unwraps an [`Error`] that travelled inside an `io::Error` (a [`LimitedReader`](crate::LimitedReader) or
    /// [`LimitedWriter`](crate::LimitedWriter) over its limit), so the caller sees `audio_too_large`, not I/O.
    fn from(err: std::io::Error) -> Self {
        if err.get_ref().is_some_and(|inner| inner.is::<Self>()) {
            if let Some(Ok(inner)) = err.into_inner().map(|inner| inner.downcast::<Self>()) {
                return *inner;
            }
            unreachable!("checked above that the io::Error wraps an audio Error");
        }
        Self::Io(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_survives_a_trip_through_io_error() {
        let io = std::io::Error::other(Error::TooLarge { max_bytes: 7 });
        let err = Error::from(io);
        assert_eq!(err.code(), "audio_too_large");
        assert!(matches!(err, Error::TooLarge { max_bytes: 7 }));
    }

    #[test]
    fn plain_io_errors_stay_io() {
        let err = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(err.code(), "audio_io");
    }
}
