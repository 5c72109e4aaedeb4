//! PostgreSQL's binary `numeric` → an exact Decimal128 value, or an error
//! naming the value: never a rounded or float value.
//!
//! The wire format: `ndigits`, `weight`, `sign`, `dscale` (each 16 bits),
//! then `ndigits` base-10000 digits; the value is
//! `Σ digit[i] · 10000^(weight − i)`.

use super::decode::ValueError;

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;

/// 10^0 … 10^4.
const POW10: [u64; 5] = [1, 10, 100, 1000, 10000];

/// 10^0 … 10^38 (the widest Decimal128).
const POW10_WIDE: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The unscaled value of `v` at `scale`, checked against `precision`.
pub fn to_i128(v: &[u8], precision: u8, scale: i8) -> Result<i128, ValueError> {
    let short = || ValueError::Length {
        ty: "numeric",
        len: v.len(),
        expected: "8 + 2 per digit",
    };
    let word = |i: usize| -> Result<u16, ValueError> {
        v.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(short)
    };
    let ndigits = word(0)? as usize;
    let weight = word(1)? as i16 as i64;
    let sign = word(2)?;
    let not_exact = || ValueError::Numeric {
        value: to_text(v),
        precision,
        scale,
    };
    match sign {
        POS | NEG => {}
        NAN | PINF | NINF => return Err(not_exact()),
        _ => return Err(short()),
    }
    if v.len() != 8 + 2 * ndigits {
        return Err(short());
    }
    let scale = i64::from(scale);
    // most values fit 64 bits: accumulate there, and move to 128 only when
    // the next digit would not fit (i128 multiplies and divides cost several
    // times more; they showed in profiles of wide numeric tables)
    let mut small: u64 = 0;
    let mut acc: Option<i128> = None;
    // fraction digits accumulated so far
    let mut have: i64 = 0;
    for i in 0..ndigits {
        let d = u32::from(word(4 + i)?);
        // fraction digits once this base-10000 digit is in
        let after = 4 * (i as i64 - weight);
        let cut = (after - scale).clamp(0, 4) as usize;
        if cut == 4 {
            // wholly below the scale: only zeros may be dropped
            if d != 0 {
                return Err(not_exact());
            }
            continue;
        }
        let div = POW10[cut] as u32;
        if d % div != 0 {
            return Err(not_exact());
        }
        let (mul, add) = (POW10[4 - cut], u64::from(d / div));
        match acc {
            None => match small.checked_mul(mul).and_then(|a| a.checked_add(add)) {
                Some(n) => small = n,
                None => {
                    let wide = i128::from(small)
                        .checked_mul(i128::from(mul))
                        .and_then(|a| a.checked_add(i128::from(add)))
                        .ok_or_else(not_exact)?;
                    acc = Some(wide);
                }
            },
            Some(a) => {
                let wide = a
                    .checked_mul(i128::from(mul))
                    .and_then(|a| a.checked_add(i128::from(add)))
                    .ok_or_else(not_exact)?;
                acc = Some(wide);
            }
        }
        have = after - cut as i64;
    }
    let mut acc = acc.unwrap_or(i128::from(small));
    if ndigits == 0 {
        have = scale;
    }
    // trailing zeros the wire format leaves out (integer part), and the
    // fraction digits up to the scale
    let up = scale - have;
    if up > 0 {
        acc = usize::try_from(up)
            .ok()
            .and_then(|u| POW10_WIDE.get(u))
            .and_then(|m| acc.checked_mul(*m))
            .ok_or_else(not_exact)?;
    }
    let limit = POW10_WIDE
        .get(usize::from(precision))
        .copied()
        .unwrap_or(i128::MAX);
    if acc >= limit {
        return Err(not_exact());
    }
    Ok(if sign == NEG { -acc } else { acc })
}

