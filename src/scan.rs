//! A small zero-copy JSON scanner over one input line, shared by the Singer
//! message parser and the record decoder.
//!
//! The hot path (RECORD lines) is decoded straight from bytes into column
//! buffers, so we need a tokenizer that hands out slices instead of building a
//! `serde_json::Value` per record.

use std::fmt;

/// Why a line is not valid JSON, with the byte offset where it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Byte offset in the line (0-based).
    pub at: usize,
    /// What was wrong.
    pub what: &'static str,
}

impl std::error::Error for SyntaxError {}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JSON at byte {}: {}", self.at, self.what)
    }
}

/// Nesting deeper than this is rejected instead of overflowing the stack.
const MAX_DEPTH: usize = 256;

/// Cursor over the bytes of one JSON document.
pub struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    /// Starts at the beginning of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Scanner { b, i: 0 }
    }

    /// The whole input.
    pub fn input(&self) -> &'a [u8] {
        self.b
    }

    /// Current byte offset.
    pub fn pos(&self) -> usize {
        self.i
    }

    fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError { at: self.i, what }
    }

    /// Skips white space and returns the next byte without consuming it.
    #[inline]
    pub fn peek(&mut self) -> Result<u8, SyntaxError> {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\t' || c == b'\r' || c == b'\n' {
                self.i += 1;
            } else {
                return Ok(c);
            }
        }
        Err(self.err("unexpected end of input"))
    }

    /// Consumes `c` (after white space) or fails.
    #[inline]
    pub fn expect(&mut self, c: u8, what: &'static str) -> Result<(), SyntaxError> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// After the last value: only white space may follow.
    pub fn end(&mut self) -> Result<(), SyntaxError> {
        match self.peek() {
            Err(_) => Ok(()),
            Ok(_) => Err(self.err("unexpected data after the JSON value")),
        }
    }

    /// Starts an object: consumes `{`. Returns false if the next value is not an object.
    #[inline]
    pub fn begin_object(&mut self) -> Result<bool, SyntaxError> {
        if self.peek()? == b'{' {
            self.i += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Next key of an object: `Some(raw key, has_escapes)` or `None` at `}`.
    /// `first` is true for the first call after `{`.
    #[inline]
    pub fn next_key(&mut self, first: bool) -> Result<Option<(&'a [u8], bool)>, SyntaxError> {
        let c = self.peek()?;
        if c == b'}' {
            self.i += 1;
            return Ok(None);
        }
        if !first {
            if c != b',' {
                return Err(self.err("expected ',' or '}' in object"));
            }
            self.i += 1;
            self.peek()?;
        }
        if self.b[self.i] != b'"' {
            return Err(self.err("expected a string key in object"));
        }
        let key = self.raw_string()?;
        self.expect(b':', "expected ':' after object key")?;
        Ok(Some(key))
    }

    /// If the next key of an object is exactly `quoted` (a key with its
    /// quotes, no escapes), consumes it and its `:` and returns true;
    /// otherwise leaves the cursor where it was.
    #[inline(always)]
    pub fn try_key(&mut self, first: bool, quoted: &[u8]) -> Result<bool, SyntaxError> {
        let save = self.i;
        let mut c = self.peek()?;
        if !first {
            if c != b',' {
                return Ok(false);
            }
            self.i += 1;
            c = self.peek()?;
        }
        if c == b'"' && starts_with(&self.b[self.i..], quoted) {
            self.i += quoted.len();
            if self.peek()? == b':' {
                self.i += 1;
                return Ok(true);
            }
        }
        self.i = save;
        Ok(false)
    }

    /// Starts an array: consumes `[`.
    #[inline]
    pub fn begin_array(&mut self) -> Result<bool, SyntaxError> {
        if self.peek()? == b'[' {
            self.i += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// True if another array item follows, false at `]`.
    #[inline]
    pub fn next_item(&mut self, first: bool) -> Result<bool, SyntaxError> {
        let c = self.peek()?;
        if c == b']' {
            self.i += 1;
            return Ok(false);
        }
        if !first {
            if c != b',' {
                return Err(self.err("expected ',' or ']' in array"));
            }
            self.i += 1;
            self.peek()?;
        }
        Ok(true)
    }

    /// A string at the cursor: the raw bytes between the quotes and whether
    /// they contain escapes. Control characters are rejected.
    #[inline]
    pub fn raw_string(&mut self) -> Result<(&'a [u8], bool), SyntaxError> {
        if self.peek()? != b'"' {
            return Err(self.err("expected a string"));
        }
        let start = self.i + 1;
        let b = self.b;
        let mut escapes = false;
        let mut i = start;
        loop {
            i = next_special(b, i);
            match b.get(i) {
                None => {
                    self.i = b.len();
                    return Err(self.err("unterminated string"));
                }
                Some(b'"') => {
                    self.i = i + 1;
                    return Ok((&b[start..i], escapes));
                }
                Some(b'\\') => {
                    // skip the escaped byte; \u sequences are checked when unescaped
                    escapes = true;
                    match b.get(i + 1) {
                        None => {
                            self.i = b.len();
                            return Err(self.err("unterminated string"));
                        }
                        Some(&c) if c < 0x20 => {
                            return Err(SyntaxError {
                                at: start,
                                what: "control character in string (must be escaped)",
                            });
                        }
                        Some(_) => i += 2,
                    }
                }
                Some(&c) if c < 0x20 => {
                    return Err(SyntaxError {
                        at: start,
                        what: "control character in string (must be escaped)",
                    });
                }
                Some(_) => i += 1,
            }
        }
    }

    /// A number at the cursor, as its raw text (grammar checked).
    #[inline]
    pub fn number(&mut self) -> Result<&'a [u8], SyntaxError> {
        self.peek()?;
        let b = self.b;
        let start = self.i;
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(|c| c.is_ascii_digit()) {
                *i += 1;
            }
            *i - s
        };
        let int_start = i;
        let n = digits(&mut i);
        if n == 0 || (n > 1 && b[int_start] == b'0') {
            self.i = i;
            return Err(self.err("invalid number"));
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                self.i = i;
                return Err(self.err("invalid number"));
            }
        }
        self.i = i;
        Ok(&b[start..i])
    }

    /// Consumes `true`, `false` or `null`.
    #[inline]
    pub fn literal(&mut self) -> Result<Literal, SyntaxError> {
        let rest = &self.b[self.i..];
        let (lit, n) = if rest.starts_with(b"true") {
            (Literal::True, 4)
        } else if rest.starts_with(b"false") {
            (Literal::False, 5)
        } else if rest.starts_with(b"null") {
            (Literal::Null, 4)
        } else {
            return Err(self.err("expected a JSON value"));
        };
        self.i += n;
        Ok(lit)
    }

    /// Skips one value of any kind and returns its raw text.
    pub fn skip_value(&mut self) -> Result<&'a [u8], SyntaxError> {
        self.peek()?;
        let start = self.i;
        self.skip_inner(0)?;
        Ok(&self.b[start..self.i])
    }

    fn skip_inner(&mut self, depth: usize) -> Result<(), SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek()? {
            b'"' => self.raw_string().map(|_| ()),
            b'{' => {
                self.i += 1;
                let mut first = true;
                while self.next_key(first)?.is_some() {
                    first = false;
                    self.skip_inner(depth + 1)?;
                }
                Ok(())
            }
            b'[' => {
                self.i += 1;
                let mut first = true;
                while self.next_item(first)? {
                    first = false;
                    self.skip_inner(depth + 1)?;
                }
                Ok(())
            }
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => self.literal().map(|_| ()),
        }
    }
}

