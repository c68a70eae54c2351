//! Numbers the node sends as decimal strings.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `u64` that travels as a decimal string (versions, nonces): JavaScript numbers cannot hold every `u64`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct U64String(pub u64);

impl fmt::Display for U64String {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for U64String {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for U64String {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(format!("{s:?} is not a decimal uint64 string")));
        }
        s.parse().map(Self).map_err(serde::de::Error::custom)
    }
}
