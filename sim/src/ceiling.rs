//! The ceiling the relay's verification puts on throughput: voucher signature recoveries per second, measured with
//! the relay's own verifier on every core, next to alloy's default (k256) path for reference.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, Instant},
};

use alloy::primitives::{Address, B256, U256};
use beatstream_primitives::{VoucherDomain, eip712};
use secp256k1::Secp256k1;

use beatstream_stream_relay::{chain::Chain, verify::Verifier};

use crate::keys::Key;

/// Recoveries per second.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Ceiling {
    /// The relay's path (digest + libsecp256k1 recovery + address), all threads together.
    pub relay_per_sec: f64,
    /// Threads used.
    pub threads: usize,
    /// The relay's path on one thread.
    pub relay_per_sec_one_thread: f64,
    /// alloy's default k256 recovery on one thread.
    pub k256_per_sec_one_thread: f64,
}

/// Measures for about `secs` seconds in total.
pub fn measure(domain: &VoucherDomain, threads: usize, secs: f64) -> Ceiling {
    let secp = Secp256k1::signing_only();
    let key = Key::derive(&secp, "ceiling", "key");
    let grant = B256::repeat_byte(3);
    let payee = Address::repeat_byte(4);
    let sigs: Vec<(U256, [u8; 65])> = (1..=256u64)
        .map(|i| {
            let c = U256::from(i * 100);
            (c, key.sign(&secp, domain.voucher_digest(grant, payee, c)))
        })
        .collect();
    let verifier = Verifier::new(
        domain.clone(),
        Chain::new("http://127.0.0.1:1".parse::<url::Url>().expect("static url")),
    );
    let slice = Duration::from_secs_f64(secs / 3.0);

    let run = |n_threads: usize| {
        let count = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let started = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..n_threads {
                s.spawn(|| {
                    let mut i = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let (c, sig) = &sigs[i % sigs.len()];
                        verifier.check_voucher(key.address, grant, payee, *c, sig).expect("valid");
                        i += 1;
                        if i.is_multiple_of(64) {
                            count.fetch_add(64, Ordering::Relaxed);
                        }
                    }
                });
            }
            std::thread::sleep(slice);
            stop.store(true, Ordering::Relaxed);
        });
        count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
    };
    let relay_per_sec_one_thread = run(1);
    let relay_per_sec = run(threads);

    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < slice {
        let (c, sig) = &sigs[n as usize % sigs.len()];
        let digest = domain.voucher_digest(grant, payee, *c);
        assert_eq!(eip712::recover(digest, sig).expect("valid"), key.address);
        n += 1;
    }
    let k256_per_sec_one_thread = n as f64 / started.elapsed().as_secs_f64();
    Ceiling { relay_per_sec, threads, relay_per_sec_one_thread, k256_per_sec_one_thread }
}
