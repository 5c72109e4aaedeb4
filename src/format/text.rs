//! CSV and JSONL encoding on top of arrow-csv and arrow-json.
//!
//! Timestamps use the writers' default, RFC 3339 with `Z` for UTC (values
//! are normalised to UTC when decoded); a custom strftime pattern would be
//! re-parsed for every value.

use std::io::Write;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, RecordBatch, StringArray};
use arrow_json::writer::{
    Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder, WriterBuilder,
};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Schema};

/// Writes JSON-text columns as embedded JSON instead of quoted strings.
#[derive(Debug)]
struct RawJson;

struct RawEncoder<'a>(&'a StringArray);

impl Encoder for RawEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.value(idx).as_bytes());
    }
}

/// A UUID as its canonical text, `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`.
struct UuidEncoder<'a>(&'a FixedSizeBinaryArray);

impl Encoder for UuidEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        out.push(b'"');
        out.extend_from_slice(uuid_text(self.0.value(idx)).as_bytes());
        out.push(b'"');
    }
}

/// Whether `f` holds UUIDs (16 bytes with the canonical `arrow.uuid` name).
pub(crate) fn is_uuid(f: &Field) -> bool {
    matches!(f.data_type(), DataType::FixedSizeBinary(16))
        && f.metadata().get("ARROW:extension:name").map(String::as_str) == Some("arrow.uuid")
}

/// A UUID's canonical text (empty for a value that is not 16 bytes).
pub(crate) fn uuid_text(b: &[u8]) -> String {
    match uuid::Uuid::from_slice(b) {
        Ok(u) => u.hyphenated().to_string(),
        Err(_) => String::new(),
    }
}

impl EncoderFactory for RawJson {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        if is_uuid(field) {
            let Some(u) = array.as_any().downcast_ref::<FixedSizeBinaryArray>() else {
                return Ok(None);
            };
            return Ok(Some(NullableEncoder::new(
                Box::new(UuidEncoder(u)),
                u.nulls().cloned(),
            )));
        }
        if !super::is_json_text(field) {
            return Ok(None);
        }
        let Some(strings) = array.as_any().downcast_ref::<StringArray>() else {
            return Ok(None);
        };
        Ok(Some(NullableEncoder::new(
            Box::new(RawEncoder(strings)),
            strings.nulls().cloned(),
        )))
    }
}

fn json_writer<W: Write>(w: W, explicit_nulls: bool) -> arrow_json::Writer<W, LineDelimited> {
    WriterBuilder::new()
        .with_explicit_nulls(explicit_nulls)
        .with_encoder_factory(Arc::new(RawJson))
        .build(w)
}

/// One JSON object per line; nulls written as `null`.
pub fn write_jsonl(batch: &RecordBatch, w: &mut dyn Write) -> Result<(), ArrowError> {
    let mut jw = json_writer(w, true);
    jw.write(batch)?;
    jw.finish()
}

/// CSV rows (after a header row when `header`); struct and list cells hold JSON text.
pub fn write_csv(
    batch: &RecordBatch,
    delimiter: u8,
    header: bool,
    w: &mut dyn Write,
) -> Result<(), ArrowError> {
    let batch = nested_as_json_text(batch)?;
    arrow_csv::WriterBuilder::new()
        .with_header(header)
        .with_delimiter(delimiter)
        .build(w)
        .write(&batch)
}

/// Replaces struct and list columns by Utf8 columns of their JSON text,
/// and UUID columns by their canonical text.
fn nested_as_json_text(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| is_nested(f.data_type()) || is_uuid(f))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (f, a) in batch.schema().fields().iter().zip(batch.columns()) {
        if is_nested(f.data_type()) {
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            arrays.push(Arc::new(column_json_text(f, a)?));
        } else if let (true, Some(u)) = (
            is_uuid(f),
            a.as_any().downcast_ref::<FixedSizeBinaryArray>(),
        ) {
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            let text: StringArray = u.iter().map(|v| v.map(uuid_text)).collect();
            arrays.push(Arc::new(text));
        } else {
            fields.push(f.as_ref().clone());
            arrays.push(a.clone());
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
}

fn is_nested(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_)
    )
}

/// Encodes one column through arrow-json and cuts each `{"name":VALUE}` line down to VALUE.
fn column_json_text(f: &FieldRef, a: &ArrayRef) -> Result<StringArray, ArrowError> {
    let one = RecordBatch::try_new(Arc::new(Schema::new(vec![f.clone()])), vec![a.clone()])?;
    let mut buf = Vec::with_capacity(a.get_array_memory_size());
    let mut jw = json_writer(&mut buf, true);
    jw.write(&one)?;
    jw.finish()?;
    drop(jw);
    let prefix_len = serde_json::to_string(f.name())
        .map_err(|e| ArrowError::JsonError(e.to_string()))?
        .len()
        + 2;
    let text = std::str::from_utf8(&buf).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    Ok(text
        .lines()
        .map(|l| l.get(prefix_len..l.len() - 1).filter(|v| *v != "null"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        BooleanArray, Int64Array, ListArray, TimestampMicrosecondArray, types::Int64Type,
    };

    fn batch() -> RecordBatch {
        let mut json_meta = std::collections::HashMap::new();
        json_meta.insert(
            "ARROW:extension:name".to_string(),
            super::super::JSON_EXTENSION.to_string(),
        );
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            None,
        ]);
        let fields = vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ok", DataType::Boolean, true),
            Field::new(
                "at",
                DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("xs", list.data_type().clone(), true),
            Field::new("doc", DataType::Utf8, true).with_metadata(json_meta),
        ];
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(BooleanArray::from(vec![Some(false), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_577_836_800_000_000), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(list),
                Arc::new(StringArray::from(vec![Some(r#"{"a":[1,"x"]}"#), None])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn jsonl_keeps_types_and_embeds_json() {
        let mut out = Vec::new();
        write_jsonl(&batch(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["ok"], false);
        assert_eq!(first["at"], "2020-01-01T00:00:00Z");
        assert_eq!(first["xs"], serde_json::json!([1, 2]));
        assert_eq!(first["doc"]["a"][1], "x");
    }

    #[test]
    fn csv_writes_nested_as_json_text() {
        let mut out = Vec::new();
        write_csv(&batch(), b',', true, &mut out).unwrap();
        write_csv(&batch(), b',', false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "id,ok,at,xs,doc");
        assert_eq!(
            lines[1],
            r#"1,false,2020-01-01T00:00:00Z,"[1,2]","{""a"":[1,""x""]}""#
        );
        assert_eq!(lines[2], "2,,,,");
        assert_eq!(lines.len(), 5, "one header for all batches");
    }
}
