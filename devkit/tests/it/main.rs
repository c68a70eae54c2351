//! Tests of the fixtures themselves.

mod anvil;
mod test_db;
