//! Chunk encryption as a browser's WebCrypto does it: AES-256-GCM under a key of its own per chunk, derived by
//! HKDF-SHA256 from the track's secret; and the track secret sealed under the node's key for storage.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::{Error, Result};

/// The HKDF salt of every chunk key.
pub const CHUNK_KEY_SALT: &[u8] = b"beatstream/audio/v1";

/// The additional authenticated data of a sealed track secret.
pub const SEALED_SECRET_AAD: &[u8] = b"beatstream/track-secret/v1";

/// The AES-GCM nonce length, in bytes.
pub const NONCE_LEN: usize = 12;

/// The AES-GCM tag length, in bytes; a stored chunk is this much longer than its plaintext.
pub const TAG_LEN: usize = 16;

/// The length of a sealed track secret: nonce, secret, tag.
pub const SEALED_SECRET_LEN: usize = NONCE_LEN + 32 + TAG_LEN;

/// Each chunk key encrypts exactly one chunk, so the nonce can be fixed.
const CHUNK_NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The bytes; named so that every place that lets them out is easy to find.
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl TryFrom<&[u8]> for $name {
            type Error = Error;

            fn try_from(bytes: &[u8]) -> Result<Self> {
                let bytes: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| Error::Decrypt)?;
                Ok(Self(bytes))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }
    };
}

secret_bytes!(
    /// A track's 32-byte random secret, from which every chunk key derives. Stored only sealed.
    TrackSecret
);
secret_bytes!(
    /// The key of one chunk, `HKDF-SHA256(secret, salt, index)`: what the relay releases once the chunk is paid.
    ChunkKey
);
secret_bytes!(
    /// The node's key that seals track secrets for storage.
    NodeKey
);

impl TrackSecret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source is available");
        Self(bytes)
    }
}

/// Chunk `index`'s key: HKDF-SHA256 with ikm = the secret, salt = [`CHUNK_KEY_SALT`], info = `index` as 4
/// big-endian bytes, 32 bytes long.
pub fn chunk_key(secret: &TrackSecret, index: u32) -> ChunkKey {
    let mut key = ChunkKey([0; 32]);
    Hkdf::<Sha256>::new(Some(CHUNK_KEY_SALT), secret.expose())
        .expand(&index.to_be_bytes(), &mut key.0)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// Encrypts chunk `index` under its key: AES-256-GCM, nonce 12 zero bytes, AAD = `index` as 4 big-endian bytes;
/// returns ciphertext ‖ tag, what WebCrypto's `encrypt` returns and what is stored.
pub fn encrypt_chunk(key: &ChunkKey, index: u32, plaintext: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.expose().into())
        .encrypt(
            Nonce::from_slice(&CHUNK_NONCE),
            Payload { msg: plaintext, aad: &index.to_be_bytes() },
        )
        .expect("AES-GCM encrypts any chunk-sized plaintext")
}

/// Decrypts a stored chunk; [`Error::Decrypt`] for a wrong key or index, or any changed byte.
pub fn decrypt_chunk(key: &ChunkKey, index: u32, stored: &[u8]) -> Result<Vec<u8>> {
    Aes256Gcm::new(key.expose().into())
        .decrypt(
            Nonce::from_slice(&CHUNK_NONCE),
            Payload { msg: stored, aad: &index.to_be_bytes() },
        )
        .map_err(|_| Error::Decrypt)
}

/// Seals a track secret for storage: a random 12-byte nonce ‖ AES-256-GCM(node key, nonce, secret, AAD =
/// [`SEALED_SECRET_AAD`]), [`SEALED_SECRET_LEN`] bytes.
pub fn seal_secret(node_key: &NodeKey, secret: &TrackSecret) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).expect("the operating system's random source is available");
    let sealed = Aes256Gcm::new(node_key.expose().into())
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload { msg: secret.expose(), aad: SEALED_SECRET_AAD },
        )
        .expect("AES-GCM encrypts 32 bytes");
    [nonce.as_slice(), &sealed].concat()
}

