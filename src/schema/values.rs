//! Parsers for the string and number forms of typed columns: RFC 3339
//! timestamps (any offset, normalised to UTC), dates, times and exact decimals.

use arrow_buffer::i256;

/// Microseconds since the epoch (UTC) of an RFC 3339 date-time.
///
/// Accepts `T`/`t`/space as separator, 0–9 fraction digits (truncated to µs),
/// `Z`, `+HH:MM`, `+HHMM`, `+HH`, or no offset (taken as UTC); a bare date
/// is midnight UTC.
pub fn parse_timestamp_us(s: &[u8]) -> Option<i64> {
    parse_timestamp_us_with(s, &mut DateCache::default())
}

/// The last date part a [`parse_timestamp_us_with`] parsed: timestamps of
/// consecutive records mostly fall on the same day.
#[derive(Debug, Default, Clone)]
pub struct DateCache {
    /// `YYYY-MM-DD` and its day number.
    last: Option<([u8; 10], i64)>,
}

/// [`parse_timestamp_us`], reusing the date part when it is the cached one.
pub fn parse_timestamp_us_with(s: &[u8], cache: &mut DateCache) -> Option<i64> {
    let date = s.get(..10)?;
    let days = match cache.last {
        Some((d, days)) if d == date => days,
        _ => {
            let days = parse_date_days(date)? as i64;
            cache.last = Some((date.try_into().ok()?, days));
            days
        }
    };
    if s.len() == 10 {
        return Some(days * 86_400_000_000);
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let (tod_us, rest) = parse_tod(&s[11..])?;
    let offset_s = parse_offset(rest)?;
    Some(days * 86_400_000_000 + tod_us - offset_s * 1_000_000)
}

/// Days since the epoch of `YYYY-MM-DD` (a date-time whose time part is
/// given is accepted too, and its date taken).
pub fn parse_date_days(s: &[u8]) -> Option<i32> {
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    if s.len() > 10 {
        // "2020-01-01T00:00:00Z" for a date column: take the UTC date
        let us = parse_timestamp_us(s)?;
        return Some(us.div_euclid(86_400_000_000) as i32);
    }
    let y = digits(&s[0..4])? as i64;
    let m = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) as i32)
}

/// Microseconds since midnight of `HH:MM[:SS[.ffffff]]` (an offset, if any, must be zero).
pub fn parse_time_us(s: &[u8]) -> Option<i64> {
    let (us, rest) = parse_tod(s)?;
    if parse_offset(rest)? != 0 {
        return None;
    }
    Some(us)
}

fn parse_tod(s: &[u8]) -> Option<(i64, &[u8])> {
    if s.len() < 5 || s[2] != b':' {
        return None;
    }
    let h = digits(&s[0..2])? as i64;
    let mi = digits(&s[3..5])? as i64;
    let mut rest = &s[5..];
    let mut sec = 0i64;
    if rest.first() == Some(&b':') {
        sec = digits(rest.get(1..3)?)? as i64;
        rest = &rest[3..];
    }
    let mut frac_us = 0i64;
    if rest.first() == Some(&b'.') || rest.first() == Some(&b',') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, &c) in rest[1..=n].iter().enumerate() {
            if i < 6 {
                frac_us = frac_us * 10 + (c - b'0') as i64;
            }
        }
        for _ in n..6 {
            frac_us *= 10;
        }
        rest = &rest[1 + n..];
    }
    // 24:00:00 is end of day; 60 seconds is a leap second (clamped)
    if h > 24 || mi > 59 || sec > 60 || (h == 24 && (mi, sec, frac_us) != (0, 0, 0)) {
        return None;
    }
    let sec_total = h * 3600 + mi * 60 + sec.min(59);
    let frac = if sec == 60 { 999_999 } else { frac_us };
    Some((sec_total * 1_000_000 + frac, rest))
}

