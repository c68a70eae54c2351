//! docs/vectors/eip712.json: grants, vouchers, ids, digests and signatures from fixed keys, as this crate computes
//! them, for other implementations (the TypeScript SDK in clients/ts) to check against, so the two cannot drift.
//! `BEATSTREAM_UPDATE_VECTORS=1` rewrites the file; otherwise it must match.

use std::path::Path;

use alloy::{
    hex,
    primitives::{Address, B256, U256, address, keccak256},
    signers::local::PrivateKeySigner,
    sol_types::SolStruct,
};
use beatstream_primitives::{
    SessionGrant, VoucherDomain,
    eip712::{DOMAIN_NAME, DOMAIN_VERSION, Tip, Voucher, recover},
};
use serde_json::{Value, json};

/// anvil's account 2 (the dev demo's listener) and a fixed session key.
const LISTENER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const SESSION_KEY: &str = "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn domain_json(chain_id: u64, vault: Address, domain: &VoucherDomain) -> Value {
    json!({
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": vault.to_checksum(None),
        "separator": domain.separator(),
    })
}

fn vectors() -> Value {
    let listener: PrivateKeySigner = LISTENER_KEY.parse().unwrap();
    let session: PrivateKeySigner = SESSION_KEY.parse().unwrap();
    let vault = address!("0x5FC8d32690cc91D4c39d9d3abcBD16989F875707");
    let domains = [(31337u64, vault), (1u64, vault), (31337u64, Address::repeat_byte(0x11))];

    let grants = [
        SessionGrant {
            listener: listener.address(),
            sessionKey: session.address(),
            cap: U256::from(10_000_000u64),
            expiresAt: 1_893_456_000,
            nonce: 7,
        },
        SessionGrant {
            listener: listener.address(),
            sessionKey: session.address(),
            cap: U256::from(1u64),
            expiresAt: 0,
            nonce: 0,
        },
        // Every uint64 and the largest cap: a JavaScript number cannot hold these, a bigint must.
        SessionGrant {
            listener: listener.address(),
            sessionKey: session.address(),
            cap: U256::MAX,
            expiresAt: u64::MAX,
            nonce: u64::MAX,
        },
    ];
    let payees = [address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"), Address::ZERO];
    let cumulatives = [U256::ZERO, U256::from(1_000u64), U256::from(123_456_789u64), U256::MAX];

    let cases: Vec<Value> = domains
        .iter()
        .map(|&(chain_id, vault)| {
            let domain = VoucherDomain::new(chain_id, vault);
            let grants: Vec<Value> = grants
                .iter()
                .map(|g| {
                    let sig = domain.sign_grant(&listener, g).unwrap();
                    assert_eq!(recover(domain.grant_digest(g), &sig).unwrap(), listener.address());
                    json!({
                        "grant": {
                            "listener": g.listener.to_checksum(None),
                            "sessionKey": g.sessionKey.to_checksum(None),
                            "cap": g.cap.to_string(),
                            "expiresAt": g.expiresAt.to_string(),
                            "nonce": g.nonce.to_string(),
                        },
                        "grantId": g.id(),
                        "digest": domain.grant_digest(g),
                        "signature": hex::encode_prefixed(sig),
                    })
                })
                .collect();
            let grant_id = grants_id(&grants[0]);
            let vouchers: Vec<Value> = payees
                .iter()
                .flat_map(|&payee| cumulatives.iter().map(move |&c| (payee, c)))
                .map(|(payee, cumulative)| {
                    let sig = domain.sign_voucher(&session, grant_id, payee, cumulative).unwrap();
                    let digest = domain.voucher_digest(grant_id, payee, cumulative);
                    assert_eq!(recover(digest, &sig).unwrap(), session.address());
                    json!({
                        "voucher": {
                            "grantId": grant_id,
                            "payee": payee.to_checksum(None),
                            "cumulative": cumulative.to_string(),
                        },
                        "structHash": Voucher { grantId: grant_id, payee, cumulative }.eip712_hash_struct(),
                        "digest": digest,
                        "signature": hex::encode_prefixed(sig),
                    })
                })
                .collect();
            let tips: Vec<Value> = tip_cases()
                .into_iter()
                .map(|(payee, tip_id, amount, message)| {
                    let bytes = message.as_bytes();
                    let sig = domain.sign_tip(&session, grant_id, payee, tip_id, amount, bytes).unwrap();
                    let digest = domain.tip_digest(grant_id, payee, tip_id, amount, bytes);
                    assert_eq!(recover(digest, &sig).unwrap(), session.address());
                    let message_hash = keccak256(bytes);
                    json!({
                        "tip": {
                            "grantId": grant_id,
                            "payee": payee.to_checksum(None),
                            "tipId": tip_id.to_string(),
                            "amount": amount.to_string(),
                            "message": message,
                        },
                        "messageHash": message_hash,
                        "structHash": Tip { grantId: grant_id, payee, tipId: tip_id, amount, messageHash: message_hash }
                            .eip712_hash_struct(),
                        "digest": digest,
                        "signature": hex::encode_prefixed(sig),
                    })
                })
                .collect();
            json!({
                "domain": domain_json(chain_id, vault, &domain),
                "grants": grants,
                "vouchers": vouchers,
                "tips": tips,
            })
        })
        .collect();

    json!({
        "description": "BeatStream EIP-712 test vectors (docs/PROTOCOL.md). Written by primitives/tests/it/vectors.rs \
            from the Rust primitives; BEATSTREAM_UPDATE_VECTORS=1 rewrites them. Amounts and uint64s are decimal \
            strings, addresses EIP-55. grantId = the grant's struct hash; digest = keccak256(0x1901 ‖ domain separator ‖ struct \
            hash); signatures are 65 bytes r ‖ s ‖ v, v 27 or 28, low s, deterministic (RFC 6979), by listenerKey \
            (grants) and sessionKey (vouchers and tips of the case's first grant). A tip's messageHash is keccak256 of \
            the message's UTF-8 bytes.",
        "types": {
            "SessionGrant": SessionGrant::eip712_encode_type(),
            "Voucher": Voucher::eip712_encode_type(),
            "sessionGrantTypehash": keccak256(SessionGrant::eip712_encode_type().as_bytes()),
            "voucherTypehash": keccak256(Voucher::eip712_encode_type().as_bytes()),
            "Tip": Tip::eip712_encode_type(),
            "tipTypehash": keccak256(Tip::eip712_encode_type().as_bytes()),
        },
        "listenerKey": LISTENER_KEY,
        "listener": listener.address().to_checksum(None),
        "sessionKey": SESSION_KEY,
        "sessionKeyAddress": session.address().to_checksum(None),
        "cases": cases,
    })
}

/// Tips: a plain one, the empty message, multi-byte UTF-8 and markup kept as given, the longest message (280
/// bytes) and the largest tip id and amount.
fn tip_cases() -> Vec<(Address, U256, U256, String)> {
    let artist = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    vec![
        (artist, U256::from(1), U256::from(5_000_000u64), "thanks for the bridge".to_owned()),
        (artist, U256::from(2), U256::from(1u64), String::new()),
        (artist, U256::from(3), U256::from(250_000u64), "<b>merci</b> ♥ 🎶 \"quoted\"".to_owned()),
        (artist, U256::from(4), U256::from(10u64), "é".repeat(140)),
        (Address::ZERO, U256::MAX, U256::MAX, "x".to_owned()),
    ]
}

fn grants_id(grant: &Value) -> B256 {
    grant["grantId"].as_str().unwrap().parse().unwrap()
}

#[test]
fn docs_vectors_match_the_primitives() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/eip712.json");
    let computed = vectors();
    if std::env::var_os("BEATSTREAM_UPDATE_VECTORS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("docs/vectors/eip712.json")).unwrap();
    assert_eq!(
        written, computed,
        "docs/vectors/eip712.json is stale: BEATSTREAM_UPDATE_VECTORS=1 rewrites it"
    );
}
