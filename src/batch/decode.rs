//! One record's JSON → values appended to column buffers, checked against the
//! schema on the way (no `serde_json::Value` per record).

use serde_json::Value;

use super::columns::Column;
use super::seen::Seen;
use crate::scan::{self, Literal, Scanner, SyntaxError};
use crate::schema::plan::{Bound, Constraints};
use crate::schema::values::{self, DecimalError};
use crate::schema::{FieldPlan, Kind, ObjectPlan};

/// A merge upserts on the key: a record without it cannot be placed.
const KEY_MISSING: &str = "the key property is missing; the table upserts on key_properties (mode merge), so every record needs its key";
const KEY_NULL: &str = "the key property is null; the table upserts on key_properties (mode merge), so every record needs its key";

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordError {
    /// The line is not valid JSON.
    Syntax(SyntaxError),
    /// The record does not match the schema.
    Invalid {
        /// Field path, innermost first (reversed when displayed).
        path: Vec<String>,
        /// What is wrong.
        msg: String,
    },
}

impl RecordError {
    fn invalid(msg: impl Into<String>) -> Self {
        RecordError::Invalid {
            path: Vec::new(),
            msg: msg.into(),
        }
    }

    fn at(mut self, segment: &str) -> Self {
        if let RecordError::Invalid { path, .. } = &mut self {
            path.push(segment.to_string());
        }
        self
    }

    /// Dotted field path (`address.geo.lat`, `items[2].sku`), or empty.
    pub fn path(&self) -> String {
        match self {
            RecordError::Syntax(_) => String::new(),
            RecordError::Invalid { path, .. } => {
                let mut out = String::new();
                for seg in path.iter().rev() {
                    if !seg.starts_with('[') && !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(seg);
                }
                out
            }
        }
    }
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Syntax(e) => write!(f, "{e}"),
            RecordError::Invalid { msg, .. } if self.path().is_empty() => write!(f, "{msg}"),
            RecordError::Invalid { msg, .. } => write!(f, "field '{}': {msg}", self.path()),
        }
    }
}

impl From<SyntaxError> for RecordError {
    fn from(e: SyntaxError) -> Self {
        RecordError::Syntax(e)
    }
}

/// Decoding settings for one stream.
pub struct Decoder {
    /// Check constraints (`validate_records`).
    pub validate: bool,
    scratch: Vec<u8>,
    /// Key order of the last top-level record: `root_order[i]` is the field
    /// that followed field `i` (`[n]`: the first one). Taps emit every record
    /// with the same key order, often not the schema's, so this is the best
    /// guess for the next key.
    root_order: Vec<usize>,
    /// The day of the last timestamp decoded.
    dates: values::DateCache,
}

impl Decoder {
    /// A decoder; `validate` turns schema checks on.
    pub fn new(validate: bool) -> Self {
        Decoder {
            validate,
            scratch: Vec::new(),
            root_order: Vec::new(),
            dates: values::DateCache::default(),
        }
    }

    /// [`Decoder::object`] for a top-level record, guessing keys in the order
    /// the previous record had them.
    pub fn record(
        &mut self,
        sc: &mut Scanner<'_>,
        plan: &ObjectPlan,
        cols: &mut [Column],
        row: usize,
        unknown: &mut dyn FnMut(&[u8]),
    ) -> Result<(), RecordError> {
        let mut order = std::mem::take(&mut self.root_order);
        if order.len() != plan.fields.len() + 1 {
            order = vec![usize::MAX; plan.fields.len() + 1];
        }
        let r = self.object_in_order(sc, plan, cols, row, unknown, Some(&mut order));
        self.root_order = order;
        r
    }

    /// Decodes an object at the cursor into `cols` (one per field of `plan`),
    /// which all hold `row` rows before the call. `unknown` sees keys the
    /// schema does not declare.
    pub fn object(
        &mut self,
        sc: &mut Scanner<'_>,
        plan: &ObjectPlan,
        cols: &mut [Column],
        row: usize,
        unknown: &mut dyn FnMut(&[u8]),
    ) -> Result<(), RecordError> {
        self.object_in_order(sc, plan, cols, row, unknown, None)
    }

