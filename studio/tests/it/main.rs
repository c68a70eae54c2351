//! Studio tests over HTTP, on anvil with the real contracts and a real Postgres: sign-in with EIP-4361 (keys and
//! ERC-1271 wallets), its refusals, and who manages an artist name; uploads, their storage (a directory, and S3 on
//! moto's server) and the public audio routes.

mod harness;
mod manager;
mod s3;
mod signin;
mod upload;
mod wallet;