/// The three JSON literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literal {
    /// `true`
    True,
    /// `false`
    False,
    /// `null`
    Null,
}

/// Appends the unescaped form of a raw JSON string body to `out`.
/// `raw` comes from [`Scanner::raw_string`], so it is valid UTF-8 when the line is.
pub fn unescape_into(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let mut i = 0;
    while i < raw.len() {
        match memchr::memchr(b'\\', &raw[i..]) {
            None => {
                out.extend_from_slice(&raw[i..]);
                return Ok(());
            }
            Some(off) => {
                out.extend_from_slice(&raw[i..i + off]);
                i += off + 1;
                let c = *raw.get(i).ok_or("unterminated escape")?;
                i += 1;
                let simple = match c {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        let hi = hex4(raw, i)?;
                        i += 4;
                        let cp = if (0xD800..0xDC00).contains(&hi) {
                            if raw.get(i) != Some(&b'\\') || raw.get(i + 1) != Some(&b'u') {
                                return Err("unpaired surrogate in \\u escape");
                            }
                            let lo = hex4(raw, i + 2)?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return Err("unpaired surrogate in \\u escape");
                            }
                            i += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else if (0xDC00..0xE000).contains(&hi) {
                            return Err("unpaired surrogate in \\u escape");
                        } else {
                            hi
                        };
                        let ch = char::from_u32(cp).ok_or("invalid \\u escape")?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        continue;
                    }
                    _ => return Err("invalid escape sequence"),
                };
                out.push(simple);
            }
        }
    }
    Ok(())
}

