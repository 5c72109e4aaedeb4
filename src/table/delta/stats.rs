//! Statistics of a data file as the Delta protocol wants them in its `add`
//! action (`numRecords`, `minValues`, `maxValues`, `nullCount`), read from
//! the Parquet footer inlet's encoder returns. delta-rs keeps its own helper
//! crate-private; this follows the same rules (tested against its output):
//!
//! - the first `delta.dataSkippingNumIndexedCols` (default 32) top-level
//!   columns, or exactly `delta.dataSkippingStatsColumns`; partition columns
//!   are not in the file and take no slot;
//! - no statistics for binary columns, nor for leaves under a list or map;
//! - dates as `YYYY-MM-DD`; timestamps to the millisecond, `…Z` with a time
//!   zone and `YYYY-MM-DD HH:MM:SS.fff` without; structs as nested objects.
//!
//! Two deliberate differences, both so that no reader skips a file holding
//! a matching row: a maximum timestamp is rounded *up* to the millisecond
//! (delta-rs truncates, which can fall below the true maximum), and decimals
//! are written as exact JSON numbers (delta-rs goes through `f64`).

use std::collections::HashSet;

use chrono::DateTime;
use parquet::basic::{LogicalType, TimeUnit, Type as Physical};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnDescriptor;
use serde_json::Value;

/// Which columns get statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsColumns {
    /// The first N top-level columns (`-1`: all).
    First(Option<usize>),
    /// Exactly these (dotted paths for nested fields).
    Named(Vec<String>),
}

impl Default for StatsColumns {
    fn default() -> Self {
        StatsColumns::First(Some(32))
    }
}

impl StatsColumns {
    /// From a table's `delta.dataSkippingNumIndexedCols` and
    /// `delta.dataSkippingStatsColumns` properties.
    pub fn from_properties(num_indexed: Option<&str>, named: Option<&str>) -> StatsColumns {
        if let Some(n) = named {
            return StatsColumns::Named(n.split(',').map(|c| c.trim().to_string()).collect());
        }
        match num_indexed.and_then(|v| v.trim().parse::<i64>().ok()) {
            Some(n) if n < 0 => StatsColumns::First(None),
            Some(n) => StatsColumns::First(Some(n as usize)),
            None => StatsColumns::default(),
        }
    }
}

/// A statistics value: plain JSON, or a number written exactly as text.
#[derive(Debug, Clone, PartialEq)]
enum Stat {
    Json(Value),
    Number(String),
    Object(Vec<(String, Stat)>),
}

/// The `stats` JSON of a file with `meta` as footer.
pub fn stats_json(meta: &ParquetMetaData, columns: &StatsColumns) -> String {
    let schema = meta.file_metadata().schema_descr();
    let mut mins = Vec::new();
    let mut maxs = Vec::new();
    let mut nulls = Vec::new();
    for idx in chosen(schema.columns(), columns) {
        let col = schema.column(idx);
        if col.max_rep_level() > 0 || is_binary(&col) {
            continue;
        }
        let mut agg: Option<(Option<Bound>, Option<Bound>, u64)> = None;
        for rg in meta.row_groups() {
            let Some(s) = rg.column(idx).statistics() else {
                continue;
            };
            let n = s.null_count_opt().unwrap_or(0);
            let (lo, hi) = (value(s, &col, true), value(s, &col, false));
            agg = Some(match agg {
                None => (lo, hi, n),
                Some((l, h, c)) => (pick(l, lo, true), pick(h, hi, false), c + n),
            });
        }
        let Some((lo, hi, n)) = agg else { continue };
        let path = col.path().parts();
        if let Some(lo) = lo {
            insert(&mut mins, path, render(lo, &col, false));
        }
        if let Some(hi) = hi {
            insert(&mut maxs, path, render(hi, &col, true));
        }
        insert(&mut nulls, path, Stat::Json(Value::from(n)));
    }
    let mut out = String::from("{\"numRecords\":");
    out.push_str(&meta.file_metadata().num_rows().to_string());
    for (name, stats) in [
        ("minValues", mins),
        ("maxValues", maxs),
        ("nullCount", nulls),
    ] {
        out.push_str(&format!(",\"{name}\":"));
        write(&Stat::Object(stats), &mut out);
    }
    out.push('}');
    out
}

/// Leaf indexes that get statistics.
fn chosen(leaves: &[std::sync::Arc<ColumnDescriptor>], columns: &StatsColumns) -> Vec<usize> {
    match columns {
        StatsColumns::Named(names) => {
            let names: HashSet<&str> = names.iter().map(String::as_str).collect();
            (0..leaves.len())
                .filter(|&i| {
                    let p = leaves[i].path().parts();
                    names.contains(p.join(".").as_str()) || names.contains(p[0].as_str())
                })
                .collect()
        }
        StatsColumns::First(limit) => {
            let mut tops: Vec<&str> = Vec::new();
            let mut out = Vec::new();
            for (i, leaf) in leaves.iter().enumerate() {
                let top = leaf.path().parts()[0].as_str();
                if !tops.contains(&top) {
                    if limit.is_some_and(|n| tops.len() >= n) {
                        break;
                    }
                    tops.push(top);
                }
                out.push(i);
            }
            out
        }
    }
}

