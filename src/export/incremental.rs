//! Incremental export: `--incremental schema.table:column[:lag=N][:start=V]`
//! (or LakeXpress's `schema.table:column:type[@start][!append|upsert]`).
//! A run fixes its upper bound at its start, inside its snapshot
//! (`max(column)`), reads `low < column <= high` and records `high` as the
//! table's watermark in the same commit (Delta) or manifest (files) that
//! makes the rows durable: the destination itself knows how far it got, and
//! the run log keeps a copy.

use serde_json::{Value, json};

use super::select::Pattern;
use crate::source::{LowBound, Relation, RowFilter, WatermarkKind};

/// How re-read rows meet the table (Delta; plain files always add parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apply {
    /// Merge on the key: each row once (the default).
    Upsert,
    /// Append: re-read rows appear again.
    Append,
}

/// A lag as written: a bare number (the column's unit) or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Seconds for timestamps, days for dates, units for integers.
    Units(u64),
    /// A time (`15m`, `2h`, `1d`, `30s`).
    Seconds(u64),
}

/// One `--incremental` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// `schema.table`.
    pub table: Pattern,
    /// The watermark column.
    pub column: String,
    /// Re-read this far below the watermark.
    pub lag: Option<Lag>,
    /// The first run starts here (inclusive) instead of the first row.
    pub start: Option<String>,
    /// Upsert or append (LakeXpress's `!append`).
    pub apply: Option<Apply>,
}

const LAKEXPRESS_TYPES: [&str; 8] = [
    "timestamp",
    "timestamptz",
    "datetime",
    "date",
    "int",
    "integer",
    "bigint",
    "smallint",
];

impl Spec {
    /// Parses either syntax; the error says what a valid one looks like.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let bad = |why: &str| {
            format!(
                "--incremental '{text}': {why}; write schema.table:column[:lag=SECONDS][:start=VALUE] \
                 (or LakeXpress's schema.table:column:type[@start][!append|upsert])"
            )
        };
        let (table, rest) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| bad("no column"))?;
        if !table.contains('.') {
            return Err(bad("the table needs its schema (schema.table)"));
        }
        let table = Pattern::parse(table);
        if !table.is_exact() {
            return Err(bad("name one table, without wildcards"));
        }
        let (column, options) = match rest.split_once(':') {
            Some((c, o)) => (c, Some(o)),
            None => (rest, None),
        };
        if column.is_empty() {
            return Err(bad("no column"));
        }
        let mut spec = Spec {
            table,
            column: column.to_string(),
            lag: None,
            start: None,
            apply: None,
        };
        let Some(options) = options else {
            return Ok(spec);
        };
        if let Some(lx) = lakexpress(options) {
            let (start, apply) = lx.map_err(|e| bad(&e))?;
            spec.start = start;
            spec.apply = apply;
            return Ok(spec);
        }
        // options are `key=value`; a start value may hold colons (times)
        let mut current: Option<(&str, String)> = None;
        let mut done = Vec::new();
        for seg in options.split(':') {
            match seg.split_once('=') {
                Some((k @ ("lag" | "start" | "mode"), v)) => {
                    done.extend(current.take());
                    current = Some((k, v.to_string()));
                }
                _ => match &mut current {
                    Some((_, v)) => {
                        v.push(':');
                        v.push_str(seg);
                    }
                    None => return Err(bad(&format!("unknown option '{seg}'"))),
                },
            }
        }
        done.extend(current);
        for (k, v) in done {
            match k {
                "lag" => spec.lag = Some(parse_lag(&v).map_err(|e| bad(&e))?),
                "start" => spec.start = Some(v),
                _ => spec.apply = Some(parse_apply(&v).map_err(|e| bad(&e))?),
            }
        }
        Ok(spec)
    }
}

/// LakeXpress's `type[@start][!mode]` (None: not that syntax).
#[allow(clippy::type_complexity)]
fn lakexpress(options: &str) -> Option<Result<(Option<String>, Option<Apply>), String>> {
    let (body, apply) = match options.rsplit_once('!') {
        Some((b, m)) => (b, Some(m)),
        None => (options, None),
    };
    let (ty, start) = match body.split_once('@') {
        Some((t, s)) => (t, Some(s.to_string())),
        None => (body, None),
    };
    if !LAKEXPRESS_TYPES.contains(&ty.to_ascii_lowercase().as_str()) {
        return None;
    }
    Some(match apply.map(parse_apply).transpose() {
        Ok(a) => Ok((start.filter(|s| !s.is_empty()), a)),
        Err(e) => Err(e),
    })
}

