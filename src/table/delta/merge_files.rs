//! Merge mode without a join engine: an upsert of a flush into a table is
//! "the table's rows whose key the flush has go; the flush's rows come in",
//! committed as one `MERGE` of `remove` and `add` actions.
//!
//! - The flush's keys (last row per key) go into a hash set; their first
//!   column, sorted, is matched against each data file's key statistics, so
//!   only files whose key range holds a flush key are read at all.
//! - A candidate file's key columns are read first; a file with no matching
//!   key is left alone. A file with matches is read one row group at a time
//!   and its other rows are written to a new file, which replaces it.
//! - The flush's rows (without hard-deleted ones) are written as new files.
//!
//! Memory is the flush, its key set and one data file, however big the
//! table. Keys that are partition columns, and tables with deletion
//! vectors, go through delta-rs' merge instead ([`super::merge`]).

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use deltalake::DeltaTable;
use deltalake::kernel::{Add, Remove};
use deltalake::protocol::{DeltaOperation, MergePredicate};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::data_files::DataFiles;
use super::stats::StatsColumns;
use super::{Cause, DeltaBatch, DeltaError, DeltaTables, commit, copy, merge, schema_check, write};
use crate::format::{DictionaryHints, Encoder};
use crate::storage::Store;

/// What a merge writes and removes, and what it did.
pub(super) struct Merged {
    pub adds: Vec<Add>,
    pub removes: Vec<Remove>,
    /// Data files whose key range held a flush key (read), and rewritten.
    pub read: usize,
    pub rewritten: usize,
    /// Table rows replaced or deleted.
    pub replaced: usize,
}

/// Where and how a merge writes.
pub(super) struct Target<'a> {
    pub store: &'a Store,
    /// The table's folder below the destination.
    pub dir: &'a str,
    pub partition_columns: &'a [String],
    pub encoder: &'a Encoder,
    pub columns: StatsColumns,
    pub target_file_size: Option<u64>,
}

impl Target<'_> {
    /// New data files of the table, as its writes make them.
    fn data_files(&self) -> DataFiles {
        DataFiles::new(
            self.dir,
            self.partition_columns,
            self.encoder,
            self.columns.clone(),
            self.target_file_size,
        )
    }
}

/// Whether this engine can merge into `table` on `keys`.
pub(super) fn applies(table: &DeltaTable, keys: &[String], partition_columns: &[String]) -> bool {
    let Ok(snapshot) = table.snapshot() else {
        return false;
    };
    !keys.iter().any(|k| partition_columns.contains(k))
        && snapshot
            .log_data()
            .iter()
            .all(|f| f.deletion_vector_descriptor().is_none())
}

