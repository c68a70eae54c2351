//! What an upload may be: its size in bytes and its length in time, and byte counters that enforce the size
//! while the upload streams in.

use std::io::{Read, Write};

use crate::{Error, Result};

/// Longest track taken by default: 30 minutes.
pub const DEFAULT_MAX_DURATION_MS: u64 = 30 * 60 * 1000;

/// Largest upload taken by default: 512 MiB (30 minutes of 16-bit stereo WAV at 48 kHz is 346 MB).
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// The limits of one upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest audio taken, in milliseconds; longer gives [`Error::TooLong`].
    pub max_duration_ms: u64,
    /// Largest file taken, in bytes; larger gives [`Error::TooLarge`]. Callers enforce it while the upload
    /// streams (with [`ByteLimit`], [`LimitedReader`] or [`LimitedWriter`]); probing a file checks it again.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_duration_ms: DEFAULT_MAX_DURATION_MS, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// Counts bytes against a limit; for streams that are neither `Read` nor `Write` (an async body, say).
#[derive(Clone, Copy, Debug)]
pub struct ByteLimit {
    max: u64,
    seen: u64,
}

impl ByteLimit {
    /// A counter that allows `max` bytes.
    pub fn new(max: u64) -> Self {
        Self { max, seen: 0 }
    }

    /// Counts `n` more bytes; [`Error::TooLarge`] once the total passes the limit.
    pub fn add(&mut self, n: usize) -> Result<()> {
        self.seen = self.seen.saturating_add(n as u64);
        if self.seen > self.max {
            return Err(Error::TooLarge { max_bytes: self.max });
        }
        Ok(())
    }

    /// The bytes counted so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }
}

/// A reader that fails with [`Error::TooLarge`] (inside an `io::Error`; `Error::from` unwraps it) once more
/// than the limit has been read.
#[derive(Debug)]
pub struct LimitedReader<R> {
    inner: R,
    limit: ByteLimit,
}

impl<R> LimitedReader<R> {
    /// Wraps `inner`, allowing `max` bytes through.
    pub fn new(inner: R, max: u64) -> Self {
        Self { inner, limit: ByteLimit::new(max) }
    }

    /// The bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.limit.seen()
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.limit.add(n).map_err(std::io::Error::other)?;
        Ok(n)
    }
}

/// A writer that refuses, with [`Error::TooLarge`] inside an `io::Error`, a write that would pass the limit.
#[derive(Debug)]
pub struct LimitedWriter<W> {
    inner: W,
    limit: ByteLimit,
}

impl<W> LimitedWriter<W> {
    /// Wraps `inner`, allowing `max` bytes through.
    pub fn new(inner: W, max: u64) -> Self {
        Self { inner, limit: ByteLimit::new(max) }
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.limit.seen()
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for LimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Counted before the write, so nothing past the limit reaches the inner writer.
        let mut after = self.limit;
        after.add(buf.len()).map_err(std::io::Error::other)?;
        let n = self.inner.write(buf)?;
        self.limit.add(n).map_err(std::io::Error::other)?;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_passes_up_to_the_limit_and_fails_after() {
        let mut ok = LimitedReader::new(&[0u8; 10][..], 10);
        assert_eq!(std::io::copy(&mut ok, &mut std::io::sink()).unwrap(), 10);

        let mut over = LimitedReader::new(&[0u8; 11][..], 10);
        let err = Error::from(std::io::copy(&mut over, &mut std::io::sink()).unwrap_err());
        assert_eq!(err.code(), "audio_too_large");
    }

    #[test]
    fn writer_never_lets_a_byte_past_the_limit() {
        let mut w = LimitedWriter::new(Vec::new(), 4);
        w.write_all(b"abcd").unwrap();
        let err = Error::from(w.write_all(b"e").unwrap_err());
        assert!(matches!(err, Error::TooLarge { max_bytes: 4 }));
        assert_eq!(w.into_inner(), b"abcd");
    }

    #[test]
    fn byte_limit_counts() {
        let mut limit = ByteLimit::new(5);
        limit.add(3).unwrap();
        limit.add(2).unwrap();
        assert_eq!(limit.seen(), 5);
        assert_eq!(limit.add(1).unwrap_err().code(), "audio_too_large");
    }
}