    fn object_in_order(
        &mut self,
        sc: &mut Scanner<'_>,
        plan: &ObjectPlan,
        cols: &mut [Column],
        row: usize,
        unknown: &mut dyn FnMut(&[u8]),
        mut order: Option<&mut [usize]>,
    ) -> Result<(), RecordError> {
        if !sc.begin_object()? {
            let v = sc.skip_value()?;
            return Err(RecordError::invalid(format!(
                "expected an object, found {}",
                excerpt(v)
            )));
        }
        let mut first = true;
        let mut hint = 0;
        let mut prev = plan.fields.len();
        let mut key_buf = Vec::new();
        // fields seen, as bits while they fit in a word: cheaper than asking
        // each column for its length twice per field
        let mut seen = Seen::new(plan.fields.len());
        loop {
            // match the expected key in place: the one that followed the
            // previous key last time, else the next in schema order
            let guess = match &order {
                Some(o) => o.get(prev).copied().filter(|g| *g < plan.fields.len()),
                None => None,
            }
            .unwrap_or(hint);
            let i = match plan.quoted.get(guess).and_then(Option::as_deref) {
                Some(q) if sc.try_key(first, q)? => guess,
                _ => {
                    let Some((raw_key, escaped)) = sc.next_key(first)? else {
                        break;
                    };
                    let key = if escaped {
                        key_buf.clear();
                        scan::unescape_into(raw_key, &mut key_buf)
                            .map_err(|what| SyntaxError { at: sc.pos(), what })?;
                        &key_buf[..]
                    } else {
                        raw_key
                    };
                    match plan.lookup(key, hint) {
                        Some(i) => i,
                        None => {
                            if plan.deny_unknown && self.validate {
                                return Err(RecordError::invalid(format!(
                                    "property '{}' is not allowed (the schema has additionalProperties: false)",
                                    String::from_utf8_lossy(key)
                                )));
                            }
                            unknown(key);
                            sc.skip_value()?;
                            first = false;
                            continue;
                        }
                    }
                }
            };
            first = false;
            let field = &plan.fields[i];
            if !seen.insert(i, || cols[i].len() == row) {
                return Err(
                    RecordError::invalid("the key appears twice in the object").at(&field.name)
                );
            }
            self.value(sc, field, &mut cols[i])
                .map_err(|e| e.at(&field.name))?;
            hint = i + 1;
            if let Some(o) = order.as_deref_mut() {
                o[prev] = i;
            }
            prev = i;
        }
        for i in seen.maybe_missing() {
            if cols[i].len() > row {
                continue; // has its value
            }
            let field = &plan.fields[i];
            if field.key {
                return Err(RecordError::invalid(KEY_MISSING).at(&field.name));
            }
            if !field.nullable || (field.required && self.validate) {
                return Err(RecordError::invalid("required property is missing").at(&field.name));
            }
            cols[i].push_null();
        }
        Ok(())
    }

