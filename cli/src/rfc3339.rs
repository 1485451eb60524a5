//! RFC 3339 timestamps: a strict parser for `--at` and a formatter for
//! everything the command prints.
//!
//! Written here rather than taken from `chrono` or `time`: the command needs
//! exactly one grammar (RFC 3339 §5.6) and UTC output, which is forty lines of
//! calendar arithmetic, not a dependency with its own time-zone database.

use std::fmt;
use std::time::Duration;

use rustls_pki_types::UnixTime;

/// Why a `--at` value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TimeError {
    /// The text does not follow `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
    #[error(
        "expected an RFC 3339 timestamp such as 2025-01-31T12:00:00Z or \
         2025-01-31T13:00:00+01:00 ({reason})"
    )]
    Syntax {
        /// What part was wrong.
        reason: &'static str,
    },
    /// A field is out of its range (month 13, 31 April, hour 24, ...).
    #[error("{field} is out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
    },
    /// Second 60: a leap second has no Unix time.
    #[error("leap seconds (second 60) have no Unix time")]
    LeapSecond,
    /// The instant is before 1970-01-01T00:00:00Z, which certificate and
    /// token verification cannot take.
    #[error("the instant is before the Unix epoch (1970-01-01T00:00:00Z)")]
    BeforeEpoch,
}

/// Parses an RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS`, an optional
/// fraction of a second (checked, then dropped: certificate and token times
/// have one-second resolution), and `Z` or a `±HH:MM` offset. `T` and `Z` may be lowercase, as
/// the RFC allows; nothing else is lenient (no space for `T`, no missing
/// seconds, no `+HHMM`).
pub(crate) fn parse(s: &str) -> Result<UnixTime, TimeError> {
    let syntax = |reason| TimeError::Syntax { reason };
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(syntax("too short"));
    }
    let year = digits(b, 0, 4).ok_or(syntax("year must be 4 digits"))?;
    expect(b, 4, b'-').ok_or(syntax("`-` expected after the year"))?;
    let month = digits(b, 5, 2).ok_or(syntax("month must be 2 digits"))?;
    expect(b, 7, b'-').ok_or(syntax("`-` expected after the month"))?;
    let day = digits(b, 8, 2).ok_or(syntax("day must be 2 digits"))?;
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return Err(syntax("`T` expected between date and time"));
    }
    let hour = digits(b, 11, 2).ok_or(syntax("hour must be 2 digits"))?;
    expect(b, 13, b':').ok_or(syntax("`:` expected after the hour"))?;
    let minute = digits(b, 14, 2).ok_or(syntax("minute must be 2 digits"))?;
    expect(b, 16, b':').ok_or(syntax("`:` expected after the minute"))?;
    let second = digits(b, 17, 2).ok_or(syntax("second must be 2 digits"))?;

    let mut pos = 19;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        if pos == start {
            return Err(syntax("digits expected after `.`"));
        }
    }
    let offset_secs: i64 = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() => {
            let oh = digits(b, pos + 1, 2).ok_or(syntax("offset hour must be 2 digits"))?;
            expect(b, pos + 3, b':').ok_or(syntax("`:` expected in the offset"))?;
            let om = digits(b, pos + 4, 2).ok_or(syntax("offset minute must be 2 digits"))?;
            if oh > 23 {
                return Err(TimeError::OutOfRange {
                    field: "offset hour",
                });
            }
            if om > 59 {
                return Err(TimeError::OutOfRange {
                    field: "offset minute",
                });
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(syntax("`Z` or a `±HH:MM` offset expected at the end")),
    };

    if !(1..=12).contains(&month) {
        return Err(TimeError::OutOfRange { field: "month" });
    }
    if day == 0 || day > days_in_month(i64::from(year), month) {
        return Err(TimeError::OutOfRange { field: "day" });
    }
    if hour > 23 {
        return Err(TimeError::OutOfRange { field: "hour" });
    }
    if minute > 59 {
        return Err(TimeError::OutOfRange { field: "minute" });
    }
    if second == 60 {
        return Err(TimeError::LeapSecond);
    }
    if second > 59 {
        return Err(TimeError::OutOfRange { field: "second" });
    }

    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    // The local time is `offset` ahead of UTC.
    let utc = local - offset_secs;
    let secs = u64::try_from(utc).map_err(|_| TimeError::BeforeEpoch)?;
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

/// Seconds since the Unix epoch, printed as RFC 3339 in UTC
/// (`2025-01-31T12:00:00Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp(pub(crate) i64);

impl Timestamp {
    pub(crate) fn from_unix_time(t: UnixTime) -> Self {
        Timestamp(i64::try_from(t.as_secs()).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `n` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, c: u8) -> Option<()> {
    (b.get(at) == Some(&c)).then_some(())
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Result<u64, TimeError> {
        parse(s).map(|t| t.as_secs())
    }

    #[test]
    fn accepts_the_rfc_3339_forms() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2025-01-31T12:00:00Z", 1_738_324_800),
            ("2025-01-31t12:00:00z", 1_738_324_800),
            ("2025-01-31T13:00:00+01:00", 1_738_324_800),
            ("2025-01-31T06:30:00-05:30", 1_738_324_800),
            ("2025-01-31T12:00:00.999999999999Z", 1_738_324_800),
            ("2024-02-29T00:00:00Z", 1_709_164_800),
            ("2000-02-29T23:59:59Z", 951_868_799),
            ("9999-12-31T23:59:59Z", 253_402_300_799),
        ];
        for (input, want) in cases {
            assert_eq!(secs(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        let cases = [
            "",
            "2025-01-31",
            "2025-01-31 12:00:00Z",
            "2025-01-31T12:00Z",
            "2025-01-31T12:00:00",
            "2025-01-31T12:00:00+0100",
            "2025-01-31T12:00:00+01",
            "2025-1-31T12:00:00Z",
            "2025-01-31T12:00:00.Z",
            "2025-01-31T12:00:00Zjunk",
            "+2025-01-31T12:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:60:00Z",
            "2025-01-01T00:00:61Z",
            "2025-01-01T00:00:00+24:00",
            "2025-01-01T00:00:00+00:60",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00+00:01",
        ];
        for input in cases {
            assert!(parse(input).is_err(), "{input} was accepted");
        }
        assert_eq!(parse("2016-12-31T23:59:60Z"), Err(TimeError::LeapSecond));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Err(TimeError::BeforeEpoch));
    }

    #[test]
    fn formats_utc_and_round_trips() {
        for s in [
            0_i64,
            1,
            86_399,
            86_400,
            951_868_799,
            1_738_324_800,
            253_402_300_799,
        ] {
            let text = Timestamp(s).to_string();
            assert_eq!(secs(&text), Ok(s as u64), "{text}");
        }
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59Z");
        assert_eq!(Timestamp(1_738_324_800).to_string(), "2025-01-31T12:00:00Z");
    }
}
