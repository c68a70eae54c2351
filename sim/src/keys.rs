//! Deterministic listener wallets and fast signing (libsecp256k1) for simulated players.

use alloy::primitives::{Address, B256, U256, keccak256};
use beatstream_primitives::{SessionGrant, VoucherDomain};
use secp256k1::{Message, PublicKey, Secp256k1, SecretKey, SignOnly};

/// A secp256k1 key and its address.
#[derive(Clone, Debug)]
pub struct Key {
    secret: SecretKey,
    /// The Ethereum address.
    pub address: Address,
}

impl Key {
    /// The key derived from `seed` and `label`: the same inputs always give the same key.
    pub fn derive(secp: &Secp256k1<SignOnly>, seed: &str, label: &str) -> Self {
        let mut material = keccak256(format!("{seed}/{label}"));
        loop {
            if let Ok(secret) = SecretKey::from_byte_array(&material.0) {
                let public = PublicKey::from_secret_key(secp, &secret).serialize_uncompressed();
                return Self {
                    secret,
                    address: Address::from_slice(&keccak256(&public[1..])[12..]),
                };
            }
            material = keccak256(material);
        }
    }

    /// The key with secret `secret`, if it is a valid secp256k1 secret (e.g. `PrivateKeySigner::to_bytes()`).
    pub fn from_secret(secp: &Secp256k1<SignOnly>, secret: B256) -> Option<Self> {
        let secret = SecretKey::from_byte_array(&secret.0).ok()?;
        let public = PublicKey::from_secret_key(secp, &secret).serialize_uncompressed();
        Some(Self { secret, address: Address::from_slice(&keccak256(&public[1..])[12..]) })
    }

    /// The secret key's bytes (to make an alloy signer of the same key).
    pub fn secret(&self) -> B256 {
        B256::from(self.secret.secret_bytes())
    }

    /// The 65-byte `r ‖ s ‖ v` signature of `digest` (low-s, `v` 27 or 28).
    pub fn sign(&self, secp: &Secp256k1<SignOnly>, digest: B256) -> [u8; 65] {
        let (id, rs) = secp
            .sign_ecdsa_recoverable(&Message::from_digest(digest.0), &self.secret)
            .serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&rs);
        out[64] = 27 + i32::from(id) as u8;
        out
    }
}

/// The wallet of simulated listener `index` under `seed`.
pub fn wallet(secp: &Secp256k1<SignOnly>, seed: &str, index: usize) -> Key {
    Key::derive(secp, seed, &format!("listener/{index}"))
}

/// One simulated player: wallet, session key, grant and the grant signature.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The listener's wallet.
    pub wallet: Key,
    /// The player's session key.
    pub session: Key,
    /// The grant.
    pub grant: SessionGrant,
    /// Its id.
    pub grant_id: B256,
    /// The wallet's signature of it.
    pub grant_sig: [u8; 65],
}

impl Identity {
    /// Player `index` of run `run` (a fresh session key and grant per run).
    pub fn new(
        secp: &Secp256k1<SignOnly>,
        domain: &VoucherDomain,
        seed: &str,
        run: u64,
        index: usize,
        cap: U256,
        expires_at: u64,
    ) -> Self {
        let wallet = wallet(secp, seed, index);
        let session = Key::derive(secp, seed, &format!("session/{run}/{index}"));
        Self::from_keys(secp, domain, wallet, session, cap, expires_at, run)
    }

    /// The player of `wallet` with session key `session`, under a grant of `cap` until `expires_at` with `nonce`.
    pub fn from_keys(
        secp: &Secp256k1<SignOnly>,
        domain: &VoucherDomain,
        wallet: Key,
        session: Key,
        cap: U256,
        expires_at: u64,
        nonce: u64,
    ) -> Self {
        let grant = SessionGrant {
            listener: wallet.address,
            sessionKey: session.address,
            cap,
            expiresAt: expires_at,
            nonce,
        };
        let grant_id = grant.id();
        let grant_sig = wallet.sign(secp, domain.grant_digest(&grant));
        Self { wallet, session, grant, grant_id, grant_sig }
    }

    /// The session key's voucher signature.
    pub fn sign_voucher(
        &self,
        secp: &Secp256k1<SignOnly>,
        domain: &VoucherDomain,
        payee: Address,
        cumulative: U256,
    ) -> [u8; 65] {
        self.session.sign(secp, domain.voucher_digest(self.grant_id, payee, cumulative))
    }

    /// The session key's tip signature.
    pub fn sign_tip(
        &self,
        secp: &Secp256k1<SignOnly>,
        domain: &VoucherDomain,
        payee: Address,
        tip_id: U256,
        amount: U256,
        message: &str,
    ) -> [u8; 65] {
        let digest = domain.tip_digest(self.grant_id, payee, tip_id, amount, message.as_bytes());
        self.session.sign(secp, digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beatstream_primitives::eip712;

    #[test]
    fn signatures_recover_to_the_derived_address() {
        let secp = Secp256k1::signing_only();
        let domain = VoucherDomain::new(31337, Address::repeat_byte(7));
        let id = Identity::new(&secp, &domain, "seed", 1, 3, U256::from(10), 2_000_000_000);
        assert_eq!(id.wallet.address, wallet(&secp, "seed", 3).address);
        assert_eq!(
            eip712::recover(domain.grant_digest(&id.grant), &id.grant_sig).unwrap(),
            id.wallet.address
        );
        let payee = Address::repeat_byte(1);
        let sig = id.sign_voucher(&secp, &domain, payee, U256::from(5));
        let digest = domain.voucher_digest(id.grant_id, payee, U256::from(5));
        assert_eq!(eip712::recover(digest, &sig).unwrap(), id.session.address);
    }

    #[test]
    fn a_key_from_its_secret_is_the_same_key() {
        let secp = Secp256k1::signing_only();
        let key = Key::derive(&secp, "seed", "label");
        let again = Key::from_secret(&secp, key.secret()).unwrap();
        assert_eq!(again.address, key.address);
        assert!(Key::from_secret(&secp, B256::ZERO).is_none());
    }
}
