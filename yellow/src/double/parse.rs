//! Go's parsing rules as the node applies them (hexutil, strconv, address normalization) and paging.

use super::*;

/// go-ethereum's `hexutil.Decode`, with its error texts.
pub(super) fn hexutil_decode(text: &str) -> Result<Vec<u8>, &'static str> {
    if text.is_empty() {
        return Err("empty hex string");
    }
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or("hex string without 0x prefix")?;
    if digits.len() % 2 == 1 {
        return Err("hex string of odd length");
    }
    alloy::hex::decode(digits).map_err(|_| "invalid hex string")
}

/// `core.NormalizeHexAddress`: 40 hex digits, `0x` optional, any case.
pub(super) fn normalize_address(text: &str) -> Result<Address, String> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not a 20-byte hex address"));
    }
    Address::from_str(digits).map_err(|e| e.to_string())
}

/// `^[a-z0-9_-]{1,66}$`.
pub(super) fn is_application_id(id: &str) -> bool {
    (1..=66).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Go's `strconv.ParseUint(s, 10, 64)`: decimal digits only (Rust's parser would also take a `+`).
pub(super) fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
pub(super) fn parse_i64(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A payload the method's request type does not fit: the node's fallback text.
pub(super) fn parse<T: DeserializeOwned>(payload: Value) -> Result<T, String> {
    serde_json::from_value(payload).map_err(|_| "failed to parse parameters".to_owned())
}

pub(super) fn page_metadata(total: usize, offset: u32, limit: u32) -> Value {
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    json!({
        "page": offset / limit + 1,
        "per_page": limit,
        "total_count": total,
        "page_count": total.div_ceil(limit),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_parsing() {
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("+7"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_i64("-5"), Some(-5));
        assert_eq!(parse_i64("-"), None);
        assert_eq!(hexutil_decode("12"), Err("hex string without 0x prefix"));
        assert_eq!(hexutil_decode("0x1"), Err("hex string of odd length"));
        assert_eq!(hexutil_decode("0xzz"), Err("invalid hex string"));
        assert!(
            is_application_id("beat-stream_1")
                && !is_application_id("Beat")
                && !is_application_id("")
        );
    }
}