/// Offset in seconds east of UTC.
fn parse_offset(s: &[u8]) -> Option<i64> {
    match s {
        [] | [b'Z'] | [b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [a, b] => (digits(&[*a, *b])?, 0),
                [a, b, b':', c, d] | [a, b, c, d] => (digits(&[*a, *b])?, digits(&[*c, *d])?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let off = (h * 3600 + m * 60) as i64;
            Some(if *sign == b'-' { -off } else { off })
        }
        _ => None,
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Why a number does not fit a decimal column.
#[derive(Debug, PartialEq, Eq)]
pub enum DecimalError {
    /// More fractional digits than the scale (not a multiple of 10^-scale).
    Scale,
    /// Too many digits for the precision.
    Precision,
}

/// Parses a JSON number exactly into an integer scaled by 10^scale.
pub fn parse_decimal(text: &[u8], precision: u8, scale: i8) -> Result<i256, DecimalError> {
    let (neg, t) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let (mant, exp) = match t.iter().position(|c| *c == b'e' || *c == b'E') {
        Some(p) => {
            let e = std::str::from_utf8(&t[p + 1..])
                .ok()
                .and_then(|e| e.parse::<i32>().ok())
                .ok_or(DecimalError::Precision)?;
            (&t[..p], e)
        }
        None => (t, 0),
    };
    let (int, frac) = match mant.iter().position(|c| *c == b'.') {
        Some(p) => (&mant[..p], &mant[p + 1..]),
        None => (mant, &b""[..]),
    };
    // value = digits(int ++ frac) * 10^(exp - len(frac)); we want value * 10^scale
    let shift = exp as i64 - frac.len() as i64 + scale as i64;
    let mut all = int
        .iter()
        .chain(frac.iter())
        .copied()
        .skip_while(|c| *c == b'0')
        .collect::<Vec<u8>>();
    if shift < 0 {
        let drop = (-shift) as usize;
        let cut = all.len().saturating_sub(drop);
        if all[cut..].iter().any(|c| *c != b'0') {
            return Err(DecimalError::Scale);
        }
        all.truncate(cut);
    } else {
        if all.len() + shift as usize > precision as usize && !all.is_empty() {
            return Err(DecimalError::Precision);
        }
        all.extend(std::iter::repeat_n(
            b'0',
            if all.is_empty() { 0 } else { shift as usize },
        ));
    }
    if all.len() > precision as usize {
        return Err(DecimalError::Precision);
    }
    let ten = i256::from_i128(10);
    let mut v = i256::ZERO;
    for c in all {
        v = v
            .checked_mul(ten)
            .and_then(|v| v.checked_add(i256::from_i128((c - b'0') as i128)))
            .ok_or(DecimalError::Precision)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_normalise_offsets() {
        let z = parse_timestamp_us(b"2020-01-01T00:00:00Z").unwrap();
        assert_eq!(z, 1_577_836_800_000_000);
        assert_eq!(parse_timestamp_us(b"2020-01-01T02:00:00+02:00"), Some(z));
        assert_eq!(parse_timestamp_us(b"2019-12-31T19:00:00-0500"), Some(z));
        assert_eq!(parse_timestamp_us(b"2020-01-01 00:00:00"), Some(z));
        assert_eq!(parse_timestamp_us(b"2020-01-01"), Some(z));
        assert_eq!(
            parse_timestamp_us(b"2020-01-01T00:00:00.1234567Z"),
            Some(z + 123_456)
        );
        assert_eq!(
            parse_timestamp_us(b"1969-12-31T23:59:59.5Z"),
            Some(-500_000)
        );
        for bad in [
            &b"not a date"[..],
            b"2020-13-01T00:00:00Z",
            b"2020-02-30T00:00:00Z",
            b"2020-01-01T25:00:00Z",
            b"2020-01-01T00:00:00+2",
        ] {
            assert_eq!(
                parse_timestamp_us(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_cached_day_gives_the_same_instants() {
        let mut cache = DateCache::default();
        for t in [
            "\0\0\0\0\0\0\0\0\0\0T00:00:00Z",
            "2020-01-01T00:00:00Z",
            "2020-01-01T23:59:59.999999Z",
            "2020-01-01T01:00:00+02:00",
            "2020-01-01",
            "2020-01-01Tnope",
            "2020-01-02T00:00:00-01:00",
            "2020-02-30T00:00:00Z",
            "2020-02-30T00:00:00Z",
            "2020-01-02 12:00:00",
            "0000-00-00T00:00:00Z",
        ] {
            assert_eq!(
                parse_timestamp_us_with(t.as_bytes(), &mut cache),
                parse_timestamp_us(t.as_bytes()),
                "{t}"
            );
        }
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date_days(b"1970-01-02"), Some(1));
        assert_eq!(parse_date_days(b"2000-02-29"), Some(11_016));
        assert_eq!(parse_date_days(b"1900-02-29"), None);
        assert_eq!(parse_date_days(b"2020-01-01T00:00:00+00:00"), Some(18_262));
        assert_eq!(parse_time_us(b"01:02:03.5"), Some(3_723_500_000));
        assert_eq!(parse_time_us(b"01:02"), Some(3_720_000_000));
        assert_eq!(parse_time_us(b"1:02"), None);
    }

    #[test]
    fn decimals_are_exact() {
        let d = |t: &str, p, s| parse_decimal(t.as_bytes(), p, s).map(|v| v.to_string());
        assert_eq!(d("12.34", 10, 2), Ok("1234".into()));
        assert_eq!(d("-0.5", 10, 2), Ok("-50".into()));
        assert_eq!(d("1.5e2", 10, 2), Ok("15000".into()));
        assert_eq!(d("12.340", 10, 2), Ok("1234".into()));
        assert_eq!(d("12.345", 10, 2), Err(DecimalError::Scale));
        assert_eq!(d("123456789.1", 10, 2), Err(DecimalError::Precision));
        assert_eq!(d("0", 10, 2), Ok("0".into()));
        assert_eq!(
            d("12345678901234567890.123456789012345678", 76, 38),
            Ok("1234567890123456789012345678901234567800000000000000000000".into())
        );
    }
}