/// The value as PostgreSQL would print it (for messages).
pub fn to_text(v: &[u8]) -> String {
    let word = |i: usize| {
        v.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (Some(n), Some(w), Some(sign), Some(dscale)) = (word(0), word(1), word(2), word(3)) else {
        return "(malformed numeric)".into();
    };
    match sign {
        NAN => return "NaN".into(),
        PINF => return "Infinity".into(),
        NINF => return "-Infinity".into(),
        _ => {}
    }
    let weight = w as i16 as i64;
    let digits: Vec<u16> = (0..n as usize).filter_map(|i| word(4 + i)).collect();
    let group = |i: i64| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == NEG {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        for i in 0..=weight {
            let g = group(i);
            if i == 0 {
                out.push_str(&g.to_string());
            } else {
                out.push_str(&format!("{g:04}"));
            }
        }
    }
    if dscale > 0 {
        out.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale as usize {
            frac.push_str(&format!("{:04}", group(i)));
            i += 1;
        }
        frac.truncate(dscale as usize);
        out.push_str(&frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary form PostgreSQL sends for a decimal string.
    fn wire(text: &str) -> Vec<u8> {
        let (neg, t) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        let int = int.trim_start_matches('0');
        // pad the integer part on the left and the fraction on the right to groups of 4
        let ipad = (4 - int.len() % 4) % 4;
        let fpad = (4 - frac.len() % 4) % 4;
        let all = format!("{}{int}{frac}{}", "0".repeat(ipad), "0".repeat(fpad));
        let mut groups: Vec<u16> = all
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap().parse().unwrap())
            .collect();
        let mut weight = ((int.len() + ipad) / 4) as i16 - 1;
        while groups.first() == Some(&0) {
            groups.remove(0);
            weight -= 1;
        }
        while groups.last() == Some(&0) {
            groups.pop();
        }
        let mut v = Vec::new();
        v.extend((groups.len() as u16).to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend((if neg { NEG } else { POS }).to_be_bytes());
        v.extend((frac.len() as u16).to_be_bytes());
        for g in groups {
            v.extend(g.to_be_bytes());
        }
        v
    }

    #[test]
    fn exact_values_at_the_column_scale() {
        assert_eq!(to_i128(&wire("123.45"), 10, 2), Ok(12345));
        assert_eq!(to_i128(&wire("-0.5"), 10, 2), Ok(-50));
        assert_eq!(to_i128(&wire("10000"), 10, 2), Ok(1_000_000));
        assert_eq!(to_i128(&wire("0"), 10, 2), Ok(0));
        assert_eq!(to_i128(&wire("0.0001"), 10, 4), Ok(1));
        assert_eq!(to_i128(&wire("7"), 5, 0), Ok(7));
        // 38 digits with a fraction: the padding of the last group must not overflow
        let big = "1234567890123456789012345678.1234567890";
        assert_eq!(
            to_i128(&wire(big), 38, 10),
            Ok(12345678901234567890123456781234567890)
        );
        let max = "9".repeat(38);
        assert_eq!(to_i128(&wire(&max), 38, 0), Ok(max.parse().unwrap()));
    }

    #[test]
    fn values_that_do_not_fit_are_errors_naming_them() {
        let e = to_i128(&wire("1.005"), 10, 2).unwrap_err();
        assert!(e.to_string().contains("1.005"), "{e}");
        assert!(to_i128(&wire("123456"), 5, 2).is_err());
        assert!(to_i128(&wire(&"9".repeat(39)), 38, 0).is_err());
        let mut nan = vec![0, 0, 0, 0];
        nan.extend(NAN.to_be_bytes());
        nan.extend([0, 0]);
        let e = to_i128(&nan, 10, 2).unwrap_err();
        assert!(e.to_string().contains("NaN"), "{e}");
        assert!(to_i128(&[0, 1], 10, 2).is_err());
    }

    #[test]
    fn text_for_messages() {
        assert_eq!(to_text(&wire("-12.50")), "-12.50");
        assert_eq!(to_text(&wire("0.001")), "0.001");
        assert_eq!(to_text(&wire("100000000")), "100000000");
    }
}