fn parse_apply(v: &str) -> Result<Apply, String> {
    match v.to_ascii_lowercase().as_str() {
        "upsert" | "merge" => Ok(Apply::Upsert),
        "append" => Ok(Apply::Append),
        _ => Err(format!("'{v}' is not upsert or append")),
    }
}

/// `300`, `300s`, `15m`, `2h`, `1d`.
pub fn parse_lag(v: &str) -> Result<Lag, String> {
    let v = v.trim();
    let err = || format!("lag '{v}' is not a number (300) or a time (30s, 15m, 2h, 1d)");
    let (num, mult) = match v.char_indices().last() {
        Some((i, 's')) => (&v[..i], 1),
        Some((i, 'm')) => (&v[..i], 60),
        Some((i, 'h')) => (&v[..i], 3600),
        Some((i, 'd')) => (&v[..i], 86_400),
        _ => return v.parse().map(Lag::Units).map_err(|_| err()),
    };
    num.parse::<u64>()
        .map(|n| Lag::Seconds(n.saturating_mul(mult)))
        .map_err(|_| err())
}

/// `--key schema.table:col,col`: the merge key of a table without a
/// primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// `schema.table`.
    pub table: Pattern,
    /// Key columns.
    pub columns: Vec<String>,
}

impl KeySpec {
    /// Parses `schema.table:col,col`.
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let (table, cols) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("--key '{text}': write schema.table:column[,column…]"))?;
        let columns: Vec<String> = cols
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        if columns.is_empty() || !table.contains('.') {
            return Err(format!(
                "--key '{text}': write schema.table:column[,column…]"
            ));
        }
        Ok(KeySpec {
            table: Pattern::parse(table),
            columns,
        })
    }
}

/// One table's incremental run, planned inside the snapshot.
#[derive(Debug, Clone)]
pub struct Increment {
    /// The watermark column.
    pub column: String,
    /// Its kind.
    pub kind: WatermarkKind,
    /// `max(column)` in the run's snapshot.
    pub high: Option<String>,
    /// The lag in the column's unit.
    pub lag: u64,
    /// Where the first run starts.
    pub start: Option<String>,
    /// Upsert or append (Delta; None: as the config's mode says).
    pub apply: Option<Apply>,
    /// The merge key.
    pub keys: Vec<String>,
    /// Ignore the recorded watermark: reload the whole table.
    pub reset: bool,
    /// The column may hold NULL (such rows come with full reloads only).
    pub nullable: bool,
    /// An index serves the range (else every run scans the table).
    pub indexed: bool,
}

impl Increment {
    /// Plans `rel`'s run from its spec; the error says what is wrong.
    pub fn plan(
        rel: &Relation,
        spec: &Spec,
        default_lag: Option<u64>,
        key: Option<&KeySpec>,
        reset: bool,
    ) -> Result<Increment, String> {
        let table = rel.qualified();
        let col = rel
            .columns
            .iter()
            .find(|c| c.name == spec.column)
            .ok_or_else(|| {
                format!(
                    "--incremental {table}:{}: the table has no column '{}'",
                    spec.column, spec.column
                )
            })?;
        let kind = WatermarkKind::of(&col.ty.pg_name).ok_or_else(|| {
            format!(
                "--incremental {table}:{}: the column is {}; a watermark column is timestamp, \
                 timestamptz, date, smallint, integer or bigint",
                spec.column, col.ty.pg_name
            )
        })?;
        let lag = match (spec.lag, kind) {
            (Some(Lag::Units(n)), _) => n,
            (Some(Lag::Seconds(s)), WatermarkKind::Timestamp | WatermarkKind::TimestampTz) => s,
            (Some(Lag::Seconds(s)), WatermarkKind::Date) => s.div_ceil(86_400),
            (Some(Lag::Seconds(_)), WatermarkKind::Integer) => {
                return Err(format!(
                    "--incremental {table}:{}: an integer column's lag is a number of units, not a time",
                    spec.column
                ));
            }
            // the run's --incremental-lag (seconds) applies to time columns
            (None, WatermarkKind::Timestamp | WatermarkKind::TimestampTz) => {
                default_lag.unwrap_or(0)
            }
            (None, WatermarkKind::Date) => default_lag.unwrap_or(0).div_ceil(86_400),
            (None, WatermarkKind::Integer) => 0,
        };
        let keys = match key {
            Some(k) => {
                for c in &k.columns {
                    if !rel.columns.iter().any(|x| &x.name == c) {
                        return Err(format!("--key {table}: the table has no column '{c}'"));
                    }
                }
                k.columns.clone()
            }
            None => rel.primary_key.clone(),
        };
        Ok(Increment {
            column: spec.column.clone(),
            kind,
            high: None,
            lag,
            start: spec.start.clone(),
            apply: spec.apply,
            keys,
            reset,
            nullable: !col.not_null,
            indexed: true,
        })
    }

