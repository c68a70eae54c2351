//! Benchmark fixture: the rows the indexer would write after the simulated listeners deposited and a demo artist
//! published a track, written straight into its tables so the relay can be measured without a chain.

use alloy::primitives::{Address, keccak256};
use secp256k1::Secp256k1;
use sqlx::PgPool;

use crate::{Error, Result, keys};

/// The demo artist's payee.
pub const ARTIST: Address = Address::new([0xa7; 20]);
/// The demo artist's rate per second (0.0001 USDC).
pub const RATE: u64 = 100;

/// Funds `listeners` wallets (indices `0..listeners` under `seed`) with `funds` each and publishes track
/// `track_id` (a day long, at [`RATE`]) by the demo artist, if not there yet.
pub async fn seed(
    pool: &PgPool,
    chain_id: u64,
    seed: &str,
    listeners: usize,
    track_id: u64,
    funds: u64,
) -> Result<()> {
    beatstream_primitives::db::migrate(pool).await?;
    let node = keccak256(b"simulated-artist");
    sqlx::query(
        "INSERT INTO artists (chain_id, node, label, name, owner, addr, rate_per_second, registered_at,
                              registered_block, updated_block)
         VALUES ($1, $2, 'simulated-artist', 'simulated-artist.beatstream.eth', $3, $3, $4::numeric, now(), 0, 0)
         ON CONFLICT DO NOTHING",
    )
    .bind(chain_id as i64)
    .bind(node.as_slice())
    .bind(ARTIST.as_slice())
    .bind(RATE.to_string())
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO tracks (chain_id, track_id, artist_node, title, duration, rate_per_second, content_hash,
                             metadata_uri, published, published_at, updated_block)
         VALUES ($1, $2::numeric, $3, 'Simulated', 86400, 0, $3, 'ipfs://simulated', true, now(), 0)
         ON CONFLICT DO NOTHING",
    )
    .bind(chain_id as i64)
    .bind(track_id.to_string())
    .bind(node.as_slice())
    .execute(pool)
    .await?;
    let secp = Secp256k1::signing_only();
    let addresses: Vec<Vec<u8>> =
        (0..listeners).map(|i| keys::wallet(&secp, seed, i).address.to_vec()).collect();
    for chunk in addresses.chunks(5_000) {
        sqlx::query(
            "INSERT INTO listener_accounts (chain_id, listener, available, deposited_total, updated_block)
             SELECT $1, l, $3::numeric, $3::numeric, 0 FROM unnest($2::bytea[]) AS l
             ON CONFLICT (chain_id, listener) DO UPDATE SET available = EXCLUDED.available",
        )
        .bind(chain_id as i64)
        .bind(chunk)
        .bind(funds.to_string())
        .execute(pool)
        .await
        .map_err(|e| Error::Simulate(format!("seeding listeners: {e}")))?;
    }
    Ok(())
}