/// Upserts `rows` (one row per key) into `table`; `insert` are the rows to
/// add (without hard-deleted ones).
pub(super) fn merge(
    t: &Target<'_>,
    table: &DeltaTable,
    keys: &[String],
    rows: &RecordBatch,
    insert: &RecordBatch,
    hints: &mut DictionaryHints,
) -> Result<Merged, Cause> {
    let key_cols = columns(rows, keys)?;
    let conv = RowConverter::new(
        key_cols
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )?;
    let src = conv.convert_columns(&key_cols)?;
    let set: HashSet<arrow_row::Row<'_>> = (0..rows.num_rows())
        .filter(|&i| key_cols.iter().all(|c| c.is_valid(i)))
        .map(|i| src.row(i))
        .collect();
    let first = FirstKey::of(&key_cols[0]);
    let snapshot = table.snapshot()?;
    let file_schema = without(&snapshot.snapshot().arrow_schema(), t.partition_columns);
    let mut out = Merged {
        adds: Vec::new(),
        removes: Vec::new(),
        read: 0,
        rewritten: 0,
        replaced: 0,
    };
    for f in snapshot.log_data().iter() {
        let stats = f
            .stats()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok());
        if !first.may_hold(stats.as_ref(), &keys[0]) {
            continue;
        }
        out.read += 1;
        // the object's key as stored (partition values percent-encoded, as written)
        let path = f.object_store_path().to_string();
        let rel = join(t.dir, &path);
        let bytes = t.store.block_on(t.store.get(&rel))?;
        let matched = |b: &RecordBatch| -> Result<BooleanArray, Cause> {
            let cols = columns_as(b, keys, &key_cols)?;
            let rows = conv.convert_columns(&cols)?;
            Ok(hits(&rows, &cols, &set))
        };
        // the key columns first: most candidates of a spread-out flush match nothing
        let mut any = false;
        for b in reader(&bytes, Some(keys))? {
            any |= matched(&b?)?.true_count() > 0;
            if any {
                break;
            }
        }
        if !any {
            continue;
        }
        let hive = path
            .rsplit_once('/')
            .map(|(d, _)| d.to_string())
            .unwrap_or_default();
        let values = f.partition_values_map();
        let mut files = t.data_files();
        for b in reader(&bytes, None)? {
            let b = b?;
            let hit = matched(&b)?;
            out.replaced += hit.true_count();
            let keep: BooleanArray = hit.iter().map(|h| h.map(|x| !x)).collect();
            let kept = arrow_select::filter::filter_record_batch(&b, &keep)?;
            if kept.num_rows() > 0 {
                let kept = fit(&kept, &file_schema)?;
                files.write_partition(t.store, hive.clone(), values.clone(), &kept, hints)?;
            }
        }
        out.adds.extend(files.close(t.store, hints)?);
        out.removes.push(f.remove_action(true));
        out.rewritten += 1;
    }
    let mut files = t.data_files();
    files.write(t.store, insert, hints)?;
    out.adds.extend(files.close(t.store, hints)?);
    Ok(out)
}

