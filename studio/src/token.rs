//! The random values the studio hands out: sign-in nonces and bearer session tokens, from the operating system's
//! generator. A session token is stored only as its SHA-256.

use alloy::primitives::B256;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Characters of a nonce: EIP-4361 allows letters and digits only.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of an issued nonce: about 143 bits.
pub(crate) const NONCE_LEN: usize = 24;

/// A fresh nonce of [`NONCE_LEN`] letters and digits, each equally likely.
pub(crate) fn nonce() -> Result<String> {
    let mut out = String::with_capacity(NONCE_LEN);
    let mut buf = [0u8; 64];
    while out.len() < NONCE_LEN {
        random(&mut buf)?;
        // 248 = 4 × 62: rejecting the bytes above keeps the choice uniform.
        for b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == NONCE_LEN {
                break;
            }
            out.push(char::from(ALPHANUMERIC[usize::from(b % 62)]));
        }
    }
    Ok(out)
}

/// A new session: the bearer token handed to the client (64 lower-case hex digits of 32 random bytes) and the
/// SHA-256 of those bytes, which is all that is stored.
pub(crate) fn session() -> Result<(String, B256)> {
    let mut bytes = [0u8; 32];
    random(&mut bytes)?;
    Ok((alloy::hex::encode(bytes), sha256(&bytes)))
}

/// What is stored for the bearer token `token`, or `None` when it is not 64 hex digits (so not one of ours).
pub(crate) fn stored_hash(token: &str) -> Option<B256> {
    if token.len() != 64 {
        return None;
    }
    let bytes: [u8; 32] = alloy::hex::decode_to_array(token).ok()?;
    Some(sha256(&bytes))
}

fn sha256(bytes: &[u8]) -> B256 {
    B256::from_slice(&Sha256::digest(bytes))
}

fn random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_long_alphanumeric_and_fresh() {
        let a = nonce().unwrap();
        assert_eq!(a.len(), NONCE_LEN);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, nonce().unwrap());
    }

    #[test]
    fn a_token_is_found_by_the_hash_stored_for_it() {
        let (token, hash) = session().unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(stored_hash(&token), Some(hash));
        assert_eq!(stored_hash(&token.to_uppercase()), Some(hash));
        assert_ne!(hash.as_slice(), alloy::hex::decode(&token).unwrap().as_slice());
        for bad in
            ["", "00", &token[1..], &format!("0x{}", &token[2..]), &format!("{}g", &token[1..])]
        {
            assert_eq!(stored_hash(bad), None, "{bad}");
        }
    }
}