    /// Decodes one value at the cursor into `col`.
    fn value(
        &mut self,
        sc: &mut Scanner<'_>,
        f: &FieldPlan,
        col: &mut Column,
    ) -> Result<(), RecordError> {
        let c = sc.peek()?;
        let start = sc.pos();
        if c == b'n' {
            sc.literal()?;
            if f.key {
                return Err(RecordError::invalid(KEY_NULL));
            }
            if !f.null_ok && (self.validate || !f.nullable) {
                return Err(RecordError::invalid(format!(
                    "null is not allowed (expected {})",
                    f.kind.describe()
                )));
            }
            col.push_null();
            return Ok(());
        }
        let validate = self.validate;
        match (&f.kind, col) {
            (Kind::Int64, Column::I64(d, v)) => {
                let x = match c {
                    b'-' | b'0'..=b'9' => {
                        let t = sc.number()?;
                        parse_i64(t).ok_or_else(|| {
                            RecordError::invalid(format!(
                                "{} is not an integer that fits in 64 bits",
                                lossy(t)
                            ))
                        })?
                    }
                    b'"' if !validate => coerce(f, string(&mut self.scratch, sc)?)?,
                    _ => return Err(type_error(f, sc.skip_value()?)),
                };
                if validate {
                    check_number(&f.checks, x as f64)?;
                }
                d.push(x);
                v.push(true);
            }
            (Kind::Float64, Column::F64(d, v)) => {
                let x = match c {
                    b'-' | b'0'..=b'9' => parse_f64(sc.number()?),
                    b'"' if !validate => coerce(f, string(&mut self.scratch, sc)?)?,
                    _ => return Err(type_error(f, sc.skip_value()?)),
                };
                if validate {
                    check_number(&f.checks, x)?;
                }
                d.push(x);
                v.push(true);
            }
            (Kind::Decimal { precision, scale }, col @ (Column::D128(..) | Column::D256(..))) => {
                if !matches!(c, b'-' | b'0'..=b'9') {
                    return Err(type_error(f, sc.skip_value()?));
                }
                let t = sc.number()?;
                let x = values::parse_decimal(t, *precision, *scale).map_err(|e| match e {
                    DecimalError::Scale => RecordError::invalid(format!(
                        "{} has more than {scale} decimal places (the schema's multipleOf)",
                        lossy(t)
                    )),
                    DecimalError::Precision => RecordError::invalid(format!(
                        "{} does not fit decimal({precision},{scale})",
                        lossy(t)
                    )),
                })?;
                if validate {
                    check_number(&f.checks, lossy(t).parse().unwrap_or(0.0))?;
                }
                match col {
                    Column::D128(d, v) => {
                        d.push(x.to_i128().unwrap_or(i128::MAX));
                        v.push(true)
                    }
                    Column::D256(d, v) => {
                        d.push(x);
                        v.push(true)
                    }
                    _ => unreachable!(),
                }
            }
            (Kind::Bool, Column::Bool(d, v)) => {
                let b = match c {
                    b't' | b'f' => sc.literal()? == Literal::True,
                    b'"' if !validate => match string(&mut self.scratch, sc)? {
                        b"true" | b"True" | b"TRUE" => true,
                        b"false" | b"False" | b"FALSE" => false,
                        s => return Err(type_error(f, s)),
                    },
                    _ => return Err(type_error(f, sc.skip_value()?)),
                };
                d.push(b);
                v.push(true);
            }
            (
                Kind::Utf8,
                Column::Str {
                    offsets,
                    data,
                    valid,
                },
            ) => {
                let before = data.len();
                if c == b'"' {
                    let (raw, esc) = sc.raw_string()?;
                    if esc {
                        scan::unescape_into(raw, data).map_err(|what| {
                            data.truncate(before);
                            SyntaxError { at: start, what }
                        })?;
                    } else {
                        data.extend_from_slice(raw);
                    }
                } else if !validate {
                    data.extend_from_slice(sc.skip_value()?);
                } else {
                    return Err(type_error(f, sc.skip_value()?));
                }
                if validate && (f.checks.max_length.is_some() || f.checks.min_length.is_some()) {
                    let n = char_count(&data[before..]);
                    if let Some(m) = f.checks.max_length.filter(|m| n > *m) {
                        data.truncate(before);
                        return Err(RecordError::invalid(format!(
                            "string of {n} characters is longer than maxLength {m}"
                        )));
                    }
                    if let Some(m) = f.checks.min_length.filter(|m| n < *m) {
                        data.truncate(before);
                        return Err(RecordError::invalid(format!(
                            "string of {n} characters is shorter than minLength {m}"
                        )));
                    }
                }
                offsets.push(data.len() as i32);
                valid.push(true);
            }
            (
                Kind::Json,
                Column::Str {
                    offsets,
                    data,
                    valid,
                },
            ) => {
                data.extend_from_slice(sc.skip_value()?);
                offsets.push(data.len() as i32);
                valid.push(true);
            }
            (Kind::Timestamp | Kind::Time, Column::I64(d, v)) => {
                if c != b'"' {
                    return Err(type_error(f, sc.skip_value()?));
                }
                let s = string(&mut self.scratch, sc)?;
                let x = if f.kind == Kind::Timestamp {
                    values::parse_timestamp_us_with(s, &mut self.dates)
                } else {
                    values::parse_time_us(s)
                };
                let x = x.ok_or_else(|| format_error(f, s))?;
                d.push(x);
                v.push(true);
            }
            (Kind::Date, Column::I32(d, v)) => {
                if c != b'"' {
                    return Err(type_error(f, sc.skip_value()?));
                }
                let s = string(&mut self.scratch, sc)?;
                d.push(values::parse_date_days(s).ok_or_else(|| format_error(f, s))?);
                v.push(true);
            }
            (Kind::Struct(obj), col @ Column::Struct { .. }) => {
                if c != b'{' {
                    return Err(type_error(f, sc.skip_value()?));
                }
                let row = col.len();
                let Column::Struct { children, .. } = &mut *col else {
                    unreachable!()
                };
                self.object(sc, obj, children, row, &mut |_| {})?;
                col.push_valid();
            }
            (Kind::List(item), col @ Column::List { .. }) => {
                if !sc.begin_array()? {
                    return Err(type_error(f, sc.skip_value()?));
                }
                let Column::List { offsets, child, .. } = &mut *col else {
                    unreachable!()
                };
                let mut first = true;
                let mut n = 0usize;
                while sc.next_item(first)? {
                    first = false;
                    self.value(sc, item, child)
                        .map_err(|e| e.at(&format!("[{n}]")))?;
                    n += 1;
                }
                if validate {
                    if let Some(m) = f.checks.max_items.filter(|m| n > *m) {
                        return Err(RecordError::invalid(format!(
                            "array of {n} items is longer than maxItems {m}"
                        )));
                    }
                    if let Some(m) = f.checks.min_items.filter(|m| n < *m) {
                        return Err(RecordError::invalid(format!(
                            "array of {n} items is shorter than minItems {m}"
                        )));
                    }
                }
                offsets.push(child.len() as i32);
                col.push_valid();
            }
            (k, _) => {
                return Err(RecordError::invalid(format!(
                    "internal: no column buffer for {}",
                    k.describe()
                )));
            }
        }
        if validate && let Some(allowed) = &f.checks.enum_values {
            let v: Value =
                serde_json::from_slice(&sc.input()[start..sc.pos()]).unwrap_or(Value::Null);
            if !allowed.contains(&v) {
                return Err(RecordError::invalid(format!(
                    "{} is not one of the allowed values {}",
                    excerpt(&sc.input()[start..sc.pos()]),
                    Value::Array(allowed.clone())
                )));
            }
        }
        Ok(())
    }
}

