//! Whose signature a sign-in carries: an account's key (EIP-191 `personal_sign`), or, for an account with code,
//! its ERC-1271 wallet through `eth_call`.

use alloy::primitives::{Address, Signature, U256, eip191_hash_message};

use crate::{Error, Result, chain::Chain};

/// secp256k1's group order / 2: a larger `s` is the malleable twin of a valid signature, refused as OpenZeppelin's
/// ECDSA (and so the vault) refuses it.
const HALF_ORDER: U256 = U256::from_limbs([
    0xdfe92f46681b20a0,
    0x5d576e7357a4501d,
    0xffffffffffffffff,
    0x7fffffffffffffff,
]);

/// The account whose key made `signature` of `message` under EIP-191 (`"\x19Ethereum Signed Message:\n" ‖ len ‖
/// message`): 65 bytes `r ‖ s ‖ v`, `v` 27 or 28 (or 0 or 1), `s` in the lower half. `None` when it is not such a
/// signature.
pub(crate) fn eoa_signer(message: &str, signature: &[u8]) -> Option<Address> {
    // `Signature::from_raw` would also take EIP-155 `v`s (35 and up), which no message signature has.
    if !matches!(signature.get(64), Some(0 | 1 | 27 | 28)) {
        return None;
    }
    let sig = Signature::from_raw(signature).ok()?;
    if sig.s() > HALF_ORDER {
        return None;
    }
    sig.recover_address_from_msg(message.as_bytes()).ok()
}

/// Checks that `signature` of `message` is `address`'s: its key's EIP-191 signature, else, when `address` has code,
/// its ERC-1271 `isValidSignature(eip191Hash(message), signature)` answering `0x1626ba7e` at the latest block.
pub(crate) async fn check(
    chain: &Chain,
    address: Address,
    message: &str,
    signature: &[u8],
) -> Result<()> {
    // The key first: it costs no RPC, and an EIP-7702 account (which has code) may still sign with its key.
    if eoa_signer(message, signature) == Some(address) {
        return Ok(());
    }
    if !chain.has_code(address).await? {
        return Err(Error::Signature {
            address,
            why: "it recovers to another account (or none), and the account has no code for ERC-1271",
        });
    }
    if chain.is_valid_signature(address, eip191_hash_message(message), signature).await? {
        return Ok(());
    }
    Err(Error::Signature {
        address,
        why: "its key did not make it, and its contract's ERC-1271 isValidSignature refused it",
    })
}

#[cfg(test)]
mod tests {
    use alloy::signers::{SignerSync, local::PrivateKeySigner};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn a_personal_sign_recovers_its_signer(message in "[ -~\n]{0,300}", seed in any::<[u8; 32]>()) {
            let Ok(key) = PrivateKeySigner::from_slice(&seed) else { return Ok(()) };
            let sig = key.sign_message_sync(message.as_bytes()).unwrap();
            prop_assert_eq!(eoa_signer(&message, &sig.as_bytes()), Some(key.address()));
            // Another message, or the signature's malleable twin, is not the key's.
            prop_assert_ne!(eoa_signer(&format!("{message}."), &sig.as_bytes()), Some(key.address()));
            let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16).unwrap();
            let twin = Signature::new(sig.r(), n - sig.s(), !sig.v());
            prop_assert_eq!(eoa_signer(&message, &twin.as_bytes()), None);
        }
    }

    /// The request in `docs/STUDIO.md` is a real one: anvil's first key's signature of its message.
    #[test]
    fn the_signature_in_the_docs_is_the_messages() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/STUDIO.md"))
                .unwrap();
        let body = doc
            .split("Content-Type: application/json\n\n")
            .nth(1)
            .unwrap()
            .split("\n```")
            .next()
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        let message = body["message"].as_str().unwrap();
        let signature = alloy::hex::decode(body["signature"].as_str().unwrap()).unwrap();
        let address = crate::siwe::Message::parse(message).unwrap().address;
        assert_eq!(eoa_signer(message, &signature), Some(address));
    }

    #[test]
    fn refuses_what_is_not_a_65_byte_signature() {
        let key = PrivateKeySigner::random();
        let sig = key.sign_message_sync(b"hello").unwrap().as_bytes();
        assert_eq!(eoa_signer("hello", &sig), Some(key.address()));
        assert_eq!(eoa_signer("hello", &sig[..64]), None);
        let mut v = sig;
        v[64] -= 27;
        assert_eq!(eoa_signer("hello", &v), Some(key.address()));
        for bad in [2, 29, 35, 36, 37] {
            v[64] = bad;
            assert_eq!(eoa_signer("hello", &v), None, "v = {bad}");
        }
    }
}
