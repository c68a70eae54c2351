//! USDC amounts: on-chain base units (6 decimals) to and from decimal strings.

use alloy::primitives::U256;

use crate::{Error, Result};

/// Number of decimals of USDC.
pub const USDC_DECIMALS: usize = 6;

/// One whole USDC in base units.
pub const ONE_USDC: U256 = U256::from_limbs([1_000_000, 0, 0, 0]);

/// Formats base units as a decimal string with exactly six decimals, e.g. `"1.234567"`.
///
/// Always six decimals, so amounts line up and the output is one canonical spelling.
pub fn format_usdc(amount: U256) -> String {
    let (whole, frac) = amount.div_rem(ONE_USDC);
    format!("{whole}.{:0>width$}", frac.to::<u64>(), width = USDC_DECIMALS)
}

/// Parses a decimal string such as `"12"`, `"0.5"` or `"1.234567"` into base units.
///
/// Strict on purpose, since these are amounts of money: ASCII digits, at most one `.`
/// with one to six digits after it, no sign, exponent, separators or whitespace.
pub fn parse_usdc(input: &str) -> Result<U256> {
    let invalid = |reason| Error::InvalidAmount { input: input.to_owned(), reason };
    let (whole, frac) = match input.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (input, None),
    };
    if whole.is_empty() {
        return Err(invalid("expected digits before the decimal point"));
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("expected only digits and one decimal point"));
    }
    let frac = frac.unwrap_or("0");
    if frac.is_empty() {
        return Err(invalid("expected digits after the decimal point"));
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("expected only digits and one decimal point"));
    }
    if frac.len() > USDC_DECIMALS {
        return Err(invalid("USDC has at most 6 decimals"));
    }
    let too_large = || invalid("amount does not fit in 256 bits");
    let whole = U256::from_str_radix(whole, 10).map_err(|_| too_large())?;
    // `frac` has at most six digits, so it fits in a u64.
    let frac: u64 = format!("{frac:0<USDC_DECIMALS$}").parse().expect("six ascii digits");
    whole.checked_mul(ONE_USDC).and_then(|w| w.checked_add(U256::from(frac))).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_with_six_decimals() {
        assert_eq!(format_usdc(U256::ZERO), "0.000000");
        assert_eq!(format_usdc(U256::from(1_234_567u64)), "1.234567");
        assert_eq!(format_usdc(U256::from(5u64)), "0.000005");
        assert_eq!(format_usdc(U256::from(42_000_000u64)), "42.000000");
    }

    #[test]
    fn parses_valid_amounts() {
        assert_eq!(parse_usdc("0").unwrap(), U256::ZERO);
        assert_eq!(parse_usdc("1").unwrap(), ONE_USDC);
        assert_eq!(parse_usdc("1.5").unwrap(), U256::from(1_500_000u64));
        assert_eq!(parse_usdc("1.234567").unwrap(), U256::from(1_234_567u64));
        assert_eq!(parse_usdc("0.000001").unwrap(), U256::from(1u64));
        assert_eq!(parse_usdc("007.10").unwrap(), U256::from(7_100_000u64));
    }

    #[test]
    fn rejects_invalid_amounts() {
        for bad in
            ["", ".", "1.", ".5", "-1", "+1", "1.2345678", "1,5", " 1", "1e6", "1.2.3", "0x10"]
        {
            let err = parse_usdc(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidAmount { .. }), "{bad:?} gave {err}");
        }
        let too_big = format!("{}", U256::MAX);
        assert!(parse_usdc(&too_big).is_err());
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(bytes in any::<[u8; 32]>()) {
            let amount = U256::from_be_bytes(bytes);
            prop_assert_eq!(parse_usdc(&format_usdc(amount)).unwrap(), amount);
        }

        #[test]
        fn parse_then_format_is_canonical(s in "[0-9]{1,30}(\\.[0-9]{1,6})?") {
            let amount = parse_usdc(&s).unwrap();
            let canonical = format_usdc(amount);
            prop_assert_eq!(parse_usdc(&canonical).unwrap(), amount);
            prop_assert_eq!(canonical.split_once('.').unwrap().1.len(), USDC_DECIMALS);
        }
    }
}