/// Opens what [`seal_secret`] sealed; [`Error::Decrypt`] under another node key or after any change.
pub fn open_secret(node_key: &NodeKey, sealed: &[u8]) -> Result<TrackSecret> {
    if sealed.len() != SEALED_SECRET_LEN {
        return Err(Error::Decrypt);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let mut bytes = Aes256Gcm::new(node_key.expose().into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: SEALED_SECRET_AAD })
        .map_err(|_| Error::Decrypt)?;
    let secret = TrackSecret::try_from(bytes.as_slice());
    bytes.zeroize();
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> TrackSecret {
        TrackSecret::from_bytes(std::array::from_fn(|i| i as u8))
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let shown = format!(
            "{:?} {:?} {:?}",
            secret(),
            chunk_key(&secret(), 0),
            NodeKey::from_bytes([7; 32])
        );
        assert_eq!(shown, "TrackSecret(<redacted>) ChunkKey(<redacted>) NodeKey(<redacted>)");
    }

    #[test]
    fn chunk_keys_differ_per_index_and_secret() {
        let other = TrackSecret::from_bytes([9; 32]);
        assert_ne!(chunk_key(&secret(), 0), chunk_key(&secret(), 1));
        assert_ne!(chunk_key(&secret(), 0), chunk_key(&other, 0));
        assert_eq!(chunk_key(&secret(), 5), chunk_key(&secret(), 5));
    }

    #[test]
    fn chunk_round_trip_and_refusals() {
        let key = chunk_key(&secret(), 3);
        let stored = encrypt_chunk(&key, 3, b"one second of audio");
        assert_eq!(stored.len(), 19 + TAG_LEN);
        assert_eq!(decrypt_chunk(&key, 3, &stored).unwrap(), b"one second of audio");
        assert!(matches!(decrypt_chunk(&key, 4, &stored), Err(Error::Decrypt)));
        assert!(matches!(decrypt_chunk(&chunk_key(&secret(), 4), 3, &stored), Err(Error::Decrypt)));
        let mut tampered = stored.clone();
        tampered[0] ^= 1;
        assert!(matches!(decrypt_chunk(&key, 3, &tampered), Err(Error::Decrypt)));
        assert!(matches!(decrypt_chunk(&key, 3, &stored[..TAG_LEN - 1]), Err(Error::Decrypt)));
    }

    #[test]
    fn sealed_secret_round_trip_and_refusals() {
        let node = NodeKey::from_bytes([1; 32]);
        let sealed = seal_secret(&node, &secret());
        assert_eq!(sealed.len(), SEALED_SECRET_LEN);
        assert_ne!(sealed, seal_secret(&node, &secret()), "each seal draws its own nonce");
        assert_eq!(open_secret(&node, &sealed).unwrap(), secret());
        assert!(open_secret(&NodeKey::from_bytes([2; 32]), &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[20] ^= 0x80;
        assert!(open_secret(&node, &tampered).is_err());
        assert!(open_secret(&node, &sealed[1..]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn chunks_open_under_their_own_key_and_index_only(
            secret: [u8; 32],
            index in 0..u32::MAX,
            plaintext in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        ) {
            let secret = TrackSecret::from_bytes(secret);
            let key = chunk_key(&secret, index);
            let stored = encrypt_chunk(&key, index, &plaintext);
            proptest::prop_assert_eq!(stored.len(), plaintext.len() + TAG_LEN);
            proptest::prop_assert_eq!(decrypt_chunk(&key, index, &stored).unwrap(), plaintext);
            proptest::prop_assert!(decrypt_chunk(&key, index + 1, &stored).is_err());
            proptest::prop_assert!(decrypt_chunk(&chunk_key(&secret, index + 1), index, &stored).is_err());
        }
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(TrackSecret::generate(), TrackSecret::generate());
    }
}
