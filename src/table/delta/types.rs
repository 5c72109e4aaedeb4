//! What a Delta table can hold. Delta has no unsigned integers, no time of
//! day, no fixed-size binary and no decimal above 38 digits, and its schema
//! keeps field metadata: rows from a source that has these (a database
//! export) are mapped before they reach a data file.
//!
//! | Arrow | in Delta |
//! |---|---|
//! | FixedSizeBinary(16) marked `arrow.uuid` | string, canonical UUID text |
//! | other FixedSizeBinary | binary |
//! | Time32 / Time64 | string, `HH:MM:SS[.ffffff]` (as PostgreSQL prints it) |
//! | Decimal256 | string |
//! | UInt8 / UInt16 / UInt32 | Int16 / Int32 / Int64 |
//! | UInt64 | Decimal(20, 0) |
//! | Timestamp of any unit, with a time zone | Timestamp(µs, UTC) (`timestamp`: the same instants) |
//! | Timestamp of any unit, without | Timestamp(µs) (`timestamp_ntz`) |
//!
//! Nanoseconds (pandas' unit) are cut to the microsecond: Delta has no finer unit.
//!
//! Lists and structs are mapped element by element; field metadata is
//! dropped at every depth.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, ListArray, RecordBatch, StructArray};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::format::text::{is_uuid, uuid_text};

/// `schema` with every column as Delta can hold it.
pub fn delta_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema.fields().iter().map(|f| field(f)).collect::<Vec<_>>(),
    ))
}

fn field(f: &Field) -> Field {
    Field::new(f.name(), data_type(f), f.is_nullable())
}

fn data_type(f: &Field) -> DataType {
    use DataType as D;
    match f.data_type() {
        D::FixedSizeBinary(16) if is_uuid(f) => D::Utf8,
        D::FixedSizeBinary(_) => D::Binary,
        D::Time32(_) | D::Time64(_) | D::Decimal256(..) => D::Utf8,
        D::UInt8 => D::Int16,
        D::UInt16 => D::Int32,
        D::UInt32 => D::Int64,
        D::UInt64 => D::Decimal128(20, 0),
        // Delta's timestamp is an instant in UTC (Arrow's values are UTC whatever the zone)
        D::Timestamp(_, Some(_)) => D::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        D::Timestamp(_, None) => D::Timestamp(TimeUnit::Microsecond, None),
        D::List(i) | D::LargeList(i) => D::List(Arc::new(field(i))),
        D::Struct(fs) => D::Struct(fs.iter().map(|c| field(c)).collect::<Fields>()),
        d => d.clone(),
    }
}

/// `batch` in `schema` (from [`delta_schema`] of the batch's own schema).
pub fn to_delta(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let source = batch.schema();
    let cols = batch
        .columns()
        .iter()
        .zip(source.fields().iter().zip(schema.fields()))
        .map(|(c, (from, to))| array(c, from, to))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), cols)
}

fn array(a: &ArrayRef, from: &Field, to: &Field) -> Result<ArrayRef, ArrowError> {
    use DataType as D;
    match (from.data_type(), to.data_type()) {
        (f, t) if f == t => Ok(Arc::clone(a)),
        (D::FixedSizeBinary(16), D::Utf8) => {
            let b = downcast::<FixedSizeBinaryArray>(a)?;
            let text: arrow_array::StringArray = b.iter().map(|v| v.map(uuid_text)).collect();
            Ok(Arc::new(text))
        }
        (D::List(fi) | D::LargeList(fi), D::List(ti)) => {
            let a = match a.data_type() {
                D::LargeList(_) => arrow_cast::cast(a, &D::List(Arc::clone(fi)))?,
                _ => Arc::clone(a),
            };
            let list = downcast::<ListArray>(&a)?;
            let values = array(list.values(), fi, ti)?;
            Ok(Arc::new(ListArray::try_new(
                Arc::clone(ti),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?))
        }
        (D::Struct(ff), D::Struct(tf)) => {
            let s = downcast::<StructArray>(a)?;
            let cols = s
                .columns()
                .iter()
                .zip(ff.iter().zip(tf.iter()))
                .map(|(c, (f, t))| array(c, f, t))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                tf.clone(),
                cols,
                s.nulls().cloned(),
            )?))
        }
        (_, t) => arrow_cast::cast(a, t),
    }
}

fn downcast<T: 'static>(a: &ArrayRef) -> Result<&T, ArrowError> {
    a.as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| ArrowError::CastError(format!("unexpected array of type {}", a.data_type())))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow_array::cast::AsArray;
    use arrow_array::types::Time64MicrosecondType;
    use arrow_array::{Int32Array, PrimitiveArray};
    use arrow_buffer::OffsetBuffer;

    use super::*;

    fn uuid_field(name: &str) -> Field {
        Field::new(name, DataType::FixedSizeBinary(16), true).with_metadata(HashMap::from([(
            "ARROW:extension:name".to_string(),
            "arrow.uuid".to_string(),
        )]))
    }

    #[test]
    fn uuids_times_and_nested_values_become_what_delta_holds() {
        let id = [
            0xa0u8, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        let uuids =
            FixedSizeBinaryArray::try_from_sparse_iter_with_size([Some(id), None].into_iter(), 16)
                .unwrap();
        let times = PrimitiveArray::<Time64MicrosecondType>::from(vec![Some(37_230_000_001), None]);
        let item = Arc::new(uuid_field("item"));
        let list = ListArray::try_new(
            Arc::clone(&item),
            OffsetBuffer::from_lengths([2, 0]),
            Arc::new(
                FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    [Some(id), None].into_iter(),
                    16,
                )
                .unwrap(),
            ),
            None,
        )
        .unwrap();
        let schema = Arc::new(Schema::new(vec![
            uuid_field("id"),
            Field::new("at", DataType::Time64(TimeUnit::Microsecond), true),
            Field::new("ids", DataType::List(item), true),
            Field::new("n", DataType::Int32, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(uuids),
                Arc::new(times),
                Arc::new(list),
                Arc::new(Int32Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let target = delta_schema(&schema);
        let out = to_delta(&batch, &target).unwrap();
        let id_text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        assert_eq!(out.column(0).as_string::<i32>().value(0), id_text);
        assert!(out.column(0).is_null(1));
        assert_eq!(out.column(1).as_string::<i32>().value(0), "10:20:30.000001");
        let ids = out.column(2).as_list::<i32>();
        assert_eq!(ids.value(0).as_string::<i32>().value(0), id_text);
        assert!(ids.value(0).is_null(1));
        assert_eq!(ids.value(1).len(), 0);
        assert_eq!(out.schema().field(3).data_type(), &DataType::Int32);
        assert!(
            out.schema()
                .fields()
                .iter()
                .all(|f| f.metadata().is_empty())
        );
    }
}
