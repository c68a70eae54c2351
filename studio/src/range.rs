//! HTTP `Range` requests (RFC 9110 §14), a single byte range: what a request asks of an object of a known size.

use std::ops::Range;

/// What to answer a request for an object of some size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    /// The whole object, `200`: no `Range`, one this server ignores (another unit, several ranges, bad syntax).
    Whole,
    /// These bytes, `206`; never empty, within the object.
    Part(Range<u64>),
    /// A range none of whose bytes exist, `416`.
    Unsatisfiable,
}

/// What the `Range` header `value` asks of an object of `size` bytes. As RFC 9110 allows, a header that is not one
/// valid byte range is ignored and the whole object served.
pub(crate) fn wanted(value: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    let Some((first, last)) = spec.split_once('-') else { return Wanted::Whole };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // `-n`: the last n bytes.
        return match number(last) {
            None => Wanted::Whole,
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part(size.saturating_sub(n)..size),
        };
    }
    // `a-b` and `a-`: from a, to b or to the end.
    let Some(first) = number(first) else { return Wanted::Whole };
    let last = match (last.is_empty(), number(last)) {
        (true, _) => None,
        (false, Some(last)) if last >= first => Some(last),
        (false, _) => return Wanted::Whole,
    };
    if first >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(first..last.map_or(size, |last| last.min(size - 1) + 1))
}

/// A non-negative decimal of digits only.
fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// The `Content-Range` of `range` of an object of `size` bytes.
pub(crate) fn content_range(range: &Range<u64>, size: u64) -> String {
    format!("bytes {}-{}/{size}", range.start, range.end - 1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_forms_of_one_byte_range() {
        let w = |v: &str| wanted(Some(v), 100);
        assert_eq!(wanted(None, 100), Wanted::Whole);
        assert_eq!(w("bytes=0-9"), Wanted::Part(0..10));
        assert_eq!(w("bytes=10-"), Wanted::Part(10..100));
        assert_eq!(w("bytes=-10"), Wanted::Part(90..100));
        assert_eq!(w("bytes=-1000"), Wanted::Part(0..100));
        assert_eq!(w("bytes=90-1000"), Wanted::Part(90..100));
        assert_eq!(w("bytes=99-99"), Wanted::Part(99..100));
        assert_eq!(w("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=100-200"), Wanted::Unsatisfiable);
        assert_eq!(w("bytes=-0"), Wanted::Unsatisfiable);
        // Ignored: served whole.
        for ignored in [
            "items=0-1",
            "bytes=5-1",
            "bytes=0-1,5-6",
            "bytes=x-1",
            "bytes=1-x",
            "bytes=-",
            "bytes=",
            "0-1",
        ] {
            assert_eq!(w(ignored), Wanted::Whole, "{ignored}");
        }
        assert_eq!(content_range(&(0..10), 100), "bytes 0-9/100");
    }

    proptest! {
        /// A range that is served is never empty and lies within the object.
        #[test]
        fn parts_lie_within_the_object(first in 0u64..300, last in 0u64..300, suffix: bool, size in 0u64..200) {
            let value = if suffix { format!("bytes=-{last}") } else { format!("bytes={first}-{last}") };
            if let Wanted::Part(range) = wanted(Some(&value), size) {
                prop_assert!(range.start < range.end && range.end <= size, "{value} of {size}: {range:?}");
            }
        }
    }
}
