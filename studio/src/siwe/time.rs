//! RFC 3339 `date-time`, as EIP-4361's `Issued At`, `Expiration Time` and `Not Before` are written.

use std::{fmt, time::SystemTime};

/// An RFC 3339 `date-time`: the text as signed (kept, so a message prints back exactly) and the instant it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateTime {
    text: String,
    unix_nanos: i128,
}

impl DateTime {
    /// Parses `full-date "T" full-time` (RFC 3339 section 5.6; `T` and `Z` in either case, a leap second allowed);
    /// `None` when `s` is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let digits = |from: usize, n: usize| -> Option<i64> {
            let part = b.get(from..from + n)?;
            part.iter()
                .all(u8::is_ascii_digit)
                .then(|| part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
        };
        let at = |i: usize, c: u8| b.get(i).is_some_and(|&x| x == c);
        // date-fullyear "-" date-month "-" date-mday "T" time-hour ":" time-minute ":" time-second
        let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
        let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
        if !(at(4, b'-')
            && at(7, b'-')
            && (at(10, b'T') || at(10, b't'))
            && at(13, b':')
            && at(16, b':'))
        {
            return None;
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        // [time-secfrac]: "." 1*DIGIT, of which nanoseconds are kept.
        let mut i = 19;
        let mut nanos: i128 = 0;
        if at(i, b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let kept = &s[start..i.min(start + 9)];
            nanos = kept.parse::<i128>().ok()? * 10i128.pow(9 - kept.len() as u32);
        }
        // time-offset = "Z" / time-numoffset, time-numoffset = ("+" / "-") time-hour ":" time-minute
        let offset = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && at(i + 3, b':') => {
                let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
                if h > 23 || m > 59 {
                    return None;
                }
                let minutes = h * 60 + m;
                if sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
            - offset * 60;
        Some(Self { text: s.to_owned(), unix_nanos: i128::from(secs) * 1_000_000_000 + nanos })
    }

    /// The instant `secs` after the Unix epoch, written `YYYY-MM-DDTHH:MM:SSZ` (for clients building a message).
    pub fn from_unix_seconds(secs: i64) -> Self {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3_600,
            rem % 3_600 / 60,
            rem % 60
        );
        Self { text, unix_nanos: i128::from(secs) * 1_000_000_000 }
    }

    /// The text as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Nanoseconds since the Unix epoch (negative before it).
    pub const fn unix_nanos(&self) -> i128 {
        self.unix_nanos
    }

    /// Whole seconds since the Unix epoch, rounded down.
    pub fn unix_seconds(&self) -> i64 {
        self.unix_nanos.div_euclid(1_000_000_000) as i64
    }

    /// Whether this instant is at or before `now`.
    pub fn is_reached(&self, now: SystemTime) -> bool {
        self.unix_nanos <= nanos_of(now)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Nanoseconds since the Unix epoch of `t`.
pub(crate) fn nanos_of(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn unix(s: &str) -> i64 {
        DateTime::parse(s).unwrap_or_else(|| panic!("{s} should parse")).unix_seconds()
    }

    #[test]
    fn known_instants() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix("2021-09-30T16:25:24Z"), 1_633_019_124);
        assert_eq!(unix("2021-09-30T18:25:24+02:00"), 1_633_019_124);
        assert_eq!(unix("2021-09-30t16:25:24z"), 1_633_019_124);
        assert_eq!(unix("2023-02-01T00:00:00.000Z"), 1_675_209_600);
        assert_eq!(unix("2000-02-29T00:00:00Z"), 951_782_400);
        assert_eq!(unix("1969-12-31T23:59:59.5Z"), -1);
        assert_eq!(
            DateTime::parse("2021-09-30T16:25:24.123456789123Z").unwrap().unix_nanos()
                % 1_000_000_000,
            123_456_789
        );
        // A leap second is the next minute's first.
        assert_eq!(unix("2016-12-31T23:59:60Z"), unix("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn refuses_what_rfc_3339_does_not_allow() {
        for bad in [
            "",
            "2021-09-30",
            "2021-09-30 16:25:24Z",
            "2021-09-30T16:25:24",
            "2021-09-30T16:25Z",
            "2021-9-30T16:25:24Z",
            "2021-13-01T00:00:00Z",
            "2021-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2021-04-31T00:00:00Z",
            "2021-09-30T24:00:00Z",
            "2021-09-30T16:60:00Z",
            "2021-09-30T16:25:61Z",
            "2021-09-30T16:25:24.Z",
            "2021-09-30T16:25:24+0200",
            "2021-09-30T16:25:24+24:00",
            "2021-09-30T16:25:24Z ",
            "+2021-09-30T16:25:24Z",
        ] {
            assert!(DateTime::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn unix_seconds_are_written_and_read_back() {
        for secs in [0, 1_633_019_124, 951_782_400, 4_102_444_799, 253_402_300_799] {
            let t = DateTime::from_unix_seconds(secs);
            assert_eq!(DateTime::parse(t.as_str()), Some(t.clone()), "{t}");
            assert_eq!(t.unix_seconds(), secs);
        }
        assert_eq!(DateTime::from_unix_seconds(1_633_019_124).as_str(), "2021-09-30T16:25:24Z");
    }

    #[test]
    fn reached_compares_with_the_clock() {
        let t = DateTime::parse("2021-09-30T16:25:24.5Z").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_633_019_124_500);
        assert!(t.is_reached(at));
        assert!(!t.is_reached(at - Duration::from_nanos(1)));
        assert_eq!(t.to_string(), "2021-09-30T16:25:24.5Z");
    }
}
