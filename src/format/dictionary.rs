//! Which Parquet columns get dictionary encoding, learned per table from
//! the files already written.
//!
//! A dictionary pays off for repeated values (categories, names, long texts
//! drawn from a small set) and is pure cost for nearly-unique ones (ids,
//! emails, event timestamps): every value is hashed and interned, then the
//! dictionary is thrown away when it overflows. The first file of a table is
//! written with dictionaries on; its dictionary pages tell how many distinct
//! values each column had, and columns that were mostly distinct are written
//! plain in the following files. Every [`PROBE_EVERY`]th file probes again,
//! so a column whose values start repeating gets its dictionary back.

use std::collections::HashSet;
use std::sync::Arc;

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
    files: u64,
}

impl DictionaryHints {
    /// The next file is a probe: every column gets a dictionary.
    fn probing(&self) -> bool {
        self.files.is_multiple_of(PROBE_EVERY)
    }

    /// Writer settings for the next file of the table.
    pub fn apply(&self, mut b: WriterPropertiesBuilder) -> WriterPropertiesBuilder {
        if !self.probing() {
            for p in &self.plain {
                b = b.set_column_dictionary_enabled(p.clone(), false);
            }
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
        self.plain.clear();
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
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    fn write(hints: &mut DictionaryHints, rows: usize) -> (Bytes, ParquetMetaData) {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        let cats: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| ["red", "green", "blue"][i % 3]),
        ));
        let b = RecordBatch::try_from_iter([("id", ids), ("color", cats)]).unwrap();
        let props = hints.apply(WriterProperties::builder()).build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, b.schema(), Some(props)).unwrap();
        w.write(&b).unwrap();
        let meta = w.close().unwrap();
        let bytes = Bytes::from(out);
        hints.learn(&bytes, &meta);
        (bytes, meta)
    }

    fn has_dictionary(meta: &ParquetMetaData, col: usize) -> bool {
        meta.row_group(0)
            .column(col)
            .dictionary_page_offset()
            .is_some()
    }

    #[test]
    fn unique_columns_lose_their_dictionary_until_the_next_probe() {
        let mut h = DictionaryHints::default();
        let (_, first) = write(&mut h, 10_000);
        assert!(has_dictionary(&first, 0) && has_dictionary(&first, 1));
        assert_eq!(h.plain_columns(), vec!["id".to_string()]);
        let (_, second) = write(&mut h, 10_000);
        assert!(!has_dictionary(&second, 0), "unique ids are written plain");
        assert!(has_dictionary(&second, 1), "repeated colours keep it");
        for _ in 2..PROBE_EVERY {
            write(&mut h, 100);
        }
        let (_, probe) = write(&mut h, 100);
        assert!(
            has_dictionary(&probe, 0),
            "every {PROBE_EVERY}th file probes"
        );
        // a probe too small to judge leaves the decision as it was ...
        assert_eq!(h.plain_columns(), vec!["id".to_string()]);
        // ... and the next file probes again
        let (_, again) = write(&mut h, 10_000);
        assert!(has_dictionary(&again, 0));
        let (_, after) = write(&mut h, 10_000);
        assert!(!has_dictionary(&after, 0));
    }

    #[test]
    fn a_small_first_file_decides_nothing() {
        let mut h = DictionaryHints::default();
        write(&mut h, 50);
        assert!(h.plain_columns().is_empty());
        let (_, next) = write(&mut h, 50);
        assert!(has_dictionary(&next, 0), "still probing");
    }
}
