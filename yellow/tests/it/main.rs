//! Integration tests: upstream signing vectors, and the client against the nitronode double.

mod double;
mod vectors;
