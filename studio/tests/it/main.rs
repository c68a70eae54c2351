//! Studio tests over HTTP, on anvil with the real contracts and a real Postgres: sign-in with EIP-4361 (keys and
//! ERC-1271 wallets), its refusals, and who manages an artist name.

mod harness;
mod manager;
mod signin;
mod wallet;
