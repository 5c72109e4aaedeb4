//! Which Parquet columns get dictionary encoding, learned per table from
//! the files already written.
//!
//! A dictionary pays off for repeated values (categories, names, long texts
//! drawn from a small set) and is pure cost for nearly-unique ones (ids,
//! emails, event timestamps): every value is hashed and interned, then the
//! dictionary is thrown away when it overflows. The first file of a table is
//! a probe: columns whose first values are all but unique are written plain
//! at once, the others with a dictionary, and the probe's dictionary pages
//! tell how many distinct values each of those had; columns that were mostly
//! distinct are written plain in the following files. Every [`PROBE_EVERY`]th
//! file probes again, so a column whose values start repeating gets its
//! dictionary back.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::basic::{Encoding, PageType};
use parquet::column::page::{Page, PageReader};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use parquet::file::properties::WriterPropertiesBuilder;
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::ColumnPath;

/// Files between two probes with every dictionary on.
pub const PROBE_EVERY: u64 = 16;

/// Rows a probe file needs before its dictionaries say anything: in a few
/// rows every value is distinct.
const MIN_PROBE_ROWS: i64 = 10_000;

/// Non-null values a column needs in a probe to be judged.
const MIN_JUDGED_VALUES: i64 = 1_000;

/// Largest dictionary page per column chunk. Bigger than parquet's 1 MB
/// default so that a text column with a few thousand distinct long values
/// (descriptions, addresses) stays dictionary-encoded for a whole batch
/// instead of falling back to plain after the first megabyte.
pub const PAGE_LIMIT: usize = 8 << 20;

/// Dictionary decisions for one table.
#[derive(Debug, Default)]
pub struct DictionaryHints {
    plain: HashSet<ColumnPath>,
    /// Columns a probe writes plain because its first values are all distinct.
    sampled: HashSet<ColumnPath>,
    files: u64,
}

impl DictionaryHints {
    /// The next file is a probe: dictionaries on, except where a sample of
    /// the first values says the column is unique.
    fn probing(&self) -> bool {
        self.files.is_multiple_of(PROBE_EVERY)
    }

    /// Writer settings for the next file of the table, whose first batch is
    /// `first`.
    pub fn apply(
        &mut self,
        mut b: WriterPropertiesBuilder,
        first: &RecordBatch,
    ) -> WriterPropertiesBuilder {
        let plain = match self.probing() {
            true => {
                // a single-file load is all probe: spare it interning ids
                self.sampled = nearly_unique_columns(first);
                &self.sampled
            }
            false => &self.plain,
        };
        for p in plain {
            b = b.set_column_dictionary_enabled(p.clone(), false);
        }
        b
    }

    /// Learns from a file just written with [`DictionaryHints::apply`]'s settings.
    pub fn learn(&mut self, file: &Bytes, meta: &ParquetMetaData) {
        if !self.probing() {
            self.files += 1;
            return;
        }
        if meta.file_metadata().num_rows() < MIN_PROBE_ROWS {
            return; // too small to tell (an early flush): the next file probes
        }
        self.files += 1;
        self.plain = std::mem::take(&mut self.sampled);
        for rg in meta.row_groups() {
            for c in rg.columns() {
                if mostly_distinct(file, rg.num_rows(), c) {
                    self.plain.insert(c.column_path().clone());
                }
            }
        }
    }

    /// Columns written without a dictionary between probes.
    #[cfg(test)]
    pub fn plain_columns(&self) -> Vec<String> {
        let mut v: Vec<String> = self.plain.iter().map(|p| p.string()).collect();
        v.sort();
        v
    }
}

/// True when a dictionary-encoded chunk had more than half of its non-null
/// values distinct, or overflowed the dictionary and fell back to plain.
fn mostly_distinct(file: &Bytes, rows: i64, c: &ColumnChunkMetaData) -> bool {
    if c.dictionary_page_offset().is_none() {
        return false; // no dictionary (booleans, or switched off)
    }
    if fell_back(c) {
        return true;
    }
    let nulls = c.statistics().and_then(|s| s.null_count_opt()).unwrap_or(0) as i64;
    let values = c.num_values() - nulls;
    if values < MIN_JUDGED_VALUES {
        return false;
    }
    let reader = SerializedPageReader::new(Arc::new(file.clone()), c, rows.max(0) as usize, None);
    match reader.and_then(|mut r| r.get_next_page()) {
        Ok(Some(Page::DictionaryPage { num_values, .. })) => i64::from(num_values) * 2 > values,
        // cannot tell: keep the dictionary (parquet's default)
        _ => false,
    }
}

/// Values sampled per column before a probe.
const SAMPLE: usize = 16_384;

/// Top-level and struct-member columns (not list items: the probe's
/// dictionary pages judge those) whose first [`SAMPLE`] values are at least
/// 90 % distinct.
fn nearly_unique_columns(batch: &RecordBatch) -> HashSet<ColumnPath> {
    let mut out = HashSet::new();
    for (f, a) in batch.schema().fields().iter().zip(batch.columns()) {
        visit(vec![f.name().clone()], a.as_ref(), &mut out);
    }
    out
}

