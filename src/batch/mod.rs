//! Per-stream buffers that turn records into Arrow RecordBatches, and the
//! flush policy (bytes, rows, age) that bounds memory.

pub mod bits;
pub mod columns;
pub mod decode;
pub mod rows;
mod seen;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::scan::{Scanner, SyntaxError};
use crate::schema::StreamSchema;
use crate::singer::RecordMeta;
pub use decode::{Decoder, RecordError};
pub use rows::{RowDecoder, RowSpec};

/// Rows per chunk of a batch (see [`StreamBuffer::cut_chunk_if_full`]).
/// Small enough that the writer starts encoding soon after the input
/// starts, and has little left to do when it ends.
pub const CHUNK_ROWS: usize = 16_384;
/// Input bytes per chunk: wide records make smaller chunks.
const CHUNK_BYTES: usize = 8 << 20;
/// Appended chunks smaller than this are merged (see [`StreamBuffer::append`]).
const SMALL_CHUNK_ROWS: usize = 4_096;

/// When a stream's buffer is flushed.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Input bytes buffered.
    pub max_bytes: usize,
    /// Rows buffered (0 = no limit).
    pub max_rows: usize,
    /// Age of the oldest buffered record.
    pub max_age: Duration,
}

/// Which metadata columns to add.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// `{prefix}_created_at` / `{prefix}_updated_at`, or None when off.
    pub prefix: Option<String>,
    /// Add `_sdc_table_version` (RECORD `version`, for ACTIVATE_VERSION on Delta).
    pub table_version: bool,
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// One stream's schema and buffered rows.
pub struct StreamBuffer {
    /// Compiled schema.
    pub schema: Arc<StreamSchema>,
    /// Arrow schema of the sealed batches (data + metadata columns).
    pub arrow: SchemaRef,
    /// Builders of the open chunk (records decoded on this thread).
    open: RowDecoder,
    /// Finished chunks of data (+ extracted, version) arrays, in input order.
    chunks: Vec<Vec<ArrayRef>>,
    /// Small appended chunks that come after `chunks`, merged once they add up.
    small: Vec<Vec<ArrayRef>>,
    small_rows: usize,
    /// Rows in `chunks`.
    ready_rows: usize,
    /// Input bytes of the records in `open`.
    open_bytes: usize,
    stamp_cols: usize,
    /// The batch's `_created_at` / `_updated_at` value, fixed when its first
    /// rows are taken.
    stamp_us: Option<i64>,
    rows: usize,
    bytes: usize,
    since: Option<Instant>,
}

impl StreamBuffer {
    /// A buffer for `stream` with a compiled schema.
    pub fn new(
        stream: &str,
        schema: Arc<StreamSchema>,
        meta: &Metadata,
        headers: crate::schema::HeaderFormat,
        validate: bool,
    ) -> Self {
        let mut fields: Vec<Field> = schema.root.fields.iter().map(|f| f.arrow_field()).collect();
        let taken = |fields: &Vec<Field>, n: &str| fields.iter().any(|f| f.name() == n);
        let mut extracted = false;
        let mut stamp_cols = 0;
        if let Some(prefix) = &meta.prefix {
            for suffix in ["created_at", "updated_at"] {
                let name = headers.apply(&format!("{prefix}_{suffix}"));
                if !taken(&fields, &name) {
                    fields.push(Field::new(name, ts_type(), false));
                    stamp_cols += 1;
                }
            }
            let name = headers.apply("_sdc_extracted_at");
            if !taken(&fields, &name) && stamp_cols == 2 {
                fields.push(Field::new(name, ts_type(), true));
                extracted = true;
            }
        }
        let mut versions = false;
        let name = headers.apply("_sdc_table_version");
        if meta.table_version && meta.prefix.is_some() && !taken(&fields, &name) {
            fields.push(Field::new(name, DataType::Int64, true));
            versions = true;
        }
        let arrow: SchemaRef = Arc::new(Schema::new(fields));
        let spec = RowSpec {
            stream: stream.to_string(),
            schema: schema.clone(),
            arrow: arrow.clone(),
            extracted,
            versions,
            validate,
            warned: Default::default(),
        };
        StreamBuffer {
            open: RowDecoder::new(Arc::new(spec)),
            chunks: Vec::new(),
            small: Vec::new(),
            small_rows: 0,
            ready_rows: 0,
            open_bytes: 0,
            arrow,
            schema,
            stamp_cols,
            stamp_us: None,
            rows: 0,
            bytes: 0,
            since: None,
        }
    }

