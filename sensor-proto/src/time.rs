//! Packet time. The core never reads a clock: every timestamp comes from the
//! capture (packet time offline, arrival time live).

use std::fmt;

/// Nanoseconds since the Unix epoch, as carried by the capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and nanoseconds.
    pub const fn from_parts(secs: u64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(nanos as u64),
        )
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub const fn add_nanos(self, d: u64) -> Self {
        Timestamp(self.0.saturating_add(d))
    }

    /// `self - earlier` in nanoseconds, zero if `earlier` is later.
    pub const fn nanos_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Seconds as nanoseconds, for limits and timeouts.
pub const fn secs(s: u64) -> u64 {
    s * 1_000_000_000
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with nanosecond precision, e.g. `2023-11-14T22:13:20.000000001Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

impl Timestamp {
    /// Appends the `Display` form to `out`, digit by digit (the record
    /// writer's hot path: `write!` costs more than the conversion).
    pub(crate) fn write_rfc3339(self, out: &mut Vec<u8>) {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let Ok(y @ 0..=9999) = u64::try_from(y) else {
            // Not reachable from a u64 of nanoseconds (year <= 2554).
            use std::io::Write as _;
            let _ = write!(out, "{self}");
            return;
        };
        let mut text = *b"0000-00-00T00:00:00.000000000Z";
        let fields: [(usize, usize, u64); 7] = [
            (0, 4, y),
            (5, 7, m.into()),
            (8, 10, d.into()),
            (11, 13, rem / 3600),
            (14, 16, (rem / 60) % 60),
            (17, 19, rem % 60),
            (20, 29, nanos),
        ];
        for (from, to, mut v) in fields {
            for c in text[from..to].iter_mut().rev() {
                *c = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        out.extend_from_slice(&text);
    }

    /// Parses the RFC 3339 UTC form written by `Display`
    /// (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`).
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
            return None;
        }
        if b[16] != b':' || *b.last()? != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u64> { s.get(r)?.parse().ok() };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let frac = &s[19..s.len() - 1];
        let nanos = match frac.strip_prefix('.') {
            None if frac.is_empty() => 0,
            Some(digits) if !digits.is_empty() && digits.len() <= 9 => {
                let v: u64 = digits.parse().ok()?;
                v * 10u64.pow(9 - digits.len() as u32)
            }
            _ => return None,
        };
        let days = days_from_civil(y as i64, mo as u32, d as u32);
        let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + sec;
        Some(Timestamp::from_parts(secs, nanos as u32))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 UTC timestamp"))
    }
}

/// Proleptic Gregorian date to days since 1970-01-01 (Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_rfc3339_is_display() {
        for ns in [
            0,
            1,
            999_999_999,
            1_700_000_000_123_456_789,
            951_782_400_000_000_000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            Timestamp(ns).write_rfc3339(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), Timestamp(ns).to_string());
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            Timestamp::from_parts(1_700_000_000, 1).to_string(),
            "2023-11-14T22:13:20.000000001Z"
        );
        assert_eq!(
            Timestamp::from_parts(951_782_400, 0).to_string(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [
            0,
            1,
            951_782_400_123_456_789,
            1_700_000_000_000_000_001,
            4_102_444_800_000_000_000,
        ] {
            let ts = Timestamp(t);
            assert_eq!(Timestamp::parse_rfc3339(&ts.to_string()), Some(ts));
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(Timestamp::from_parts(1_700_000_000, 0))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(Timestamp::from_parts(1_700_000_000, 500_000_000))
        );
        for bad in [
            "",
            "2023-11-14 22:13:20Z",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20.Z",
            "x",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }
}