/// A string value, unescaped into `scratch` when it has escapes.
fn string<'c, 'a: 'c, 'b: 'c>(
    scratch: &'b mut Vec<u8>,
    sc: &mut Scanner<'a>,
) -> Result<&'c [u8], RecordError> {
    let at = sc.pos();
    let (raw, esc) = sc.raw_string()?;
    if !esc {
        return Ok(raw);
    }
    scratch.clear();
    scan::unescape_into(raw, scratch).map_err(|what| SyntaxError { at, what })?;
    Ok(scratch)
}

/// A number sent as a string, accepted when validation is off.
fn coerce<T: std::str::FromStr>(f: &FieldPlan, s: &[u8]) -> Result<T, RecordError> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| type_error(f, s))
}

/// Number text (grammar already checked) → f64. Plain decimals of up to 15
/// digits take Clinger's fast path: the digits as an integer below 2^53 and
/// a power of ten up to 10^22 are both exact doubles, so one division rounds
/// correctly. Anything else goes to the standard parser.
fn parse_f64(t: &[u8]) -> f64 {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    let (mut m, mut n, mut frac, mut dot) = (0u64, 0usize, 0usize, false);
    for &c in digits {
        match c {
            b'0'..=b'9' if n < 15 => {
                m = m * 10 + u64::from(c - b'0');
                n += 1;
                frac += usize::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => {
                // long mantissas and exponents: the full algorithm
                return std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
            }
        }
    }
    let v = m as f64 / POW10[frac];
    if neg { -v } else { v }
}

/// Integer text → i64; `3.0` and `3e2` are accepted when exactly integral.
fn parse_i64(t: &[u8]) -> Option<i64> {
    let (neg, digits) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    if digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        let mut v: i64 = 0;
        for &c in digits {
            v = v * 10 + (c - b'0') as i64;
        }
        return Some(if neg { -v } else { v });
    }
    if digits.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(t).ok()?.parse().ok();
    }
    // 1.0 / 1e3: integral values written as floats
    let d = values::parse_decimal(t, 19, 0).ok()?;
    d.to_i128().and_then(|v| i64::try_from(v).ok())
}

fn check_number(c: &Constraints, x: f64) -> Result<(), RecordError> {
    let out = |b: &Bound, below: bool| {
        if below {
            x < b.value || (b.exclusive && x == b.value)
        } else {
            x > b.value || (b.exclusive && x == b.value)
        }
    };
    if let Some(b) = &c.minimum
        && out(b, true)
    {
        let op = if b.exclusive { ">" } else { ">=" };
        return Err(RecordError::invalid(format!(
            "{x} must be {op} {}",
            b.value
        )));
    }
    if let Some(b) = &c.maximum
        && out(b, false)
    {
        let op = if b.exclusive { "<" } else { "<=" };
        return Err(RecordError::invalid(format!(
            "{x} must be {op} {}",
            b.value
        )));
    }
    if let Some(m) = c.multiple_of {
        let q = x / m;
        if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
            return Err(RecordError::invalid(format!(
                "{x} is not a multiple of {m}"
            )));
        }
    }
    Ok(())
}