    /// What a decoding thread needs to decode this stream's records.
    pub fn spec(&self) -> &Arc<RowSpec> {
        self.open.spec()
    }

    /// Rows of the current batch (including those already taken by
    /// [`StreamBuffer::take_ready`]).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Appends one record (a JSON object). On error nothing of the record
    /// stays buffered.
    pub fn push_record(&mut self, record: &str) -> Result<(), RecordError> {
        // a &str is checked UTF-8, as the column builders rely on
        self.push(record.as_bytes(), RecordMeta::default(), record.len() + 1)
    }

    /// Appends one record (raw JSON object) with its `time_extracted` and
    /// `version`. On error nothing of the record stays buffered.
    pub(crate) fn push(
        &mut self,
        record: &[u8],
        meta: RecordMeta<'_>,
        line_bytes: usize,
    ) -> Result<(), RecordError> {
        let mut sc = Scanner::new(record);
        let (time_extracted, version) = (meta.time_extracted, meta.version);
        self.push_from(&mut sc, line_bytes, |sc| {
            sc.end().map(|_| RecordMeta {
                time_extracted,
                version,
            })
        })
    }

    /// Decodes the record object at the scanner's cursor (single pass over
    /// the line); `tail` reads the rest of the line and returns
    /// `time_extracted`. On error nothing of the record stays buffered.
    pub(crate) fn push_from<'a>(
        &mut self,
        sc: &mut Scanner<'a>,
        line_bytes: usize,
        tail: impl FnOnce(&mut Scanner<'a>) -> Result<RecordMeta<'a>, SyntaxError>,
    ) -> Result<(), RecordError> {
        self.open.push_from(sc, tail)?;
        self.open_bytes += line_bytes;
        self.counted(1, line_bytes);
        Ok(())
    }

    /// Appends `rows` rows decoded elsewhere (arrays as
    /// [`RowDecoder::finish`] returns them, for this buffer's spec) from
    /// `line_bytes` of input.
    pub fn append(
        &mut self,
        arrays: Vec<ArrayRef>,
        rows: usize,
        line_bytes: usize,
    ) -> Result<(), ArrowError> {
        if rows == 0 {
            return Ok(());
        }
        if arrays.is_empty() {
            return Err(ArrowError::SchemaError(
                "the stream has no columns to write (its SCHEMA declares no properties)".into(),
            ));
        }
        // rows decoded here before these come first
        let open = self.open.rows();
        if open > 0 {
            let decoded = self.open.finish()?;
            self.open_bytes = 0;
            self.add_piece(decoded, open)?;
        }
        self.add_piece(arrays, rows)?;
        self.counted(rows, line_bytes);
        Ok(())
    }

    /// Puts finished arrays after everything buffered. Small pieces are
    /// gathered and merged: thousands of tiny batches (a tap with a STATE
    /// after every record) would cost the writer more than one copy.
    fn add_piece(&mut self, arrays: Vec<ArrayRef>, rows: usize) -> Result<(), ArrowError> {
        if rows < SMALL_CHUNK_ROWS {
            self.small.push(arrays);
            self.small_rows += rows;
            if self.small_rows >= SMALL_CHUNK_ROWS {
                self.merge_small()?;
            }
        } else {
            self.merge_small()?;
            self.chunks.push(arrays);
            self.ready_rows += rows;
        }
        Ok(())
    }

