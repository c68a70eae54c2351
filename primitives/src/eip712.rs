//! The EIP-712 types of protocol v1, written once for Rust: `SessionGrant`, `Voucher` and (contracts v3) `Tip`.
//!
//! The Solidity side is `contracts/src/libraries/VoucherHashing.sol`; the agreement test in
//! `primitives/tests/it/agreement.rs` checks on anvil that both compute the same grant ids and digests.

use alloy::{
    primitives::{Address, B256, Signature, U256, keccak256},
    signers::{SignerSync, local::PrivateKeySigner},
    sol,
    sol_types::{Eip712Domain, SolStruct},
};

use crate::error::{Error, Result};

sol! {
    /// A listener's authorisation of a player's session key to spend up to `cap` before `expiresAt`.
    #[derive(Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SessionGrant {
        /// The account that pays (EOA or ERC-1271 contract).
        address listener;
        /// The player's ephemeral key that signs vouchers.
        address sessionKey;
        /// The most all vouchers under the grant may pay, in token base units.
        uint256 cap;
        /// Unix time after which no new voucher may be signed.
        uint64 expiresAt;
        /// Distinguishes grants with otherwise equal fields.
        uint64 nonce;
    }

    /// The cumulative amount owed to `payee` under the grant `grantId`.
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Voucher {
        /// The grant's struct hash.
        bytes32 grantId;
        /// Who is paid.
        address payee;
        /// Everything owed to `payee` under the grant so far.
        uint256 cumulative;
    }

    /// A one-off amount from the grant's listener to `payee`, with a message (contracts v3).
    #[derive(Debug, PartialEq, Eq, Hash)]
    struct Tip {
        /// The grant's struct hash.
        bytes32 grantId;
        /// Who is paid.
        address payee;
        /// The player's choice, unique under the grant: a tip settles at most once per (grant, tipId).
        uint256 tipId;
        /// The amount in token base units.
        uint256 amount;
        /// `keccak256` of the message's bytes as given.
        bytes32 messageHash;
    }
}

/// The longest tip message the vault settles, in bytes (`MAX_TIP_MESSAGE_BYTES`).
pub const MAX_TIP_MESSAGE_BYTES: usize = 280;

/// The EIP-712 domain name of the vault.
pub const DOMAIN_NAME: &str = "BeatStream";
/// The EIP-712 domain version of protocol v1.
pub const DOMAIN_VERSION: &str = "1";
/// secp256k1 group order / 2: signatures with a larger `s` are malleable twins and rejected, as on-chain.
const SECP256K1N_HALF: U256 = U256::from_limbs([
    0xdfe92f46681b20a0,
    0x5d576e7357a4501d,
    0xffffffffffffffff,
    0x7fffffffffffffff,
]);

/// The signing domain of one vault on one chain, with its separator computed once.
#[derive(Debug, Clone)]
pub struct VoucherDomain {
    domain: Eip712Domain,
    separator: B256,
}

impl VoucherDomain {
    /// The domain of `vault` on chain `chain_id`.
    pub fn new(chain_id: u64, vault: Address) -> Self {
        let domain = Eip712Domain::new(
            Some(DOMAIN_NAME.into()),
            Some(DOMAIN_VERSION.into()),
            Some(U256::from(chain_id)),
            Some(vault),
            None,
        );
        let separator = domain.separator();
        Self { domain, separator }
    }

    /// The alloy domain, for wallets that sign typed data.
    pub const fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// The domain separator.
    pub const fn separator(&self) -> B256 {
        self.separator
    }

    /// `keccak256("\x19\x01" ‖ separator ‖ structHash)`.
    pub fn digest(&self, struct_hash: B256) -> B256 {
        let mut buf = [0u8; 66];
        buf[0] = 0x19;
        buf[1] = 0x01;
        buf[2..34].copy_from_slice(self.separator.as_slice());
        buf[34..].copy_from_slice(struct_hash.as_slice());
        keccak256(buf)
    }

    /// The digest the listener signs for `grant`.
    pub fn grant_digest(&self, grant: &SessionGrant) -> B256 {
        self.digest(grant.id())
    }