fn char_count(s: &[u8]) -> usize {
    s.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

fn lossy(t: &[u8]) -> String {
    String::from_utf8_lossy(t).into_owned()
}

/// Up to 60 characters of a raw JSON value for an error message.
fn excerpt(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

fn type_error(f: &FieldPlan, raw: &[u8]) -> RecordError {
    let found = match raw.first() {
        Some(b'"') => "string",
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b't' | b'f') => "boolean",
        Some(b'n') => "null",
        _ => "number",
    };
    let shown = excerpt(raw);
    RecordError::invalid(format!(
        "expected {}, found {found} {shown}",
        f.kind.describe()
    ))
}

fn format_error(f: &FieldPlan, s: &[u8]) -> RecordError {
    let example = match f.kind {
        Kind::Timestamp => "RFC 3339 date-time such as 2024-01-31T12:00:00Z",
        Kind::Date => "date such as 2024-01-31",
        _ => "time such as 23:59:59",
    };
    RecordError::invalid(format!("\"{}\" is not a valid {example}", excerpt(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_parse_exactly_like_the_standard_parser() {
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "0.1",
            "-0.0",
            "1057.12",
            "57.5453",
            "123456789012345",
            "1234567890123456",
            "0.30000000000000004",
            "1e5",
            "-2.5E-3",
            "9007199254740993",
            "0.000000000000001",
            "99999999999999.9",
            "1.7976931348623157e308",
            "5e-324",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 42;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let digits = (x >> 40) % 10u64.pow(1 + (x % 17) as u32);
            let s = digits.to_string();
            let dot = (x >> 8) as usize % (s.len() + 1);
            let mut t = if dot == 0 || dot == s.len() {
                s.clone()
            } else {
                format!("{}.{}", &s[..dot], &s[dot..])
            };
            if x & 1 == 1 {
                t.insert(0, '-');
            }
            texts.push(t);
        }
        for t in &texts {
            let want: f64 = t.parse().unwrap();
            let got = parse_f64(t.as_bytes());
            assert_eq!(got.to_bits(), want.to_bits(), "{t}");
        }
    }
    use crate::schema::{HeaderFormat, StreamSchema};
    use arrow_array::{Array, RecordBatch};
    use arrow_schema::Schema;
    use serde_json::json;
    use std::sync::Arc;

    fn decode(schema: Value, records: &[&str], validate: bool) -> (RecordBatch, Vec<String>) {
        let s = StreamSchema::compile(schema, HeaderFormat::None, validate).unwrap();
        let mut cols: Vec<Column> = s.root.fields.iter().map(Column::for_plan).collect();
        let mut dec = Decoder::new(validate);
        let mut errors = Vec::new();
        let mut rows = 0;
        for r in records {
            let mut sc = Scanner::new(r.as_bytes());
            match dec
                .record(&mut sc, &s.root, &mut cols, rows, &mut |_| {})
                .and_then(|_| sc.end().map_err(Into::into))
            {
                Ok(()) => rows += 1,
                Err(e) => {
                    errors.push(e.to_string());
                    cols.iter_mut().for_each(|c| c.truncate(rows));
                }
            }
        }
        let fields = s.root.arrow_fields();
        let arrays = cols
            .iter_mut()
            .zip(fields.iter())
            .map(|(c, f)| c.finish(f).unwrap())
            .collect();
        (
            RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap(),
            errors,
        )
    }

    #[test]
    fn decodes_and_rolls_back_invalid_records() {
        let schema = json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer"},
            "name": {"type": ["null", "string"], "maxLength": 5},
            "ok": {"type": "boolean"},
            "at": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "addr": {"type": ["null", "object"], "properties": {"city": {"type": "string"}, "zip": {"type": "integer"}}}
        }});
        let (batch, errors) = decode(
            schema,
            &[
                r#"{"id": 1, "name": "a\"b", "ok": false, "at": "2020-01-01T01:00:00+01:00", "tags": ["x", "y"], "addr": {"city": "Z", "zip": 1}}"#,
                r#"{"id": 2, "name": "toolong", "ok": true}"#,
                r#"{"name": "x", "tags": ["half", 3]}"#,
                r#"{"id": 3, "ok": true, "tags": ["q", 3]}"#,
                r#"{"id": "x"}"#,
                r#"{"id": 4, "at": "nope"}"#,
                r#"{"id": 5, "addr": {"zip": "1"}}"#,
                r#"{"id": 6, "addr": null}"#,
            ],
            true,
        );
        assert_eq!(batch.num_rows(), 2, "{errors:?}");
        assert_eq!(
            errors,
            vec![
                "field 'name': string of 7 characters is longer than maxLength 5",
                "field 'tags[1]': expected string, found number 3",
                "field 'tags[1]': expected string, found number 3",
                "field 'id': expected integer, found string \"x\"",
                "field 'at': \"nope\" is not a valid RFC 3339 date-time such as 2024-01-31T12:00:00Z",
                "field 'addr.zip': expected integer, found string \"1\"",
            ]
        );
        let ok = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow_array::BooleanArray>()
            .unwrap();
        assert!(!ok.value(0), "false stays false");
        assert_eq!(batch.column(4).null_count(), 1);
        assert_eq!(batch.column(5).null_count(), 1);
    }

    #[test]
    fn missing_required_is_invalid() {
        let schema = json!({"type": "object", "required": ["id"], "properties": {"id": {"type": ["null", "integer"]}}});
        let (_, errors) = decode(schema, &[r#"{}"#], true);
        assert_eq!(errors, vec!["field 'id': required property is missing"]);
    }

    #[test]
    fn without_validation_strings_are_coerced() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string", "maxLength": 1}}});
        let (batch, errors) = decode(schema, &[r#"{"n": "12", "s": 5}"#], false);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(batch.num_rows(), 1);
    }

    #[test]
    fn key_order_changes_between_records() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": ["null", "string"]},
            "c": {"type": ["null", "boolean"]}, "d": {"type": ["null", "integer"]}}});
        let (batch, errors) = decode(
            schema,
            &[
                r#"{"d": 4, "b": "x", "a": 1, "c": true}"#,
                r#"{"d": 5, "b": "y", "a": 2, "c": false}"#,
                r#"{"a": 3, "c": null, "d": 6}"#,
                r#"{"c": true, "a": 4, "b": "z", "d": 7, "b": "again"}"#,
                r#"{"b": "w", "a": 5}"#,
            ],
            true,
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("twice"), "{errors:?}");
        let ints = |i: usize| {
            let c = batch
                .column(i)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            (0..c.len())
                .map(|r| c.is_valid(r).then(|| c.value(r)))
                .collect::<Vec<_>>()
        };
        assert_eq!(ints(0), vec![Some(1), Some(2), Some(3), Some(5)]);
        assert_eq!(ints(3), vec![Some(4), Some(5), Some(6), None]);
        let b = batch
            .column(1)
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(b.value(0), "x");
        assert!(b.is_null(2));
        assert_eq!(b.value(3), "w");
    }

    #[test]
    fn duplicate_and_missing_keys_at_every_width() {
        // up to 64 fields are tracked as bits, more by column lengths
        for n in [1, 2, 63, 64, 65, 130] {
            let mut props = serde_json::Map::new();
            for i in 0..n {
                props.insert(format!("f{i}"), json!({"type": ["null", "integer"]}));
            }
            let schema = json!({"type": "object", "required": ["f0"], "properties": props});
            let last = n - 1;
            let (batch, errors) = decode(
                schema,
                &[
                    &format!(r#"{{"f0": 1, "f{last}": 2}}"#),
                    &format!(r#"{{"f{last}": 3, "f0": 4, "f{last}": 5}}"#),
                    &format!(r#"{{"f{last}": 6}}"#),
                    r#"{"f0": 7}"#,
                ],
                true,
            );
            let second = match n {
                1 => "field 'f0': the key appears twice in the object",
                _ => "field 'f0': required property is missing",
            };
            let twice = format!("field 'f{last}': the key appears twice in the object");
            assert_eq!(errors, vec![twice.as_str(), second], "{n}");
            assert_eq!(batch.num_rows(), 2, "{n}");
            for c in 1..n - 1 {
                assert_eq!(
                    batch.column(c).null_count(),
                    2,
                    "{n}: f{c} is null in both rows"
                );
            }
            if n > 1 {
                assert_eq!(batch.column(last).null_count(), 1, "{n}");
            }
        }
    }
}
