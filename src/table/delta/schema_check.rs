//! Schema evolution rules before a commit: new nullable columns are fine
//! (they are merged into the table); a column whose type changed, or a
//! required table column the new data lacks, is an error naming the column,
//! the table's type and the new type.

use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value;

use super::Cause;

/// The table's current schema as Arrow.
pub fn table_arrow_schema(table: &DeltaTable) -> Result<Arc<Schema>, DeltaTableError> {
    Ok(table.snapshot()?.snapshot().arrow_schema())
}

/// Refuses a table whose rules inlet cannot honour when it writes data
/// files itself: column mapping (physical names differ from the columns),
/// CHECK constraints, generated or identity columns, column invariants,
/// and `delta.appendOnly` for a load that replaces or merges.
pub fn writable(table: &DeltaTable, replaces: bool) -> Result<(), Cause> {
    let snapshot = table.snapshot()?;
    let meta = serde_json::to_value(snapshot.metadata()).unwrap_or_default();
    let conf = meta["configuration"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let refuse = |what: String| {
        Err(Cause::Refused(format!(
            "the table uses {what}, which inlet cannot honour when it writes data files; \
             write to a new table (another destination or table name), or remove the feature \
             with the engine that added it"
        )))
    };
    if let Some(mode) = conf
        .get("delta.columnMapping.mode")
        .and_then(|v| v.as_str())
        && !mode.eq_ignore_ascii_case("none")
    {
        return refuse(format!(
            "column mapping (delta.columnMapping.mode = {mode})"
        ));
    }
    if let Some(k) = conf.keys().find(|k| k.starts_with("delta.constraints.")) {
        return refuse(format!(
            "a CHECK constraint ({})",
            k.trim_start_matches("delta.constraints.")
        ));
    }
    if replaces && conf.get("delta.appendOnly").and_then(|v| v.as_str()) == Some("true") {
        return Err(Cause::Refused(
            "the table is append-only (delta.appendOnly = true) and this load replaces or \
             merges rows; use mode append"
                .into(),
        ));
    }
    let schema: Value = meta["schemaString"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    if let Some((column, key)) = special_field(&schema) {
        let what = match key.as_str() {
            "delta.generationExpression" => "a generated column",
            "delta.invariants" => "a column invariant",
            _ => "an identity column",
        };
        return refuse(format!("{what} ('{column}')"));
    }
    Ok(())
}

/// The first field (at any depth) whose metadata asks the writer to compute
/// or check values: its name and the metadata key.
fn special_field(v: &Value) -> Option<(String, String)> {
    for f in v["fields"].as_array().into_iter().flatten() {
        if let Some(meta) = f["metadata"].as_object()
            && let Some(k) = meta.keys().find(|k| {
                *k == "delta.generationExpression"
                    || *k == "delta.invariants"
                    || k.starts_with("delta.identity.")
            })
        {
            return Some((
                f["name"].as_str().unwrap_or_default().to_string(),
                k.clone(),
            ));
        }
        if let Some(found) = special_field(&f["type"]) {
            return Some(found);
        }
    }
    None
}

/// Checks that `new` can be written to `table` (with schema merging).
pub fn compatible(table: &DeltaTable, new: &Schema) -> Result<(), Cause> {
    let old = table_arrow_schema(table)?;
    for f in old.fields() {
        match new.field_with_name(f.name()) {
            Ok(n) => {
                if !same_kind(f.data_type(), n.data_type()) {
                    return Err(Cause::Refused(format!(
                        "column '{}' is {} in the table but {} in the new SCHEMA; \
                         the table's type cannot change (overwrite mode with \
                         schema_mode: overwrite replaces the table's schema)",
                        f.name(),
                        show(f.data_type()),
                        show(n.data_type())
                    )));
                }
            }
            Err(_) if !f.is_nullable() => {
                return Err(Cause::Refused(format!(
                    "column '{}' is required (not null) in the table but missing from the new \
                     SCHEMA; add it back, or use overwrite mode with schema_mode: overwrite",
                    f.name()
                )));
            }
            Err(_) => {} // an absent nullable column reads as null
        }
    }
    Ok(())
}

/// The table's schema with the columns (and struct fields) of `new` it
/// lacks added as nullable, or `None` when it has them all.
pub fn merged(table: &DeltaTable, new: &Schema) -> Result<Option<Schema>, Cause> {
    let old = table_arrow_schema(table)?;
    let fields = merge_fields(old.fields(), new.fields());
    Ok((fields != *old.fields()).then(|| Schema::new(fields)))
}

fn merge_fields(old: &arrow_schema::Fields, new: &arrow_schema::Fields) -> arrow_schema::Fields {
    use arrow_schema::Field;
    let mut out: Vec<Arc<Field>> = old
        .iter()
        .map(|f| match (f.data_type(), new.find(f.name())) {
            (DataType::Struct(of), Some((_, n))) => match n.data_type() {
                DataType::Struct(nf) => Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::Struct(merge_fields(of, nf))),
                ),
                _ => Arc::clone(f),
            },
            _ => Arc::clone(f),
        })
        .collect();
    for n in new.iter() {
        if old.find(n.name()).is_none() {
            out.push(Arc::new(n.as_ref().clone().with_nullable(true)));
        }
    }
    out.into()
}

/// Type equality that ignores what Delta does not keep: field names of list
/// items, nullability, the spelling of the UTC time zone.
fn same_kind(a: &DataType, b: &DataType) -> bool {
    use DataType as D;
    match (a, b) {
        (D::Timestamp(u1, t1), D::Timestamp(u2, t2)) => u1 == u2 && t1.is_some() == t2.is_some(),
        (D::List(x), D::List(y))
        | (D::LargeList(x), D::LargeList(y))
        | (D::List(x), D::LargeList(y))
        | (D::LargeList(x), D::List(y)) => same_kind(x.data_type(), y.data_type()),
        (D::Struct(x), D::Struct(y)) => x.iter().all(|fx| {
            y.iter()
                .find(|fy| fy.name() == fx.name())
                .is_none_or(|fy| same_kind(fx.data_type(), fy.data_type()))
        }),
        (D::Utf8 | D::LargeUtf8 | D::Utf8View, D::Utf8 | D::LargeUtf8 | D::Utf8View) => true,
        (
            D::Binary | D::LargeBinary | D::BinaryView,
            D::Binary | D::LargeBinary | D::BinaryView,
        ) => true,
        _ => a == b,
    }
}

fn show(t: &DataType) -> String {
    match t {
        DataType::Int64 => "bigint (integer)".into(),
        DataType::Float64 => "double (number)".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Timestamp(_, _) => "timestamp (date-time)".into(),
        DataType::Date32 => "date".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, TimeUnit};

    #[test]
    fn kinds() {
        let utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let z = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        assert!(same_kind(&utc, &z));
        let l1 = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        let l2 = DataType::List(Arc::new(Field::new("element", DataType::Utf8, false)));
        assert!(same_kind(&l1, &l2));
        assert!(!same_kind(&DataType::Int64, &DataType::Utf8));
    }
}
