//! Arrow IPC streams as a source (`inlet write`): what a DataFrame library,
//! DuckDB or any other program hands over, read one message at a time,
//! made into the plain types of [`types`] and cut into chunks of at most
//! [`CHUNK_ROWS`] rows, so memory holds one message and never the stream.

pub mod types;

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_schema::{ArrowError, Field, Schema, SchemaRef};

use crate::schema::HeaderFormat;

/// Rows per chunk handed to the tables (a slice: no copy).
pub const CHUNK_ROWS: usize = 65_536;

/// Errors reading an Arrow stream.
#[derive(Debug, thiserror::Error)]
pub enum ArrowInputError {
    /// Nothing came.
    #[error(
        "the input is empty; send an Arrow IPC stream (pyarrow.ipc.new_stream, polars write_ipc_stream)"
    )]
    Empty,
    /// The bytes are not an IPC stream.
    #[error(
        "the input is not an Arrow IPC stream ({source}); send the IPC stream format (pyarrow.ipc.new_stream, polars write_ipc_stream), not the IPC file format, Feather or Parquet"
    )]
    NotAStream {
        /// Cause.
        #[source]
        source: ArrowError,
    },
    /// A message of the stream is broken or cut short.
    #[error("record batch {batch} of the Arrow stream: {source}")]
    Read {
        /// 1-based batch number.
        batch: u64,
        /// Cause.
        #[source]
        source: ArrowError,
    },
    /// A column no table can hold.
    #[error(transparent)]
    Unsupported(#[from] types::Unsupported),
    /// A batch could not be made plain (a type pair arrow-cast lacks).
    #[error("record batch {batch}: converting its columns to the table's types: {source}")]
    Convert {
        /// 1-based batch number.
        batch: u64,
        /// Cause.
        #[source]
        source: ArrowError,
    },
    /// Renaming made two columns one.
    #[error(
        "columns '{first}' and '{second}' are both '{name}' after column_header_format; rename one"
    )]
    Duplicate {
        /// The name both have.
        name: String,
        /// The first column as sent.
        first: String,
        /// The second column as sent.
        second: String,
    },
}

/// An Arrow IPC stream being read.
pub struct ArrowInput {
    reader: StreamReader<BufReader<Box<dyn Read + Send>>>,
    schema: SchemaRef,
    /// The batch being cut into chunks, and the next row to hand out.
    current: Option<(RecordBatch, usize)>,
    batches: u64,
}

impl ArrowInput {
    /// Reads the stream's schema; columns are renamed by `headers`.
    pub fn new(
        input: Box<dyn Read + Send>,
        headers: HeaderFormat,
    ) -> Result<Self, ArrowInputError> {
        let mut input = BufReader::with_capacity(1 << 16, input);
        let first = input.fill_buf().map_err(|e| ArrowInputError::NotAStream {
            source: ArrowError::IoError("reading the input".into(), e),
        })?;
        if first.is_empty() {
            return Err(ArrowInputError::Empty);
        }
        let reader = StreamReader::try_new(input, None)
            .map_err(|source| ArrowInputError::NotAStream { source })?;
        let sent = reader.schema();
        let renamed = rename(&sent, headers)?;
        let schema = types::plain_schema(&renamed)?;
        Ok(ArrowInput {
            reader,
            schema,
            current: None,
            batches: 0,
        })
    }

    /// The rows' schema, as the tables receive it.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The next chunk of rows (None at the end of the stream).
    pub fn next_chunk(&mut self) -> Result<Option<RecordBatch>, ArrowInputError> {
        loop {
            if let Some((batch, at)) = &mut self.current {
                if *at < batch.num_rows() {
                    let n = CHUNK_ROWS.min(batch.num_rows() - *at);
                    let chunk = batch.slice(*at, n);
                    *at += n;
                    return Ok(Some(chunk));
                }
                self.current = None;
            }
            let Some(next) = self.reader.next() else {
                return Ok(None);
            };
            self.batches += 1;
            let batch = self.batches;
            let sent = next.map_err(|source| ArrowInputError::Read { batch, source })?;
            let plain = types::to_plain(&sent, &self.schema)
                .map_err(|source| ArrowInputError::Convert { batch, source })?;
            self.current = Some((plain, 0));
        }
    }
}

fn rename(schema: &Schema, headers: HeaderFormat) -> Result<Schema, ArrowInputError> {
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let mut fields = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let name = headers.apply(f.name());
        if let Some(first) = seen.insert(name.clone(), f.name().clone()) {
            return Err(ArrowInputError::Duplicate {
                name,
                first,
                second: f.name().clone(),
            });
        }
        fields.push(Arc::new(Field::clone(f).with_name(name)));
    }
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_ipc::writer::StreamWriter;

    fn stream(batches: &[RecordBatch]) -> Vec<u8> {
        let mut w = StreamWriter::try_new(Vec::new(), &batches[0].schema()).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn rows(n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "Id",
                Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef,
            ),
            (
                "Name",
                Arc::new(StringArray::from_iter_values((0..n).map(|i| i.to_string()))),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn a_big_batch_is_handed_out_in_chunks_and_every_row_once() {
        let n = CHUNK_ROWS as i64 * 2 + 17;
        let bytes = stream(&[rows(n), rows(5)]);
        let mut input =
            ArrowInput::new(Box::new(std::io::Cursor::new(bytes)), HeaderFormat::Lower).unwrap();
        assert_eq!(input.schema().field(0).name(), "id");
        let mut sizes = Vec::new();
        let mut sum = 0i64;
        while let Some(c) = input.next_chunk().unwrap() {
            sizes.push(c.num_rows());
            let ids = c.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            sum += ids.iter().flatten().sum::<i64>();
        }
        assert_eq!(sizes, [CHUNK_ROWS, CHUNK_ROWS, 17, 5]);
        assert_eq!(sum, (0..n).sum::<i64>() + (0..5).sum::<i64>());
    }

    #[test]
    fn empty_input_and_other_formats_say_what_to_send() {
        let empty = ArrowInput::new(
            Box::new(std::io::Cursor::new(Vec::new())),
            HeaderFormat::None,
        );
        assert!(matches!(empty, Err(ArrowInputError::Empty)));
        let parquet = b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02".to_vec();
        let e = ArrowInput::new(Box::new(std::io::Cursor::new(parquet)), HeaderFormat::None)
            .err()
            .unwrap();
        assert!(e.to_string().contains("IPC stream format"), "{e}");
    }

    #[test]
    fn a_stream_cut_short_names_the_batch() {
        let mut bytes = stream(&[rows(10), rows(10)]);
        bytes.truncate(bytes.len() - 40);
        let mut input =
            ArrowInput::new(Box::new(std::io::Cursor::new(bytes)), HeaderFormat::None).unwrap();
        assert!(input.next_chunk().unwrap().is_some());
        let e = input.next_chunk().unwrap_err();
        assert!(matches!(e, ArrowInputError::Read { batch: 2, .. }), "{e}");
    }
}