fn hex4(raw: &[u8], i: usize) -> Result<u32, &'static str> {
    let h = raw.get(i..i + 4).ok_or("truncated \\u escape")?;
    let mut v = 0u32;
    for &c in h {
        let d = (c as char).to_digit(16).ok_or("invalid \\u escape")?;
        v = v * 16 + d;
    }
    Ok(v)
}

/// A raw string body as text, unescaping only when needed.
pub fn string_value(raw: &[u8], escapes: bool) -> Result<std::borrow::Cow<'_, str>, &'static str> {
    if !escapes {
        return std::str::from_utf8(raw)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| "invalid UTF-8 in string");
    }
    let mut out = Vec::with_capacity(raw.len());
    unescape_into(raw, &mut out)?;
    String::from_utf8(out)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| "invalid UTF-8 in string")
}

/// Skips ordinary string bytes from `i`: stops at the first `"`, `\\` or
/// control character, or where fewer than 8 bytes are left (the caller goes
/// on byte by byte). One pass finds all three; 16 bytes at a time with SSE2
/// (every x86_64 has it), else 8 with word arithmetic.
#[inline]
fn next_special(b: &[u8], mut i: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the unaligned load
            // reads b[i..i + 16], inside `b`
            let bits = unsafe {
                let v = _mm_loadu_si128(b.as_ptr().add(i).cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                // v <= 0x1f (unsigned) exactly when min(v, 0x1f) == v
                let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
            };
            if bits != 0 {
                return i + bits.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    while let Some(w) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let m = specials(u64::from_le_bytes(*w));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (little-endian) that is `"`, `\\` or a
/// control character below 0x20. Exact up to the first such byte; bytes
/// after it may be flagged falsely (borrows), which the caller never looks at.
#[inline]
fn specials(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let quote = zero(x ^ (ONES * u64::from(b'"')));
    let backslash = zero(x ^ (ONES * u64::from(b'\\')));
    let control = x.wrapping_sub(ONES * 0x20) & !x;
    (quote | backslash | control) & HIGH_BITS
}

/// `hay.starts_with(pat)` without a call to `memcmp` for short patterns:
/// object keys are compared once per field of every record.
#[inline(always)]
fn starts_with(hay: &[u8], pat: &[u8]) -> bool {
    let n = pat.len();
    if hay.len() < n {
        return false;
    }
    let word = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match n {
        0..8 => hay.iter().zip(pat).all(|(a, b)| a == b),
        // two overlapping words cover 8..=16 bytes
        8..=16 => word(hay, 0) == word(pat, 0) && word(hay, n - 8) == word(pat, n - 8),
        _ => hay[..n] == *pat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_with_matches_the_slice_method_at_every_length() {
        let hay = b"\"a_rather_long_key_name_of_33_bytes\": 1";
        for n in 0..=hay.len() {
            let pat = &hay[..n];
            assert!(starts_with(hay, pat), "{n}");
            for i in 0..n {
                let mut other = pat.to_vec();
                other[i] ^= 1;
                assert!(!starts_with(hay, &other), "{n} {i}");
            }
        }
        assert!(!starts_with(b"ab", b"abc"));
    }

    #[test]
    fn strings_end_at_the_first_quote_at_every_position() {
        // the special byte at every offset of the 16- and 8-byte scans, after
        // ordinary ASCII and multi-byte UTF-8 alike
        for pad in ["", "é", "a"] {
            for n in 0..70 {
                let body: String = pad.repeat(n % 3) + &"x".repeat(n);
                let json = format!("\"{body}\" ,");
                let mut sc = Scanner::new(json.as_bytes());
                assert_eq!(sc.raw_string().unwrap(), (body.as_bytes(), false), "{n}");
                let json = format!("\"{body}\\\"{body}\\\\\"");
                let mut sc = Scanner::new(json.as_bytes());
                let (raw, escapes) = sc.raw_string().unwrap();
                assert_eq!(raw.len(), 2 * body.len() + 4);
                assert!(escapes);
                for ctl in ["\u{1}", "\\\t"] {
                    let json = format!("\"{body}{ctl}{body}\"");
                    let err = Scanner::new(json.as_bytes()).raw_string().unwrap_err();
                    assert!(err.what.contains("control character"), "{n} {ctl:?}");
                }
                let json = format!("\"{body}");
                let err = Scanner::new(json.as_bytes()).raw_string().unwrap_err();
                assert!(err.what.contains("unterminated"), "{n}");
            }
        }
        let mut sc = Scanner::new(br#""ends with a backslash\"#);
        assert!(sc.raw_string().is_err());
    }

    #[test]
    fn walks_an_object() {
        let mut s = Scanner::new(br#" {"a": 1, "b\"": [true, null, "x"], "c": -1.5e3} "#);
        assert!(s.begin_object().unwrap());
        let (k, esc) = s.next_key(true).unwrap().unwrap();
        assert_eq!((k, esc), (&b"a"[..], false));
        assert_eq!(s.number().unwrap(), b"1");
        let (k, esc) = s.next_key(false).unwrap().unwrap();
        assert_eq!(string_value(k, esc).unwrap(), "b\"");
        assert_eq!(s.skip_value().unwrap(), br#"[true, null, "x"]"#);
        s.next_key(false).unwrap().unwrap();
        assert_eq!(s.number().unwrap(), b"-1.5e3");
        assert!(s.next_key(false).unwrap().is_none());
        s.end().unwrap();
    }

    #[test]
    fn rejects_bad_json() {
        for bad in [
            &br#"{"a": 01}"#[..],
            br#"{"a": "x
"}"#,
            br#"{"a" 1}"#,
            br#"{"a": tru}"#,
            br#"{"a": "unterminated}"#,
            br#"{"a": 1,}"#,
        ] {
            let mut s = Scanner::new(bad);
            assert!(s.skip_value().and_then(|_| s.end()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unescapes_unicode_and_surrogates() {
        let mut out = Vec::new();
        unescape_into(br#"caf\u00e9 \ud83d\ude80 \n\t\\"#, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "café 🚀 \n\t\\");
        assert!(unescape_into(br#"\ud83d alone"#, &mut Vec::new()).is_err());
        assert!(unescape_into(br#"\x"#, &mut Vec::new()).is_err());
    }
}
