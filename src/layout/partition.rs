//! Hive-style partition folders computed from record values.

use arrow_array::{Array, Date32Array, RecordBatch, TimestampMicrosecondArray, UInt32Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{ArrowError, DataType};
use chrono::{DateTime, NaiveDate, Utc};

/// Hive's folder name for a null value.
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One `partition_keys` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKey {
    /// Column name (after `column_header_format`).
    pub column: String,
    /// strftime pattern with its own `key=` parts (`year=%Y/month=%m`), for date parts.
    pub format: Option<String>,
}

impl PartitionKey {
    /// `"col"` or `"col:year=%Y/month=%m"`.
    pub fn parse(spec: &str) -> Result<Self, super::LayoutError> {
        let (column, format) = match spec.split_once(':') {
            Some((c, f)) => (c.trim(), Some(f.trim().to_string())),
            None => (spec.trim(), None),
        };
        if column.is_empty() {
            return Err(super::LayoutError::NoColumn(spec.to_string()));
        }
        if let Some(f) = &format
            && !super::valid_strftime(f)
        {
            return Err(super::LayoutError::Strftime {
                pattern: f.clone(),
                spec: spec.to_string(),
            });
        }
        Ok(PartitionKey {
            column: column.to_string(),
            format,
        })
    }
}

/// Escapes a value the way Hive and Spark do in partition folder names.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if c.is_control() || "\"#%'*/:=?\\{[]^".contains(c) {
            for b in c.to_string().bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        NULL_PARTITION.to_string()
    } else {
        out
    }
}

/// Splits a batch by partition folder; groups keep the order of first appearance.
pub fn partition_rows(
    batch: &RecordBatch,
    keys: &[PartitionKey],
) -> Result<Vec<(String, RecordBatch)>, ArrowError> {
    if keys.is_empty() {
        return Ok(vec![(String::new(), batch.clone())]);
    }
    let n = batch.num_rows();
    let mut segments: Vec<String> = vec![String::new(); n];
    for key in keys {
        let idx = batch.schema().index_of(&key.column).map_err(|_| {
            ArrowError::SchemaError(format!(
                "partition key '{}' is not a column of this stream",
                key.column
            ))
        })?;
        let col = batch.column(idx);
        let values = column_segments(key, col.as_ref())?;
        for (s, v) in segments.iter_mut().zip(values) {
            if !s.is_empty() {
                s.push('/');
            }
            s.push_str(&v);
        }
    }
    let mut order: Vec<String> = Vec::new();
    let mut groups: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for (i, s) in segments.into_iter().enumerate() {
        groups
            .entry(s)
            .or_insert_with_key(|k| {
                order.push(k.clone());
                Vec::new()
            })
            .push(i as u32);
    }
    order
        .into_iter()
        .map(|k| {
            let rows = UInt32Array::from(groups.remove(&k).unwrap_or_default());
            arrow_select::take::take_record_batch(batch, &rows).map(|b| (k, b))
        })
        .collect()
}

fn column_segments(key: &PartitionKey, col: &dyn Array) -> Result<Vec<String>, ArrowError> {
    let n = col.len();
    match &key.format {
        None => {
            let f = ArrayFormatter::try_new(col, &FormatOptions::default())?;
            Ok((0..n)
                .map(|i| {
                    let v = if col.is_null(i) {
                        NULL_PARTITION.to_string()
                    } else {
                        escape(&f.value(i).to_string())
                    };
                    format!("{}={v}", key.column)
                })
                .collect())
        }
        Some(fmt) => {
            let when = |i: usize| -> Option<DateTime<Utc>> {
                if col.is_null(i) {
                    return None;
                }
                match col.data_type() {
                    DataType::Timestamp(_, _) => col
                        .as_any()
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .and_then(|a| DateTime::from_timestamp_micros(a.value(i))),
                    DataType::Date32 => col.as_any().downcast_ref::<Date32Array>().and_then(|a| {
                        NaiveDate::from_num_days_from_ce_opt(a.value(i) + 719_163)
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                            .map(|d| d.and_utc())
                    }),
                    _ => None,
                }
            };
            if !matches!(
                col.data_type(),
                DataType::Timestamp(_, _) | DataType::Date32
            ) {
                return Err(ArrowError::SchemaError(format!(
                    "partition key '{}:{fmt}' needs a date or date-time column, but '{}' is {}",
                    key.column,
                    key.column,
                    col.data_type()
                )));
            }
            Ok((0..n)
                .map(|i| match when(i) {
                    Some(t) => t.format(fmt).to_string(),
                    None => fmt
                        .split('/')
                        .map(|p| match p.split_once('=') {
                            Some((k, _)) => format!("{k}={NULL_PARTITION}"),
                            None => NULL_PARTITION.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join("/"),
                })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{Field, Schema, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn splits_by_value_and_date_parts() {
        let schema = Schema::new(vec![
            Field::new("c", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, false),
        ]);
        let b = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("FR"),
                    Some("a/b"),
                    Some("FR"),
                    None,
                ])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_577_836_800_000_000); 4])
                        .with_timezone("UTC"),
                ),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        let keys = [
            PartitionKey::parse("c").unwrap(),
            PartitionKey::parse("at:year=%Y/month=%m").unwrap(),
        ];
        let parts = partition_rows(&b, &keys).unwrap();
        let names: Vec<_> = parts
            .iter()
            .map(|(k, b)| (k.as_str(), b.num_rows()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("c=FR/year=2020/month=01", 2),
                ("c=a%2Fb/year=2020/month=01", 1),
                ("c=__HIVE_DEFAULT_PARTITION__/year=2020/month=01", 1)
            ]
        );
        assert!(partition_rows(&b, &[PartitionKey::parse("n:%Y").unwrap()]).is_err());
    }
}
