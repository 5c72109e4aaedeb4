//! RecordBatch → Parquet / CSV / JSONL bytes.
//!
//! Types are kept as the SCHEMA says: Parquet stores the Arrow types; CSV and
//! JSONL write booleans as `true`/`false`, timestamps as RFC 3339 UTC and
//! nested values as JSON (CSV: JSON text in the cell).

pub mod dictionary;
mod text;

use std::io::Write;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::config::Format;
pub use dictionary::DictionaryHints;

/// Metadata key marking a Utf8 column that holds JSON text.
pub const JSON_EXTENSION: &str = "arrow.json";

/// Encoding errors.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Parquet writer failure.
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Arrow CSV/JSON writer failure.
    #[error("encoding {format}: {source}")]
    Arrow {
        /// csv or jsonl.
        format: &'static str,
        /// The error.
        source: arrow_schema::ArrowError,
    },
    /// Compression stream failure.
    #[error("compressing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Output codec, checked against the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// No compression.
    None,
    /// Snappy (Parquet).
    Snappy,
    /// Zstandard (Parquet).
    Zstd,
    /// Gzip (all formats).
    Gzip,
    /// LZ4 raw (Parquet).
    Lz4,
}

impl Codec {
    /// The codec for `format` from the `compression` setting.
    pub fn parse(format: Format, name: Option<&str>) -> Result<Codec, String> {
        let parquet = matches!(format, Format::Parquet | Format::Delta);
        let c = match name.map(|n| n.to_ascii_lowercase()) {
            None => {
                if parquet {
                    Codec::Snappy
                } else {
                    Codec::None
                }
            }
            Some(n) => match n.as_str() {
                "none" | "uncompressed" | "" => Codec::None,
                "snappy" => Codec::Snappy,
                "zstd" => Codec::Zstd,
                "gzip" | "gz" => Codec::Gzip,
                "lz4" => Codec::Lz4,
                other => {
                    return Err(format!(
                        "unknown codec '{other}'; use snappy, zstd, gzip, lz4 or none"
                    ));
                }
            },
        };
        if !parquet && !matches!(c, Codec::None | Codec::Gzip) {
            return Err(
                format!("{c:?} is only for parquet; csv and jsonl take none or gzip")
                    .to_lowercase(),
            );
        }
        Ok(c)
    }
}

/// How batches are encoded.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// File format.
    pub format: Format,
    /// Codec.
    pub codec: Codec,
    /// Parquet rows per row group.
    pub row_group_size: usize,
    /// CSV delimiter.
    pub delimiter: u8,
}

impl Encoder {
    /// File extension (with `.gz` for gzipped text).
    pub fn extension(&self) -> &'static str {
        match (self.format, self.codec) {
            (Format::Parquet | Format::Delta, _) => "parquet",
            (Format::Csv, Codec::Gzip) => "csv.gz",
            (Format::Csv, _) => "csv",
            (Format::Jsonl, Codec::Gzip) => "jsonl.gz",
            (Format::Jsonl, _) => "jsonl",
        }
    }

    /// Encodes batches (one schema) as one complete file; Parquet files use
    /// and update the table's dictionary `hints`.
    /// Each batch is dropped once encoded: the encoder's buffers grow while
    /// the batches' memory goes.
    pub fn encode(
        &self,
        batches: Vec<RecordBatch>,
        hints: &mut DictionaryHints,
    ) -> Result<Bytes, FormatError> {
        let size: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        match self.format {
            Format::Parquet | Format::Delta => self.parquet(batches, size, hints),
            Format::Csv | Format::Jsonl => {
                let mut out = Vec::with_capacity(size / 2);
                if self.codec == Codec::Gzip {
                    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                    self.text(&batches, &mut gz)?;
                    out = gz.finish()?;
                } else {
                    self.text(&batches, &mut out)?;
                }
                Ok(Bytes::from(out))
            }
        }
    }

    fn text(&self, batches: &[RecordBatch], w: &mut dyn Write) -> Result<(), FormatError> {
        match self.format {
            Format::Csv => {
                text::write_csv(batches, self.delimiter, w).map_err(|source| FormatError::Arrow {
                    format: "csv",
                    source,
                })
            }
            _ => text::write_jsonl(batches, w).map_err(|source| FormatError::Arrow {
                format: "jsonl",
                source,
            }),
        }
    }

    /// Parquet writer settings (files and Delta data files alike).
    pub fn parquet_properties(&self) -> WriterProperties {
        self.parquet_builder().build()
    }

    fn parquet_builder(&self) -> parquet::file::properties::WriterPropertiesBuilder {
        let compression = match self.codec {
            Codec::None => Compression::UNCOMPRESSED,
            Codec::Snappy => Compression::SNAPPY,
            Codec::Zstd => Compression::ZSTD(ZstdLevel::default()),
            Codec::Gzip => Compression::GZIP(GzipLevel::default()),
            Codec::Lz4 => Compression::LZ4_RAW,
        };
        WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_size))
            .set_created_by(format!("inlet {}", env!("CARGO_PKG_VERSION")))
            .set_dictionary_page_size_limit(dictionary::PAGE_LIMIT)
    }

    fn parquet(
        &self,
        batches: Vec<RecordBatch>,
        size: usize,
        hints: &mut DictionaryHints,
    ) -> Result<Bytes, FormatError> {
        let mut out = Vec::with_capacity(size / 8);
        let Some(first) = batches.first() else {
            return Ok(Bytes::new());
        };
        let props = hints.apply(self.parquet_builder(), first).build();
        let mut w = ArrowWriter::try_new(&mut out, Arc::clone(&first.schema()), Some(props))?;
        for b in batches {
            w.write(&b)?;
        }
        let meta = w.close()?;
        let out = Bytes::from(out);
        hints.learn(&out, &meta);
        Ok(out)
    }
}
