//! The Arrow types a caller may send, made into the ones inlet's tables
//! hold. Every DataFrame library has its own physical forms of one logical
//! type (pandas categoricals are dictionaries, Polars strings are views,
//! pyarrow may use large strings); the tables see one form each, so a
//! column's type in the lake does not depend on which library wrote it.
//! Nothing is inferred and nothing lossy is done: what has no place in a
//! lake table (durations, intervals, unions) is refused with what to do.
//!
//! | sent | written as |
//! |---|---|
//! | Dictionary(k, v), RunEndEncoded(k, v) | v |
//! | LargeUtf8, Utf8View | Utf8 |
//! | LargeBinary, BinaryView | Binary |
//! | LargeList, ListView, LargeListView, FixedSizeList | List |
//! | Decimal32, Decimal64 | Decimal128 (same precision and scale) |
//! | Float16 | Float32 |
//! | Date64 | Date32 |
//! | Null (a column with no value) | Utf8, all null |

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef};

/// A column of a type no lake table holds.
#[derive(Debug, thiserror::Error)]
#[error("column '{column}' is {ty}, which Parquet and Delta tables cannot hold as such; {fix}")]
pub struct Unsupported {
    /// Column (dotted path for nested fields).
    pub column: String,
    /// Its Arrow type.
    pub ty: String,
    /// What to do.
    pub fix: &'static str,
}

/// The plain form of `schema` (names as given; field metadata kept, so
/// extension types such as `arrow.uuid` survive).
pub fn plain_schema(schema: &Schema) -> Result<SchemaRef, Unsupported> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| plain_field(f, f.name()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn plain_field(f: &Field, path: &str) -> Result<Field, Unsupported> {
    let ty = plain_type(f.data_type(), path)?;
    let nullable = f.is_nullable() || matches!(f.data_type(), DataType::Null);
    Ok(Field::new(f.name(), ty, nullable).with_metadata(f.metadata().clone()))
}

fn child(f: &FieldRef, path: &str) -> Result<FieldRef, Unsupported> {
    plain_field(f, &format!("{path}.{}", f.name())).map(Arc::new)
}

fn plain_type(ty: &DataType, path: &str) -> Result<DataType, Unsupported> {
    use DataType as D;
    let refuse = |fix| {
        Err(Unsupported {
            column: path.to_string(),
            ty: ty.to_string(),
            fix,
        })
    };
    Ok(match ty {
        D::Dictionary(_, v) => plain_type(v, path)?,
        D::RunEndEncoded(_, v) => plain_type(v.data_type(), path)?,
        D::LargeUtf8 | D::Utf8View => D::Utf8,
        D::LargeBinary | D::BinaryView => D::Binary,
        D::List(f)
        | D::LargeList(f)
        | D::ListView(f)
        | D::LargeListView(f)
        | D::FixedSizeList(f, _) => D::List(child(f, path)?),
        D::Struct(fs) => D::Struct(
            fs.iter()
                .map(|f| child(f, path))
                .collect::<Result<Fields, _>>()?,
        ),
        D::Map(entries, sorted) => D::Map(child(entries, path)?, *sorted),
        D::Decimal32(p, s) | D::Decimal64(p, s) => D::Decimal128(*p, *s),
        D::Float16 => D::Float32,
        D::Date64 => D::Date32,
        D::Null => D::Utf8,
        D::Duration(_) => {
            return refuse("cast it to an integer count (e.g. microseconds) or to text first");
        }
        D::Interval(_) => return refuse("cast it to text or to a number of units first"),
        D::Union(..) => return refuse("split it into one column per variant first"),
        other => other.clone(),
    })
}

/// `batch` in `schema` (the [`plain_schema`] of the batch's own schema):
/// columns already plain are kept as they are, the others are cast.
pub fn to_plain(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| plain_array(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

fn plain_array(a: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    if a.data_type() == to {
        return Ok(Arc::clone(a));
    }
    arrow_cast::cast(a, to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type;
    use arrow_array::{Array, DictionaryArray, LargeStringArray, StringArray, StringViewArray};

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn every_library_s_strings_become_one_type() {
        let dict: DictionaryArray<Int32Type> = vec![Some("a"), None, Some("b"), Some("a")]
            .into_iter()
            .collect();
        let b = batch(vec![
            ("cat", Arc::new(dict) as ArrayRef),
            (
                "large",
                Arc::new(LargeStringArray::from(vec![
                    Some("x"),
                    None,
                    Some("y"),
                    Some("z"),
                ])),
            ),
            (
                "view",
                Arc::new(StringViewArray::from(vec![
                    Some("p"),
                    Some("q"),
                    None,
                    Some("r"),
                ])),
            ),
        ]);
        let schema = plain_schema(&b.schema()).unwrap();
        assert!(
            schema
                .fields()
                .iter()
                .all(|f| f.data_type() == &DataType::Utf8)
        );
        let out = to_plain(&b, &schema).unwrap();
        let cat = out
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            cat.iter().collect::<Vec<_>>(),
            [Some("a"), None, Some("b"), Some("a")]
        );
        let view = out
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(view.null_count(), 1);
        assert_eq!(view.value(3), "r");
    }

    #[test]
    fn nested_types_are_made_plain_inside_lists_and_structs() {
        let inner = Field::new(
            "tags",
            DataType::LargeList(Arc::new(Field::new("item", DataType::Utf8View, true))),
            true,
        );
        let s = Schema::new(vec![Field::new(
            "doc",
            DataType::Struct(vec![inner].into()),
            true,
        )]);
        let plain = plain_schema(&s).unwrap();
        let want = DataType::Struct(
            vec![Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                true,
            )]
            .into(),
        );
        assert_eq!(plain.field(0).data_type(), &want);
    }

    #[test]
    fn durations_are_refused_with_the_column_and_a_fix() {
        let s = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new(
                "wait",
                DataType::Duration(arrow_schema::TimeUnit::Microsecond),
                true,
            ),
        ]);
        let e = plain_schema(&s).unwrap_err();
        assert_eq!(e.column, "wait");
        assert!(e.to_string().contains("cast it to an integer"), "{e}");
    }

    #[test]
    fn uuid_extension_metadata_is_kept() {
        let meta = [("ARROW:extension:name".to_string(), "arrow.uuid".to_string())];
        let s = Schema::new(vec![
            Field::new("u", DataType::FixedSizeBinary(16), true)
                .with_metadata(meta.into_iter().collect()),
        ]);
        let plain = plain_schema(&s).unwrap();
        assert_eq!(
            plain
                .field(0)
                .metadata()
                .get("ARROW:extension:name")
                .map(String::as_str),
            Some("arrow.uuid")
        );
    }
}
