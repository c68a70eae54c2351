//! Integration tests of `beatstream-primitives` against a real Postgres.

mod chain;
mod db;
mod vectors;