    /// The digest the session key signs for a voucher.
    pub fn voucher_digest(&self, grant_id: B256, payee: Address, cumulative: U256) -> B256 {
        self.digest(Voucher { grantId: grant_id, payee, cumulative }.eip712_hash_struct())
    }

    /// The digest the session key signs for a tip of `amount` to `payee` with `message` (its bytes as given).
    pub fn tip_digest(
        &self,
        grant_id: B256,
        payee: Address,
        tip_id: U256,
        amount: U256,
        message: &[u8],
    ) -> B256 {
        let tip = Tip {
            grantId: grant_id,
            payee,
            tipId: tip_id,
            amount,
            messageHash: keccak256(message),
        };
        self.digest(tip.eip712_hash_struct())
    }

    /// Signs a tip with the session key.
    pub fn sign_tip(
        &self,
        signer: &PrivateKeySigner,
        grant_id: B256,
        payee: Address,
        tip_id: U256,
        amount: U256,
        message: &[u8],
    ) -> Result<SignatureBytes> {
        sign(signer, self.tip_digest(grant_id, payee, tip_id, amount, message))
    }

    /// Signs `grant` with the listener's key.
    pub fn sign_grant(
        &self,
        signer: &PrivateKeySigner,
        grant: &SessionGrant,
    ) -> Result<SignatureBytes> {
        sign(signer, self.grant_digest(grant))
    }

    /// Signs a voucher with the session key.
    pub fn sign_voucher(
        &self,
        signer: &PrivateKeySigner,
        grant_id: B256,
        payee: Address,
        cumulative: U256,
    ) -> Result<SignatureBytes> {
        sign(signer, self.voucher_digest(grant_id, payee, cumulative))
    }
}

impl SessionGrant {
    /// The grant id: its EIP-712 struct hash.
    pub fn id(&self) -> B256 {
        self.eip712_hash_struct()
    }
}

/// A 65-byte `r ‖ s ‖ v` signature with `v` in {27, 28}, as the vault and the relay's wire format take it.
pub type SignatureBytes = [u8; 65];

/// Signs a prehashed digest, returning the vault's 65-byte layout.
pub fn sign(signer: &PrivateKeySigner, digest: B256) -> Result<SignatureBytes> {
    let sig = signer.sign_hash_sync(&digest).map_err(|e| Error::Signing(e.to_string()))?;
    Ok(sig.as_bytes())
}

