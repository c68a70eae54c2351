//! End-to-end tests of the whole node live in `e2e.rs` (a stream paid, settled, mirrored and shown) and `audio.rs`
//! (a track uploaded, published, paid for and heard); this crate has no library code.