    /// The row filter of a run that starts from `watermark` (None: the
    /// table has none, or it is reset: everything up to `high`, from the
    /// start value when given).
    pub fn filter(&self, watermark: Option<&str>) -> RowFilter {
        let low = match (watermark, &self.start) {
            (Some(w), _) => Some(LowBound {
                value: w.to_string(),
                inclusive: false,
                lag: self.lag,
            }),
            (None, Some(s)) => Some(LowBound {
                value: s.clone(),
                inclusive: true,
                lag: 0,
            }),
            (None, None) => None,
        };
        RowFilter {
            column: self.column.clone(),
            kind: self.kind,
            nulls: low.is_none(),
            low,
            high: self.high.clone(),
        }
    }

    /// The watermark a table's last complete copy recorded, if it was kept
    /// on this column (a copy on another column starts afresh).
    pub fn recorded(&self, last_copy: Option<&Value>) -> Option<String> {
        if self.reset {
            return None;
        }
        let w = &last_copy?["incremental"];
        (w["column"].as_str() == Some(self.column.as_str()))
            .then(|| w["watermark"].as_str().map(String::from))
            .flatten()
    }

    /// What the destination records once the run's rows are durable: the
    /// new watermark (the old one when the column is still empty).
    pub fn record(&self, previous: Option<&str>, run: Option<&str>) -> Value {
        json!({
            "column": self.column,
            "kind": self.kind,
            "watermark": self.high.as_deref().or(previous),
            "run": run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlet_syntax_with_a_start_that_holds_colons() {
        let s = Spec::parse("public.orders:updated_at:lag=300:start=2024-01-01 00:00:00").unwrap();
        assert_eq!(s.table.to_string(), "public.orders");
        assert_eq!(s.column, "updated_at");
        assert_eq!(s.lag, Some(Lag::Units(300)));
        assert_eq!(s.start.as_deref(), Some("2024-01-01 00:00:00"));
        let s = Spec::parse("public.orders:id").unwrap();
        assert_eq!((s.lag, s.start, s.apply), (None, None, None));
        assert_eq!(
            Spec::parse("s.t:c:lag=15m:mode=append").unwrap().lag,
            Some(Lag::Seconds(900))
        );
    }

    #[test]
    fn lakexpress_syntax() {
        let s =
            Spec::parse("public.orders:updated_at:timestamp@2024-01-01 10:00:00!append").unwrap();
        assert_eq!(s.column, "updated_at");
        assert_eq!(s.start.as_deref(), Some("2024-01-01 10:00:00"));
        assert_eq!(s.apply, Some(Apply::Append));
        let s = Spec::parse("public.orders:id:bigint!upsert").unwrap();
        assert_eq!((s.start, s.apply), (None, Some(Apply::Upsert)));
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        for bad in [
            "orders:id",
            "public.orders",
            "public.o%:id",
            "s.t:c:frobnicate",
            "s.t:c:lag=soon",
        ] {
            let e = Spec::parse(bad).unwrap_err();
            assert!(e.contains("schema.table:column"), "{bad}: {e}");
        }
        assert!(KeySpec::parse("s.t").is_err());
        assert_eq!(KeySpec::parse("s.t:a, b").unwrap().columns, ["a", "b"]);
    }

    #[test]
    fn filters_start_from_the_watermark_or_the_start_value() {
        let inc = Increment {
            column: "u".into(),
            kind: WatermarkKind::Integer,
            high: Some("10".into()),
            lag: 2,
            start: Some("5".into()),
            apply: None,
            keys: vec![],
            reset: false,
            nullable: false,
            indexed: true,
        };
        let f = inc.filter(Some("7"));
        let low = f.low.unwrap();
        assert_eq!(
            (low.value.as_str(), low.inclusive, low.lag),
            ("7", false, 2)
        );
        assert!(!f.nulls);
        let f = inc.filter(None);
        let low = f.low.unwrap();
        assert_eq!((low.value.as_str(), low.inclusive, low.lag), ("5", true, 0));
        let last = json!({"incremental": {"column": "u", "watermark": "7"}});
        assert_eq!(inc.recorded(Some(&last)).as_deref(), Some("7"));
        let other = json!({"incremental": {"column": "v", "watermark": "7"}});
        assert_eq!(inc.recorded(Some(&other)), None);
        let reset = Increment { reset: true, ..inc };
        assert_eq!(reset.recorded(Some(&last)), None);
    }
}