/// Recovers the EOA that signed `digest`, applying the vault's rules: exactly 65 bytes, `v` of 27 or 28, and `s`
/// in the lower half of the curve order (so a signature's malleable twin is rejected, not accepted twice).
pub fn recover(digest: B256, signature: &[u8]) -> Result<Address> {
    let bytes: &SignatureBytes =
        signature.try_into().map_err(|_| Error::InvalidSignature("length is not 65"))?;
    let v = bytes[64];
    if v != 27 && v != 28 {
        return Err(Error::InvalidSignature("v is not 27 or 28"));
    }
    let s = U256::from_be_slice(&bytes[32..64]);
    if s > SECP256K1N_HALF {
        return Err(Error::InvalidSignature("s is in the upper half of the curve order"));
    }
    let sig =
        Signature::from_raw_array(bytes).map_err(|_| Error::InvalidSignature("not a signature"))?;
    sig.recover_address_from_prehash(&digest)
        .map_err(|_| Error::InvalidSignature("no signer recovers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::address;
    use proptest::prelude::*;

    fn grant(listener: Address, session_key: Address) -> SessionGrant {
        SessionGrant {
            listener,
            sessionKey: session_key,
            cap: U256::from(1_000_000u64),
            expiresAt: 1_900_000_000,
            nonce: 7,
        }
    }

    #[test]
    fn typehashes_are_the_protocol_strings() {
        assert_eq!(
            SessionGrant::eip712_encode_type(),
            "SessionGrant(address listener,address sessionKey,uint256 cap,uint64 expiresAt,uint64 nonce)"
        );
        assert_eq!(
            Voucher::eip712_encode_type(),
            "Voucher(bytes32 grantId,address payee,uint256 cumulative)"
        );
        assert_eq!(
            Tip::eip712_encode_type(),
            "Tip(bytes32 grantId,address payee,uint256 tipId,uint256 amount,bytes32 messageHash)"
        );
        // The vault's TIP_TYPEHASH (docs/PROTOCOL.md, "Splits and tips").
        assert_eq!(
            keccak256(Tip::eip712_encode_type().as_bytes()),
            alloy::primitives::b256!(
                "0x6720685c0ceb8c86c754326fa8a662a822c48adffe9de98665424334de9fd47d"
            )
        );
    }

    #[test]
    fn a_tip_signature_binds_its_message() {
        let key = PrivateKeySigner::random();
        let domain = VoucherDomain::new(31337, Address::repeat_byte(9));
        let id = grant(Address::repeat_byte(1), key.address()).id();
        let (payee, tip, amount) = (Address::repeat_byte(2), U256::from(1), U256::from(5_000_000));
        let sig = domain.sign_tip(&key, id, payee, tip, amount, "thanks ♥".as_bytes()).unwrap();
        let digest = domain.tip_digest(id, payee, tip, amount, "thanks ♥".as_bytes());
        assert_eq!(recover(digest, &sig).unwrap(), key.address());
        let other = domain.tip_digest(id, payee, tip, amount, "thanks <3".as_bytes());
        assert_ne!(recover(other, &sig).ok(), Some(key.address()));
    }

    #[test]
    fn half_order_constant_is_n_over_two() {
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        assert_eq!(SECP256K1N_HALF, n / U256::from(2));
    }

    #[test]
    fn rejects_high_s_twin_of_a_good_signature() {
        let key = PrivateKeySigner::random();
        let digest = keccak256(b"beat");
        let mut sig = sign(&key, digest).unwrap();
        assert_eq!(recover(digest, &sig).unwrap(), key.address());
        let n = U256::from_str_radix(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
            16,
        )
        .unwrap();
        let s = U256::from_be_slice(&sig[32..64]);
        sig[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        sig[64] = if sig[64] == 27 { 28 } else { 27 };
        assert!(matches!(recover(digest, &sig), Err(Error::InvalidSignature(_))));
    }

    #[test]
    fn rejects_bad_lengths_and_v() {
        let digest = keccak256(b"beat");
        assert!(recover(digest, &[0u8; 64]).is_err());
        let mut sig = sign(&PrivateKeySigner::random(), digest).unwrap();
        sig[64] = 1;
        assert!(recover(digest, &sig).is_err());
    }

    #[test]
    fn domain_binds_chain_and_vault() {
        let vault = address!("0x5FC8d32690cc91D4c39d9d3abcBD16989F875707");
        let a = VoucherDomain::new(31337, vault);
        let b = VoucherDomain::new(1, vault);
        let c = VoucherDomain::new(31337, Address::repeat_byte(1));
        let id = grant(Address::ZERO, Address::ZERO).id();
        let d = a.voucher_digest(id, vault, U256::from(1));
        assert_ne!(d, b.voucher_digest(id, vault, U256::from(1)));
        assert_ne!(d, c.voucher_digest(id, vault, U256::from(1)));
        assert_eq!(a.separator(), a.domain().separator());
    }

    proptest! {
        #[test]
        fn voucher_signatures_round_trip(seed in any::<[u8; 32]>(), payee in any::<[u8; 20]>(), cumulative in any::<u128>()) {
            prop_assume!(seed != [0u8; 32]);
            let Ok(key) = PrivateKeySigner::from_slice(&seed) else { return Ok(()) };
            let domain = VoucherDomain::new(31337, Address::repeat_byte(9));
            let g = grant(Address::repeat_byte(1), key.address());
            let payee = Address::from(payee);
            let sig = domain.sign_voucher(&key, g.id(), payee, U256::from(cumulative)).unwrap();
            let digest = domain.voucher_digest(g.id(), payee, U256::from(cumulative));
            prop_assert_eq!(recover(digest, &sig).unwrap(), key.address());
            // Any other cumulative recovers someone else (or nothing).
            let other = domain.voucher_digest(g.id(), payee, U256::from(cumulative) + U256::from(1));
            prop_assert_ne!(recover(other, &sig).ok(), Some(key.address()));
        }
    }
}
