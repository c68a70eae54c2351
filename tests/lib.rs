//! End-to-end tests of the whole node live in `e2e.rs`; this crate has no library code.