fn visit(path: Vec<String>, a: &dyn Array, out: &mut HashSet<ColumnPath>) {
    if let DataType::Struct(fields) = a.data_type() {
        for (f, c) in fields.iter().zip(a.as_struct().columns()) {
            let mut p = path.clone();
            p.push(f.name().clone());
            visit(p, c.as_ref(), out);
        }
    } else if nearly_unique(a) {
        out.insert(ColumnPath::new(path));
    }
}

fn nearly_unique(a: &dyn Array) -> bool {
    let n = a.len().min(SAMPLE);
    let data = a.to_data(); // outlives `seen`, which borrows its bytes
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(n);
    let mut values: i64 = 0;
    if let Some(s) = a.as_string_opt::<i32>() {
        for i in (0..n).filter(|i| s.is_valid(*i)) {
            values += 1;
            seen.insert(s.value(i).as_bytes());
        }
    } else if let Some(w) = a.data_type().primitive_width() {
        let Some(buf) = data.buffers().first() else {
            return false;
        };
        let bytes = &buf.as_slice()[data.offset() * w..];
        for i in (0..n).filter(|i| a.is_valid(*i)) {
            values += 1;
            seen.insert(&bytes[i * w..(i + 1) * w]);
        }
    }
    values >= MIN_JUDGED_VALUES && seen.len() as i64 * 10 >= values * 9
}

/// Some data page of the chunk is plain-encoded although the column had a
/// dictionary: the dictionary outgrew [`PAGE_LIMIT`].
fn fell_back(c: &ColumnChunkMetaData) -> bool {
    if let Some(stats) = c.page_encoding_stats() {
        return stats.iter().any(|s| {
            matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2)
                && s.encoding == Encoding::PLAIN
        });
    }
    c.page_encoding_stats_mask()
        .is_some_and(|m| m.is_set(Encoding::PLAIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    /// Columns: unique `id`, three `color`s, and `late`, repeated in the
    /// first 20,000 rows (all a sample sees) and unique after.
    fn write(hints: &mut DictionaryHints, rows: usize) -> ParquetMetaData {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        let colors: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| ["red", "green", "blue"][i % 3]),
        ));
        let late: ArrayRef = Arc::new(StringArray::from_iter_values((0..rows).map(|i| {
            if i < 20_000 {
                "same".to_string()
            } else {
                format!("v{i}")
            }
        })));
        let b =
            RecordBatch::try_from_iter([("id", ids), ("color", colors), ("late", late)]).unwrap();
        let props = hints.apply(WriterProperties::builder(), &b).build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        let meta = w.close().unwrap();
        hints.learn(&Bytes::from(out), &meta);
        meta
    }

    fn dictionaries(meta: &ParquetMetaData) -> [bool; 3] {
        let c = |i| {
            meta.row_group(0)
                .column(i)
                .dictionary_page_offset()
                .is_some()
        };
        [c(0), c(1), c(2)]
    }

    #[test]
    fn unique_columns_are_plain_from_the_first_file() {
        let mut h = DictionaryHints::default();
        assert_eq!(dictionaries(&write(&mut h, 10_000)), [false, true, true]);
        assert_eq!(h.plain_columns(), vec!["id".to_string()]);
        assert_eq!(dictionaries(&write(&mut h, 10_000)), [false, true, true]);
    }

    #[test]
    fn what_the_probe_finds_distinct_is_plain_until_the_next_probe() {
        let mut h = DictionaryHints::default();
        // the sample saw `late` repeat; its dictionary page shows 80k of 100k distinct
        assert_eq!(dictionaries(&write(&mut h, 100_000)), [false, true, true]);
        assert_eq!(
            h.plain_columns(),
            vec!["id".to_string(), "late".to_string()]
        );
        assert_eq!(dictionaries(&write(&mut h, 100_000)), [false, true, false]);
        for _ in 2..PROBE_EVERY {
            write(&mut h, 100);
        }
        // a probe too small to judge leaves the decisions as they were ...
        assert_eq!(dictionaries(&write(&mut h, 100)), [true, true, true]);
        assert_eq!(
            h.plain_columns(),
            vec!["id".to_string(), "late".to_string()]
        );
        // ... and the next file probes again
        assert_eq!(dictionaries(&write(&mut h, 100_000)), [false, true, true]);
        assert_eq!(dictionaries(&write(&mut h, 100_000)), [false, true, false]);
    }

    #[test]
    fn a_small_first_file_decides_nothing() {
        let mut h = DictionaryHints::default();
        write(&mut h, 50);
        assert!(h.plain_columns().is_empty());
        assert_eq!(
            dictionaries(&write(&mut h, 50)),
            [true, true, true],
            "still probing"
        );
    }
}
