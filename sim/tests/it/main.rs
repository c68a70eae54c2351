//! The simulator's player API against a real relay over a fresh database seeded with the benchmark fixture.

mod client;