    /// Turns the gathered small chunks into one chunk.
    fn merge_small(&mut self) -> Result<(), ArrowError> {
        let small = std::mem::take(&mut self.small);
        self.ready_rows += std::mem::take(&mut self.small_rows);
        match small.len() {
            0 => {}
            1 => self.chunks.extend(small),
            _ => {
                let merged = (0..small[0].len())
                    .map(|c| {
                        let parts: Vec<&dyn arrow_array::Array> =
                            small.iter().map(|a| a[c].as_ref()).collect();
                        arrow_select::concat::concat(&parts)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.chunks.push(merged);
            }
        }
        Ok(())
    }

    fn counted(&mut self, rows: usize, bytes: usize) {
        self.rows += rows;
        self.bytes += bytes;
        if self.since.is_none() {
            self.since = Some(Instant::now());
        }
    }

    /// True when the size limits (bytes, rows) are reached; checked per record.
    #[inline]
    pub fn is_over_size(&self, l: &Limits) -> bool {
        self.bytes >= l.max_bytes || (l.max_rows > 0 && self.rows >= l.max_rows)
    }

    /// True when a limit (size or age) says this buffer must be flushed now.
    pub fn is_full(&self, l: &Limits) -> bool {
        self.rows > 0
            && (self.bytes >= l.max_bytes
                || (l.max_rows > 0 && self.rows >= l.max_rows)
                || self.since.is_some_and(|t| t.elapsed() >= l.max_age))
    }

    /// Input bytes buffered.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Closes the open chunk once it holds [`CHUNK_ROWS`] rows or
    /// `CHUNK_BYTES` of input, so column buffers stay a few MB: the allocator
    /// then reuses them from chunk to chunk instead of mapping fresh zeroed
    /// pages, and the writer can encode them while the batch fills.
    pub fn cut_chunk_if_full(&mut self) -> Result<(), ArrowError> {
        if self.open.rows() >= CHUNK_ROWS || self.open_bytes >= CHUNK_BYTES {
            self.cut_chunk()?;
        }
        Ok(())
    }

    fn cut_chunk(&mut self) -> Result<(), ArrowError> {
        self.merge_small()?;
        let n = self.open.rows();
        if n > 0 {
            self.chunks.push(self.open.finish()?);
            self.ready_rows += n;
        }
        self.open_bytes = 0;
        Ok(())
    }

    /// Rows in finished chunks, ready for [`StreamBuffer::take_ready`].
    pub fn ready_rows(&self) -> usize {
        self.ready_rows
    }

    /// Takes the finished chunks as RecordBatches while the batch goes on
    /// filling (its limits still count them). The batch's stamp columns
    /// hold `now_us` of the first call.
    pub fn take_ready(&mut self, now_us: i64) -> Result<Vec<RecordBatch>, ArrowError> {
        let now_us = *self.stamp_us.get_or_insert(now_us);
        let data_cols = self.schema.root.fields.len();
        let mut out = Vec::with_capacity(self.chunks.len());
        let longest = self.chunks.iter().map(|a| a.first().map_or(0, |a| a.len()));
        // one stamp array, sliced for every chunk
        let stamp: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![now_us; longest.max().unwrap_or(0)])
                .with_timezone("UTC"),
        );
        self.ready_rows = 0;
        for mut arrays in std::mem::take(&mut self.chunks) {
            let n = arrays.first().map_or(0, |a| a.len());
            for i in 0..self.stamp_cols {
                arrays.insert(data_cols + i, stamp.slice(0, n));
            }
            out.push(RecordBatch::try_new(self.arrow.clone(), arrays)?);
        }
        Ok(out)
    }

    /// Takes the rest of the batch's rows as RecordBatches (empty when
    /// nothing is left) and starts the next batch; one flush, one schema.
    pub fn seal(&mut self, now_us: i64) -> Result<Vec<RecordBatch>, ArrowError> {
        self.cut_chunk()?;
        let out = self.take_ready(now_us)?;
        self.rows = 0;
        self.bytes = 0;
        self.since = None;
        self.stamp_us = None;
        Ok(out)
    }
}

