//! End-to-end tests of the whole node live in `e2e.rs` (a stream paid, settled, mirrored and shown), `audio.rs` (a
//! track uploaded, published, paid for and heard) and `splits.rs` (a split track and a tip, paid exactly to each
//! recipient); `support.rs` starts the services they share. This crate has no library code.