fn is_binary(col: &ColumnDescriptor) -> bool {
    col.physical_type() == Physical::BYTE_ARRAY
        && !matches!(
            col.logical_type_ref(),
            Some(LogicalType::String | LogicalType::Json | LogicalType::Enum)
        )
        && col.converted_type() != parquet::basic::ConvertedType::UTF8
}

/// A bound in a form that orders as the column's logical values do.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Bound {
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

fn pick(a: Option<Bound>, b: Option<Bound>, min: bool) -> Option<Bound> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if (a < b) == min { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn value(s: &Statistics, col: &ColumnDescriptor, min: bool) -> Option<Bound> {
    macro_rules! bound {
        ($v:expr) => {
            if min { $v.min_opt() } else { $v.max_opt() }
        };
    }
    Some(match s {
        Statistics::Boolean(v) => Bound::Bool(*bound!(v)?),
        Statistics::Int32(v) => Bound::Int(i128::from(*bound!(v)?)),
        Statistics::Int64(v) => Bound::Int(i128::from(*bound!(v)?)),
        Statistics::Float(v) => Bound::Float(f64::from(*bound!(v)?)),
        Statistics::Double(v) => Bound::Float(*bound!(v)?),
        Statistics::ByteArray(v) => {
            Bound::Text(String::from_utf8(bound!(v)?.data().to_vec()).ok()?)
        }
        Statistics::FixedLenByteArray(v) => {
            let b = bound!(v)?.data();
            match col.logical_type_ref() {
                Some(LogicalType::Decimal(_)) if !b.is_empty() && b.len() <= 16 => {
                    let mut ext = if b[0] & 0x80 != 0 {
                        [0xff; 16]
                    } else {
                        [0; 16]
                    };
                    ext[16 - b.len()..].copy_from_slice(b);
                    Bound::Int(i128::from_be_bytes(ext))
                }
                Some(LogicalType::Uuid) if b.len() == 16 => Bound::Bytes(b.to_vec()),
                _ => return None,
            }
        }
        Statistics::Int96(_) => return None,
    })
}

/// The JSON of a bound; `max` rounds timestamps up.
fn render(v: Bound, col: &ColumnDescriptor, max: bool) -> Stat {
    let json = |v: Value| Stat::Json(v);
    match (v, col.logical_type_ref()) {
        (Bound::Int(n), Some(LogicalType::Date)) => {
            let d = DateTime::from_timestamp(n as i64 * 86_400, 0).map(|d| d.date_naive());
            json(d.map_or(Value::Null, |d| {
                Value::from(d.format("%Y-%m-%d").to_string())
            }))
        }
        (Bound::Int(n), Some(LogicalType::Timestamp(t))) => {
            let is_adjusted_to_u_t_c = t.is_adjusted_to_u_t_c;
            let per_ms: i128 = match t.unit {
                TimeUnit::MILLIS => 1,
                TimeUnit::MICROS => 1_000,
                TimeUnit::NANOS => 1_000_000,
            };
            let ms = match max {
                true => (n + per_ms - 1).div_euclid(per_ms),
                false => n.div_euclid(per_ms),
            };
            let Some(t) = DateTime::from_timestamp_millis(ms as i64) else {
                return json(Value::Null);
            };
            let fmt = match (is_adjusted_to_u_t_c, ms % 1000 == 0) {
                (true, true) => "%Y-%m-%dT%H:%M:%SZ",
                (true, false) => "%Y-%m-%dT%H:%M:%S%.3fZ",
                (false, true) => "%Y-%m-%d %H:%M:%S",
                (false, false) => "%Y-%m-%d %H:%M:%S%.3f",
            };
            json(Value::from(t.naive_utc().format(fmt).to_string()))
        }
        (Bound::Int(n), Some(LogicalType::Decimal(d))) => Stat::Number(decimal_text(n, d.scale)),
        (Bound::Int(n), _) => Stat::Number(n.to_string()),
        (Bound::Bool(b), _) => json(Value::Bool(b)),
        (Bound::Float(f), _) => json(Value::from(f)),
        (Bound::Text(s), _) => json(Value::from(s)),
        (Bound::Bytes(b), _) => {
            let u = uuid::Uuid::from_slice(&b).map(|u| u.hyphenated().to_string());
            json(u.map_or(Value::Null, Value::from))
        }
    }
}

/// `n` × 10^-scale as an exact decimal literal.
fn decimal_text(n: i128, scale: i32) -> String {
    if scale <= 0 {
        return format!("{n}{}", "0".repeat(scale.unsigned_abs() as usize));
    }
    let s = scale as usize;
    let digits = format!("{:0>width$}", n.unsigned_abs(), width = s + 1);
    let (int, frac) = digits.split_at(digits.len() - s);
    format!("{}{int}.{frac}", if n < 0 { "-" } else { "" })
}

/// Puts `v` at `path` (nested objects for struct fields).
fn insert(into: &mut Vec<(String, Stat)>, path: &[String], v: Stat) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        into.push((first.clone(), v));
        return;
    }
    if !into.iter().any(|(k, _)| k == first) {
        into.push((first.clone(), Stat::Object(Vec::new())));
    }
    if let Some((_, Stat::Object(child))) = into.iter_mut().find(|(k, _)| k == first) {
        insert(child, rest, v);
    }
}

fn write(s: &Stat, out: &mut String) {
    match s {
        Stat::Json(v) => out.push_str(&v.to_string()),
        Stat::Number(n) => out.push_str(n),
        Stat::Object(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
