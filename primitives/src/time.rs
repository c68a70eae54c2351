//! The wall clock, read one way everywhere.

use std::time::{SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch with a fraction (0 if the clock is before it).
pub fn unix_now_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_fractional_seconds_agree() {
        let whole = unix_now();
        let fractional = unix_now_f64();
        // After 2020 and the two readings within a second of each other.
        assert!(whole > 1_577_836_800, "{whole}");
        assert!((fractional - whole as f64).abs() < 2.0, "{whole} vs {fractional}");
    }
}
