//! Schema evolution rules before a commit: new nullable columns are fine
//! (they are merged into the table); a column whose type changed, or a
//! required table column the new data lacks, is an error naming the column,
//! the table's type and the new type.

use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use deltalake::{DeltaTable, DeltaTableError};

use super::Cause;

/// The table's current schema as Arrow.
pub fn table_arrow_schema(table: &DeltaTable) -> Result<Arc<Schema>, DeltaTableError> {
    Ok(table.snapshot()?.snapshot().arrow_schema())
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
