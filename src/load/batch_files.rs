//! BATCH messages (Meltano SDK): records in local files listed in a manifest,
//! as JSONL (optionally gzipped) or Parquet. Files are streamed, never read
//! whole: JSONL line by line, Parquet one record batch at a time turned into
//! JSON lines. Every record then goes through the same decoding and
//! validation as a RECORD line, so the SCHEMA decides the types whatever
//! the file holds (a Parquet string column of timestamps, say).

use std::fs::File;
use std::io::{BufRead, BufReader};

use crate::singer::BatchMessage;

/// Rows of a Parquet BATCH file turned into JSON at a time.
const PARQUET_ROWS: usize = 4096;

/// Why a BATCH file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BatchFileError {
    /// Only local files are read.
    #[error(
        "BATCH manifest entry '{0}' is not a file:// URI; only local batch files are supported"
    )]
    NotLocal(String),
    /// The encoding is not one inlet reads.
    #[error("BATCH encoding format '{0}' is not supported; use jsonl or parquet")]
    Format(String),
    /// Opening or reading failed.
    #[error("cannot read BATCH file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet file is unreadable.
    #[error("cannot read BATCH file {path} as Parquet: {source}")]
    Parquet {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Its rows cannot be turned into JSON.
    #[error("cannot read BATCH file {path} as Parquet: {source}")]
    Arrow {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: arrow_schema::ArrowError,
    },
}

/// What is called for each record of a file: its line (or row) and bytes.
type OnRecord<'a, E> = dyn FnMut(u64, &[u8]) -> Result<(), E> + 'a;

/// A failure while streaming: the file's, or the one the record handler gave.
#[derive(Debug)]
pub enum Step<E> {
    /// Reading a file failed.
    File(BatchFileError),
    /// The handler stopped.
    Record(E),
}

/// Calls `each(uri, line, record)` for every record of every file of the
/// manifest, in order; `line` is 1-based within its file (the row number
/// for Parquet).
pub fn each_record<E>(
    m: &BatchMessage,
    mut each: impl FnMut(&str, u64, &[u8]) -> Result<(), E>,
) -> Result<(), Step<E>> {
    let format = m.encoding.format.to_ascii_lowercase();
    if format != "jsonl" && format != "parquet" {
        return Err(Step::File(BatchFileError::Format(
            m.encoding.format.clone(),
        )));
    }
    for uri in &m.manifest {
        let path = uri
            .strip_prefix("file://")
            .ok_or_else(|| Step::File(BatchFileError::NotLocal(uri.clone())))?;
        let io = |source| {
            Step::File(BatchFileError::Io {
                path: path.to_string(),
                source,
            })
        };
        let file = File::open(path).map_err(io)?;
        match format.as_str() {
            "parquet" => parquet_records(path, file, &mut |n, r| each(uri, n, r))?,
            _ => {
                let mut reader = BufReader::with_capacity(1 << 16, file);
                let gz = m.encoding.compression.as_deref() == Some("gzip")
                    || reader.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
                let reader: Box<dyn BufRead> = match gz {
                    true => Box::new(BufReader::with_capacity(
                        1 << 16,
                        flate2::read::MultiGzDecoder::new(reader),
                    )),
                    false => Box::new(reader),
                };
                jsonl_records(path, reader, &mut |n, r| each(uri, n, r))?;
            }
        }
    }
    Ok(())
}

/// One line at a time, in a buffer reused from line to line.
fn jsonl_records<E>(
    path: &str,
    mut reader: Box<dyn BufRead>,
    each: &mut OnRecord<'_, E>,
) -> Result<(), Step<E>> {
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        let got = reader.read_until(b'\n', &mut line).map_err(|source| {
            Step::File(BatchFileError::Io {
                path: path.to_string(),
                source,
            })
        })?;
        if got == 0 {
            return Ok(());
        }
        n += 1;
        let rec = line.strip_suffix(b"\n").unwrap_or(&line);
        let rec = rec.strip_suffix(b"\r").unwrap_or(rec);
        if rec.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        each(n, rec).map_err(Step::Record)?;
        // a very long line does not keep its buffer for the rest of the file
        if line.capacity() > 1 << 24 {
            line = Vec::new();
        }
    }
}

/// A record batch at a time, each row as a JSON line.
fn parquet_records<E>(path: &str, file: File, each: &mut OnRecord<'_, E>) -> Result<(), Step<E>> {
    let pq = |source| {
        Step::File(BatchFileError::Parquet {
            path: path.to_string(),
            source,
        })
    };
    let arrow = |source| {
        Step::File(BatchFileError::Arrow {
            path: path.to_string(),
            source,
        })
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(pq)?
        .with_batch_size(PARQUET_ROWS)
        .build()
        .map_err(pq)?;
    let mut text = Vec::new();
    let mut n = 0;
    for batch in reader {
        let batch = batch.map_err(arrow)?;
        text.clear();
        let mut w = arrow_json::LineDelimitedWriter::new(&mut text);
        w.write(&batch).map_err(arrow)?;
        w.finish().map_err(arrow)?;
        drop(w);
        for rec in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            n += 1;
            each(n, rec).map_err(Step::Record)?;
        }
    }
    Ok(())
}