/// The operation a merge commit records (what delta-rs' merge records).
pub(super) fn operation(keys: &[String], hard_delete: Option<&str>) -> DeltaOperation {
    use super::commit::quote_ident;
    let on = keys
        .iter()
        .map(|k| format!("target.{q} = source.{q}", q = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let pred = |action: &str, p: Option<String>| MergePredicate {
        action_type: action.to_string(),
        predicate: p,
    };
    let mut matched = Vec::new();
    if let Some(col) = hard_delete {
        matched.push(pred(
            "delete",
            Some(format!("source.{} IS NOT NULL", quote_ident(col))),
        ));
    }
    matched.push(pred("update", None));
    let insert = hard_delete.map(|c| format!("source.{} IS NULL", quote_ident(c)));
    DeltaOperation::Merge {
        predicate: None,
        merge_predicate: Some(on),
        matched_predicates: matched,
        not_matched_predicates: vec![pred("insert", insert)],
        not_matched_by_source_predicates: Vec::new(),
    }
}

/// Which rows of a table batch have a key of the flush (null keys never match).
fn hits(rows: &Rows, cols: &[ArrayRef], set: &HashSet<arrow_row::Row<'_>>) -> BooleanArray {
    (0..rows.num_rows())
        .map(|i| Some(cols.iter().all(|c| c.is_valid(i)) && set.contains(&rows.row(i))))
        .collect()
}

/// A data file's batches, one row group at a time (only `keys`' columns if given).
fn reader(
    bytes: &Bytes,
    keys: Option<&[String]>,
) -> Result<parquet::arrow::arrow_reader::ParquetRecordBatchReader, Cause> {
    let mut b = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(parquet_error)?;
    if let Some(keys) = keys {
        let schema = b.parquet_schema();
        let leaves: Vec<usize> = (0..schema.num_columns())
            .filter(|&i| {
                keys.iter()
                    .any(|k| schema.column(i).path().parts()[0] == *k)
            })
            .collect();
        let mask = ProjectionMask::leaves(schema, leaves);
        b = b.with_projection(mask);
    }
    b.with_batch_size(65_536).build().map_err(parquet_error)
}

fn parquet_error(e: parquet::errors::ParquetError) -> Cause {
    Cause::Refused(format!("reading a data file to merge into it: {e}"))
}

fn columns(b: &RecordBatch, keys: &[String]) -> Result<Vec<ArrayRef>, Cause> {
    keys.iter()
        .map(|k| {
            b.column_by_name(k).cloned().ok_or_else(|| {
                Cause::Refused(format!("key property '{k}' is not a column of the stream"))
            })
        })
        .collect()
}

/// A table batch's key columns in the flush's key types.
fn columns_as(b: &RecordBatch, keys: &[String], like: &[ArrayRef]) -> Result<Vec<ArrayRef>, Cause> {
    keys.iter()
        .zip(like)
        .map(|(k, l)| {
            let c = b.column_by_name(k).ok_or_else(|| {
                Cause::Refused(format!(
                    "a data file of the table has no key column '{k}'; merge needs it in every file"
                ))
            })?;
            Ok(match c.data_type() == l.data_type() {
                true => Arc::clone(c),
                false => arrow_cast::cast(c, l.data_type())?,
            })
        })
        .collect()
}

/// `b` with the columns of `schema`, in its order: absent ones null.
fn fit(b: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, Cause> {
    if b.schema().fields() == schema.fields() {
        return Ok(b.clone());
    }
    let cols = schema
        .fields()
        .iter()
        .map(|f| match b.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(Arc::clone(c)),
            Some(c) => arrow_cast::cast(c, f.data_type()),
            None => Ok(arrow_array::new_null_array(f.data_type(), b.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), cols)?)
}

fn without(schema: &Schema, partition_columns: &[String]) -> SchemaRef {
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| !partition_columns.contains(f.name()))
        .cloned()
        .collect();
    // nullable: a rewritten file may hold rows of files older than a column
    let fields: Vec<_> = fields
        .into_iter()
        .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
        .collect();
    Arc::new(Schema::new(fields))
}

fn join(dir: &str, path: &str) -> String {
    match dir.trim_matches('/') {
        "" => path.to_string(),
        d => format!("{d}/{path}"),
    }
}

/// The flush's first key column, sorted, to skip files by their statistics.
enum FirstKey {
    Ints(Vec<i64>),
    Texts(Vec<String>),
    /// A type whose statistics are not compared here: every file is read.
    Any,
}

impl FirstKey {
    fn of(c: &ArrayRef) -> FirstKey {
        use arrow_array::cast::AsArray;
        match c.data_type() {
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                let Ok(c) = arrow_cast::cast(c, &DataType::Int64) else {
                    return FirstKey::Any;
                };
                let c = c.as_primitive::<arrow_array::types::Int64Type>();
                let mut v: Vec<i64> = c.iter().flatten().collect();
                v.sort_unstable();
                FirstKey::Ints(v)
            }
            DataType::Utf8 => {
                let mut v: Vec<String> = c
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(String::from)
                    .collect();
                v.sort_unstable();
                FirstKey::Texts(v)
            }
            _ => FirstKey::Any,
        }
    }

    /// Whether a file with `stats` may hold one of the keys.
    fn may_hold(&self, stats: Option<&Value>, key: &str) -> bool {
        let bounds = stats.map(|s| (&s["minValues"][key], &s["maxValues"][key]));
        match (self, bounds) {
            (FirstKey::Ints(v), Some((lo, hi))) => match (lo.as_i64(), hi.as_i64()) {
                (Some(lo), Some(hi)) => {
                    let i = v.partition_point(|x| *x < lo);
                    i < v.len() && v[i] <= hi
                }
                _ => !v.is_empty() && lo.is_null() && hi.is_null() && stats_missing(stats, key),
            },
            (FirstKey::Texts(v), Some((lo, hi))) => match (lo.as_str(), hi.as_str()) {
                (Some(lo), Some(hi)) => {
                    let i = v.partition_point(|x| x.as_str() < lo);
                    i < v.len() && v[i].as_str() <= hi
                }
                _ => !v.is_empty() && lo.is_null() && hi.is_null() && stats_missing(stats, key),
            },
            _ => true,
        }
    }
}

/// No bounds because the file has no statistics for the column (not
/// because every key in it is null, which no flush key matches).
fn stats_missing(stats: Option<&Value>, key: &str) -> bool {
    let Some(s) = stats else { return true };
    let nulls = s["nullCount"][key].as_i64();
    let records = s["numRecords"].as_i64();
    !(nulls.is_some() && nulls == records)
}

impl DeltaTables {
    /// Upserts `b` into the existing table in `dir` with this engine (or
    /// delta-rs' merge where it does not apply); retried on the table as it
    /// is now after a concurrent commit.
    pub(super) fn merge_into(
        &mut self,
        dir: &str,
        b: DeltaBatch<'_>,
    ) -> Result<Vec<crate::table::Written>, DeltaError> {
        let fail = |url: &str, cause| DeltaError::Table {
            url: url.to_string(),
            context: None,
            cause,
        };
        let rows = merge::deduped(&b).map_err(|c| fail(dir, c))?;
        let insert =
            merge::without_hard_deleted(&self.settings, rows.clone()).map_err(|c| fail(dir, c))?;
        let schema = rows.schema();
        let (store, settings) = (self.store.clone(), self.settings.clone());
        let hard = (settings.hard_delete && schema.index_of(&settings.deleted_at_column).is_ok())
            .then_some(settings.deleted_at_column.as_str());
        let mut attempt = 0;
        loop {
            let run = self.open(dir)?;
            let url = run.url.clone();
            let table = run.take_table()?;
            if !applies(&table, b.keys, &settings.partition_columns) {
                run.table = Some(table);
                return self.write(dir, b);
            }
            schema_check::writable(&table, true).map_err(|c| fail(&url, c))?;
            schema_check::compatible(&table, &schema).map_err(|c| fail(&url, c))?;
            let files_dir = if settings.single_table { "" } else { dir };
            let target = Target {
                store: &store,
                dir: files_dir,
                partition_columns: &settings.partition_columns,
                encoder: &settings.encoder,
                columns: copy::stats_columns(&table),
                target_file_size: settings.target_file_size,
            };
            let hints = self.hints.entry(b.stream.to_string()).or_default();
            let merged =
                merge(&target, &table, b.keys, &rows, &insert, hints).map_err(|c| fail(&url, c))?;
            let (read, rewritten, replaced) = (merged.read, merged.rewritten, merged.replaced);
            let before = table.version();
            let bytes = merged
                .adds
                .iter()
                .map(|a| usize::try_from(a.size).unwrap_or_default())
                .sum();
            let files = write::Files {
                adds: merged.adds,
                schema: &schema,
                meta: commit::meta(&b),
                merge: Some((merged.removes, operation(b.keys, hard))),
            };
            let run = self
                .tables
                .get_mut(dir)
                .ok_or_else(|| DeltaError::Location(format!("table {dir} vanished")))?;
            match store.block_on(write::commit_files(table, run, &settings, files)) {
                Ok(table) => {
                    tracing::debug!(stream = %b.stream, table = %url, rows = rows.num_rows(),
                        files_read = read, files_rewritten = rewritten, rows_replaced = replaced, "merge");
                    let written = commit::added_files(&table, before, &url, rows.num_rows(), bytes);
                    self.committed(dir, table, b.state.as_ref())?;
                    return Ok(written);
                }
                Err(cause) if cause.is_conflict() && attempt + 1 < super::CONFLICT_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(stream = %b.stream, table = %url, attempt, "concurrent commit; merging again: {cause}");
                    std::thread::sleep(super::backoff(attempt));
                }
                Err(cause) => return Err(fail(&url, cause)),
            }
        }
    }
}