/// A buffer for `{"id": integer}` records of `stream`, with metadata
/// columns under `prefix` (tests).
#[cfg(test)]
pub(crate) fn id_buffer(stream: &str, prefix: Option<&str>) -> StreamBuffer {
    use crate::schema::HeaderFormat;
    let schema = serde_json::json!({"type": "object", "properties": {"id": {"type": "integer"}}});
    let s = Arc::new(StreamSchema::compile(schema, HeaderFormat::None, true).unwrap());
    let meta = Metadata {
        prefix: prefix.map(str::to_string),
        table_version: false,
    };
    StreamBuffer::new(stream, s, &meta, HeaderFormat::None, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Int64Array};

    #[test]
    fn batches_are_cut_into_chunks_and_keep_every_row() {
        let mut b = id_buffer("s", Some("_inlet"));
        let n = CHUNK_ROWS + 10;
        for i in 0..n {
            b.push(
                format!(r#"{{"id": {i}}}"#).as_bytes(),
                Default::default(),
                10,
            )
            .unwrap();
            b.cut_chunk_if_full().unwrap();
            // a rejected record right after a cut leaves nothing behind
            assert!(b.push(br#"{"id": "x"}"#, Default::default(), 10).is_err());
        }
        let batches = b.seal(0).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), n);
        let last = batches[1]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(last.value(last.len() - 1), n as i64 - 1);
        assert_eq!(
            batches[1].num_columns(),
            4,
            "id, two stamps, _sdc_extracted_at"
        );
        assert!(b.seal(0).unwrap().is_empty());
    }

    #[test]
    fn rows_taken_early_still_count_and_share_the_batch_stamp() {
        let mut b = id_buffer("s", Some("_inlet"));
        // wide lines: the chunk is cut by input bytes long before CHUNK_ROWS
        let line = CHUNK_BYTES / 4;
        for i in 0..5 {
            b.push(
                format!(r#"{{"id": {i}}}"#).as_bytes(),
                Default::default(),
                line,
            )
            .unwrap();
            b.cut_chunk_if_full().unwrap();
        }
        assert_eq!(b.ready_rows(), 4);
        let early = b.take_ready(111).unwrap();
        assert_eq!(early.iter().map(RecordBatch::num_rows).sum::<usize>(), 4);
        assert_eq!((b.ready_rows(), b.rows(), b.bytes()), (0, 5, 5 * line));
        let limits = Limits {
            max_bytes: 5 * line,
            max_rows: 0,
            max_age: Duration::from_secs(3600),
        };
        assert!(
            b.is_over_size(&limits),
            "taken rows still count towards the limits"
        );
        let rest = b.seal(222).unwrap();
        assert_eq!(rest.len(), 1);
        let stamp = |batch: &RecordBatch| {
            let c = batch.column(1).as_any();
            c.downcast_ref::<TimestampMicrosecondArray>()
                .unwrap()
                .value(0)
        };
        assert_eq!((stamp(&early[0]), stamp(&rest[0])), (111, 111));
        // the next batch gets its own stamp
        b.push(br#"{"id": 9}"#, Default::default(), 10).unwrap();
        assert_eq!(stamp(&b.seal(333).unwrap()[0]), 333);
    }

    #[test]
    fn small_appended_pieces_are_merged_before_they_are_taken() {
        let mut b = id_buffer("s", None);
        let piece = |from: i64| -> Vec<ArrayRef> {
            vec![Arc::new(Int64Array::from_iter_values(from..from + 1000))]
        };
        for k in 0..4 {
            b.append(piece(k * 1001), 1000, 100).unwrap();
            // a record decoded here, between two decoded pieces
            b.push(
                format!(r#"{{"id": {}}}"#, k * 1001 + 1000).as_bytes(),
                Default::default(),
                10,
            )
            .unwrap();
        }
        assert_eq!(b.ready_rows(), 0, "4003 rows: still gathering");
        b.append(piece(4004), 1000, 100).unwrap();
        assert_eq!(b.ready_rows(), 5004, "merged once past SMALL_CHUNK_ROWS");
        let taken = b.take_ready(1).unwrap();
        assert_eq!(taken.len(), 1);
        let rest = b.seal(1).unwrap();
        let ids: Vec<i64> = taken
            .iter()
            .chain(&rest)
            .flat_map(|t| {
                let c = t.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                c.values().to_vec()
            })
            .collect();
        assert_eq!(ids, (0..5004).collect::<Vec<_>>(), "input order kept");
    }
}
