//! Signature checks, with the vault's rules: 65-byte `r ‖ s ‖ v`, `v` 27 or 28, `s` in the lower half of the curve
//! order, digests under the cached EIP-712 domain of one vault on one chain.
//!
//! Voucher recovery is the relay's hot path (one per session per second), so it uses libsecp256k1 (`secp256k1`
//! crate), about 4.6× faster here than alloy's default k256 path (`docs/BENCHMARKS.md`).

use alloy::primitives::{Address, B256, U256, keccak256};
use beatstream_primitives::{SessionGrant, VoucherDomain};
use secp256k1::{
    Message, Secp256k1, VerifyOnly,
    ecdsa::{RecoverableSignature, RecoveryId},
};

use crate::{Error, Result, chain::Chain};

/// secp256k1 group order / 2, big-endian: a larger `s` is the malleable twin and is rejected, as on-chain.
const HALF_ORDER: [u8; 32] = U256::from_limbs([
    0xdfe92f46681b20a0,
    0x5d576e7357a4501d,
    0xffffffffffffffff,
    0x7fffffffffffffff,
])
.to_be_bytes();

/// Checks grant and voucher signatures for one EIP-712 domain.
#[derive(Debug)]
pub struct Verifier {
    domain: VoucherDomain,
    secp: Secp256k1<VerifyOnly>,
    chain: Chain,
}

impl Verifier {
    /// A verifier for `domain`, asking `chain` about ERC-1271 listeners.
    pub fn new(domain: VoucherDomain, chain: Chain) -> Self {
        Self { domain, secp: Secp256k1::verification_only(), chain }
    }

    /// The EIP-712 domain.
    pub const fn domain(&self) -> &VoucherDomain {
        &self.domain
    }

    /// The signer of `digest` under the vault's rules.
    pub fn recover(&self, digest: &B256, sig: &[u8]) -> Result<Address> {
        let sig: &[u8; 65] =
            sig.try_into().map_err(|_| Error::InvalidSignature("length is not 65 bytes"))?;
        let v = sig[64];
        if v != 27 && v != 28 {
            return Err(Error::InvalidSignature("v is not 27 or 28"));
        }
        // Big-endian byte arrays compare as the numbers they encode.
        if sig[32..64] > HALF_ORDER[..] {
            return Err(Error::MalleableSignature);
        }
        let id = RecoveryId::try_from(i32::from(v - 27)).expect("0 or 1");
        let rsig = RecoverableSignature::from_compact(&sig[..64], id)
            .map_err(|_| Error::InvalidSignature("r or s is out of range"))?;
        let key = self
            .secp
            .recover_ecdsa(&Message::from_digest(digest.0), &rsig)
            .map_err(|_| Error::InvalidSignature("no key recovers from it"))?;
        let point = key.serialize_uncompressed();
        Ok(Address::from_slice(&keccak256(&point[1..])[12..]))
    }

    /// Checks that `sig` is the session key's signature of the voucher `(grant_id, payee, cumulative)`.
    pub fn check_voucher(
        &self,
        session_key: Address,
        grant_id: B256,
        payee: Address,
        cumulative: U256,
        sig: &[u8],
    ) -> Result<()> {
        let digest = self.domain.voucher_digest(grant_id, payee, cumulative);
        if self.recover(&digest, sig)? == session_key { Ok(()) } else { Err(Error::WrongSigner) }
    }

    /// Checks that the session key signed this tip (the EIP-712 `Tip` with the message's `keccak256`).
    pub fn check_tip(&self, session_key: Address, tip: &crate::protocol::TipMsg) -> Result<()> {
        let digest =
            self.domain.tip_digest(tip.grant_id, tip.payee, tip.tip_id, tip.amount, &tip.message);
        if self.recover(&digest, &tip.sig)? == session_key {
            Ok(())
        } else {
            Err(Error::WrongSigner)
        }
    }

    /// Checks the listener's grant signature as the vault does: an EOA signature of the grant digest, or else
    /// (when the listener has code) ERC-1271 `isValidSignature` through an `eth_call`.
    pub async fn check_grant(&self, grant: &SessionGrant, sig: &[u8]) -> Result<()> {
        let digest = self.domain.grant_digest(grant);
        if matches!(self.recover(&digest, sig), Ok(signer) if signer == grant.listener) {
            return Ok(());
        }
        if self.chain.is_valid_signature(grant.listener, digest, sig).await? {
            Ok(())
        } else {
            Err(Error::BadGrantSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::signers::local::PrivateKeySigner;
    use beatstream_primitives::eip712;
    use proptest::prelude::*;

    fn verifier() -> Verifier {
        let chain = Chain::new("http://127.0.0.1:1".parse::<url::Url>().unwrap());
        Verifier::new(VoucherDomain::new(31337, Address::repeat_byte(7)), chain)
    }

    #[test]
    fn half_order_is_n_over_two() {
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        assert_eq!(U256::from_be_bytes(HALF_ORDER), n / U256::from(2));
    }

    #[test]
    fn rejects_what_the_vault_rejects() {
        let v = verifier();
        let key = PrivateKeySigner::random();
        let digest = keccak256(b"beat");
        let good = eip712::sign(&key, digest).unwrap();
        assert_eq!(v.recover(&digest, &good).unwrap(), key.address());

        assert_eq!(v.recover(&digest, &good[..64]).unwrap_err().code(), "invalid_signature");
        let mut bad_v = good;
        bad_v[64] = 1;
        assert_eq!(v.recover(&digest, &bad_v).unwrap_err().code(), "invalid_signature");

        // The malleable twin: s' = n - s, v flipped. Valid ECDSA, rejected.
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let mut twin = good;
        let s = U256::from_be_slice(&good[32..64]);
        twin[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        twin[64] = if good[64] == 27 { 28 } else { 27 };
        assert_eq!(v.recover(&digest, &twin).unwrap_err().code(), "malleable_signature");
        // The primitives' reference implementation agrees.
        assert!(eip712::recover(digest, &twin).is_err());

        let zero = [0u8; 65];
        let mut zero_v = zero;
        zero_v[64] = 27;
        assert_eq!(v.recover(&digest, &zero_v).unwrap_err().code(), "invalid_signature");
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference_recovery(seed in any::<[u8; 32]>(), msg in any::<[u8; 32]>()) {
            let Ok(key) = PrivateKeySigner::from_slice(&seed) else { return Ok(()) };
            let digest = B256::from(msg);
            let sig = eip712::sign(&key, digest).unwrap();
            prop_assert_eq!(verifier().recover(&digest, &sig).unwrap(), eip712::recover(digest, &sig).unwrap());
        }
    }
}
