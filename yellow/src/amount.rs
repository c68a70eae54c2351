//! Amounts as the node carries them: non-negative decimal strings in human units (`"1.25"` USDC, not base units).
//!
//! The node hashes an amount in its shortest form, trailing zeros and a bare trailing point trimmed (`"0.90"` is
//! hashed as `"0.9"`, `"1.0"` as `"1"`), so two spellings of one number sign the same. [`Amount`] keeps the number
//! exactly (an integer and a scale), compares and adds without rounding, and prints the canonical form.

use std::{cmp::Ordering, fmt, str::FromStr};

use alloy::primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Most fraction digits accepted: more than any asset's decimals, few enough that rescaling never overflows.
pub const MAX_SCALE: u8 = 36;

/// An exact non-negative decimal amount in human units.
#[derive(Clone, Copy, Debug, Default)]
pub struct Amount {
    /// The number times `10^scale`, with no trailing decimal zeros unless zero.
    units: U256,
    scale: u8,
}

/// Why a string is not an amount.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not `digits[.digits]`.
    #[error("amount {0:?} is not a non-negative decimal number")]
    Syntax(String),
    /// Too many digits.
    #[error("amount {0:?} is out of range")]
    Range(String),
    /// More fraction digits than the asset has.
    #[error("amount {amount} has more than {decimals} decimals")]
    Precision {
        /// The amount.
        amount: String,
        /// The asset's decimals.
        decimals: u8,
    },
}

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self { units: U256::ZERO, scale: 0 };

    /// `units / 10^decimals`: base units of an asset with `decimals` decimals.
    pub fn from_base_units(units: U256, decimals: u8) -> Self {
        Self { units, scale: decimals }.normalized()
    }

    /// The amount in base units of an asset with `decimals` decimals; an error if it has finer precision.
    pub fn to_base_units(self, decimals: u8) -> Result<U256, AmountError> {
        if self.scale > decimals {
            return Err(AmountError::Precision { amount: self.to_string(), decimals });
        }
        self.units
            .checked_mul(pow10(decimals - self.scale))
            .ok_or_else(|| AmountError::Range(self.to_string()))
    }

    /// Whether it is zero.
    pub fn is_zero(self) -> bool {
        self.units.is_zero()
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        let scale = self.scale.max(other.scale);
        let sum = self.rescaled(scale)?.checked_add(other.rescaled(scale)?)?;
        Some(Self { units: sum, scale }.normalized())
    }

    /// `self - other`, `None` if negative.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        let scale = self.scale.max(other.scale);
        let diff = self.rescaled(scale)?.checked_sub(other.rescaled(scale)?)?;
        Some(Self { units: diff, scale }.normalized())
    }

    fn rescaled(self, scale: u8) -> Option<U256> {
        self.units.checked_mul(pow10(scale - self.scale))
    }

    fn normalized(mut self) -> Self {
        let ten = U256::from(10);
        while self.scale > 0 && (self.units % ten).is_zero() {
            self.units /= ten;
            self.scale -= 1;
        }
        if self.units.is_zero() {
            self.scale = 0;
        }
        self
    }
}

fn pow10(n: u8) -> U256 {
    U256::from(10).pow(U256::from(n))
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, AmountError> {
        let syntax = || AmountError::Syntax(s.chars().take(80).collect());
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        if s.contains('.') && frac.is_empty() {
            // "1." : the node's decimal parser takes it; accept it as 1.
        } else if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let frac = frac.trim_end_matches('0');
        if frac.len() > MAX_SCALE as usize || int.len() > 40 {
            return Err(AmountError::Range(s.chars().take(80).collect()));
        }
        let digits = format!("{int}{frac}");
        let units = U256::from_str_radix(&digits, 10).map_err(|_| syntax())?;
        Ok(Self { units, scale: frac.len() as u8 }.normalized())
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.units.to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Amount {}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    fn cmp(&self, other: &Self) -> Ordering {
        // Both are normalized, so equal numbers have equal parts; otherwise compare at the larger scale, which
        // cannot overflow: at most 40 integer digits plus 36 fraction digits is below 2^256.
        let scale = self.scale.max(other.scale);
        let a = self.rescaled(scale).expect("bounded by parsing");
        let b = other.rescaled(scale).expect("bounded by parsing");
        a.cmp(&b)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> Amount {
        s.parse().unwrap()
    }

    #[test]
    fn prints_the_shortest_form() {
        for (input, canonical) in [
            ("0.90", "0.9"),
            ("0.10", "0.1"),
            ("0", "0"),
            ("0.000", "0"),
            ("1.", "1"),
            ("1.0", "1"),
            ("1.23456789", "1.23456789"),
            ("007.50", "7.5"),
            ("0.000001", "0.000001"),
        ] {
            assert_eq!(a(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in ["", ".5", "-1", "+1", "1e3", "1.2.3", " 1", "0x10", "1,5", "١"] {
            assert!(bad.parse::<Amount>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn converts_base_units() {
        assert_eq!(Amount::from_base_units(U256::from(1_250_000), 6).to_string(), "1.25");
        assert_eq!(Amount::from_base_units(U256::from(1), 6).to_string(), "0.000001");
        assert_eq!(a("1.25").to_base_units(6).unwrap(), U256::from(1_250_000));
        assert!(matches!(a("0.0000001").to_base_units(6), Err(AmountError::Precision { .. })));
    }

    #[test]
    fn adds_and_subtracts_exactly() {
        assert_eq!(a("0.35").checked_add(a("0.9")).unwrap(), a("1.25"));
        assert_eq!(a("1.25").checked_sub(a("0.35")).unwrap().to_string(), "0.9");
        assert!(a("0.1").checked_sub(a("0.2")).is_none());
        assert!(a("0.1") < a("0.10000000001"));
    }

    proptest! {
        #[test]
        fn base_units_round_trip(units in any::<u128>(), decimals in 0u8..=18) {
            let amount = Amount::from_base_units(U256::from(units), decimals);
            prop_assert_eq!(amount.to_base_units(decimals).unwrap(), U256::from(units));
            let reparsed: Amount = amount.to_string().parse().unwrap();
            prop_assert_eq!(reparsed, amount);
            prop_assert_eq!(reparsed.to_string(), amount.to_string());
        }
    }
}
