//! Merge mode: upsert a flush into the table on the stream's key properties.
//! Within a flush the last record for a key wins; rows whose
//! `_sdc_deleted_at` is set are deleted (`hard_delete`) or kept as
//! soft-deleted rows.

use std::collections::HashMap;

use arrow_array::{Array, RecordBatch};
use arrow_row::{RowConverter, SortField};
use deltalake::DeltaTable;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::delta_datafusion::create_session_state_with_spill_config;

use super::commit::{props, quote_ident, take_rows};
use super::{Cause, DeltaBatch, DeltaSettings};

/// Memory a merge's join and sort may hold before DataFusion spills to disk.
const MERGE_MEMORY: usize = 256 << 20;

/// Rows per row group of the files a merge rewrites.
const MERGE_ROW_GROUP: usize = 131_072;

/// The flush's rows to merge: checked keys, the last row of each key.
pub(super) fn deduped(b: &DeltaBatch<'_>) -> Result<RecordBatch, Cause> {
    if b.keys.is_empty() {
        return Err(Cause::Refused(format!(
            "mode 'merge' needs key_properties, and the SCHEMA message of stream '{}' has none; \
             set key_properties in the tap's catalog, or use mode 'append'",
            b.stream
        )));
    }
    let schema = b
        .batches
        .first()
        .ok_or_else(|| Cause::Refused("nothing to merge".into()))?
        .schema();
    for k in b.keys {
        if schema.index_of(k).is_err() {
            return Err(Cause::Refused(format!(
                "key property '{k}' is not a column of the stream"
            )));
        }
    }
    let all = arrow_select::concat::concat_batches(&schema, &b.batches)?;
    last_per_key(&all, b.keys)
}

/// The rows of a merge into a table that does not exist yet: written as
/// plain data files (deleted rows left out with `hard_delete`).
pub fn first_rows(s: &DeltaSettings, b: &DeltaBatch<'_>) -> Result<RecordBatch, Cause> {
    without_hard_deleted(s, deduped(b)?)
}

/// `rows` without those whose `_sdc_deleted_at` is set, with `hard_delete`.
pub(super) fn without_hard_deleted(
    s: &DeltaSettings,
    rows: RecordBatch,
) -> Result<RecordBatch, Cause> {
    match rows.schema().index_of(&s.deleted_at_column) {
        Ok(_) if s.hard_delete => without_deleted(&rows, &s.deleted_at_column),
        _ => Ok(rows),
    }
}

/// Upserts `b` into `table`, which exists.
pub async fn upsert(
    table: DeltaTable,
    s: &DeltaSettings,
    b: &DeltaBatch<'_>,
) -> Result<DeltaTable, Cause> {
    let rows = deduped(b)?;
    let schema = rows.schema();
    let deleted = schema
        .index_of(&s.deleted_at_column)
        .ok()
        .map(|_| s.deleted_at_column.clone());
    let ctx = SessionContext::new();
    let df = ctx.read_batch(rows)?;
    let on = b
        .keys
        .iter()
        .map(|k| format!("target.{q} = source.{q}", q = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let cols: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    // the files a merge rewrites are written with the run's Parquet settings (row groups
    // bounded as in every other file), and DataFusion spills past MERGE_MEMORY
    let state = create_session_state_with_spill_config(Some(MERGE_MEMORY), None);
    let mut m = table
        .merge(df, on)
        .with_source_alias("source")
        .with_target_alias("target")
        .with_merge_schema(true)
        .with_session_state(std::sync::Arc::new(state))
        .with_commit_properties(props(b));
    // a rewrite holds each open file's row group in memory: keep it small
    let wp = s.encoder.parquet_properties();
    let rows = wp
        .max_row_group_row_count()
        .unwrap_or(MERGE_ROW_GROUP)
        .min(MERGE_ROW_GROUP);
    let wp = wp.into_builder().set_max_row_group_row_count(Some(rows));
    m = m.with_writer_properties(wp.build());
    if let (Some(col), true) = (&deleted, s.hard_delete) {
        let pred = format!("source.{} IS NOT NULL", quote_ident(col));
        m = m.when_matched_delete(|d| d.predicate(pred))?;
    }
    m = m.when_matched_update(|u| {
        cols.iter().fold(u, |u, c| {
            u.update(
                quote_ident(c).as_str(),
                format!("source.{}", quote_ident(c)),
            )
        })
    })?;
    let insert_pred = match (&deleted, s.hard_delete) {
        (Some(col), true) => Some(format!("source.{} IS NULL", quote_ident(col))),
        _ => None,
    };
    m = m.when_not_matched_insert(|i| {
        let i = match insert_pred {
            Some(p) => i.predicate(p),
            None => i,
        };
        cols.iter().fold(i, |i, c| {
            i.set(
                quote_ident(c).as_str(),
                format!("source.{}", quote_ident(c)),
            )
        })
    })?;
    let (table, metrics) = m.await?;
    tracing::debug!(
        stream = b.stream,
        inserted = metrics.num_target_rows_inserted,
        updated = metrics.num_target_rows_updated,
        deleted = metrics.num_target_rows_deleted,
        "merge"
    );
    Ok(table)
}

/// The last row of each key, in input order of those last rows.
fn last_per_key(batch: &RecordBatch, keys: &[String]) -> Result<RecordBatch, Cause> {
    let cols: Vec<_> = keys
        .iter()
        .map(|k| {
            batch
                .column_by_name(k)
                .cloned()
                .ok_or_else(|| Cause::Refused(format!("no key column {k}")))
        })
        .collect::<Result<_, _>>()?;
    let conv = RowConverter::new(
        cols.iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect(),
    )
    .map_err(|e| Cause::Refused(format!("key columns cannot be compared: {e}")))?;
    let rows = conv.convert_columns(&cols)?;
    let mut last: HashMap<arrow_row::Row<'_>, u32> = HashMap::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        last.insert(rows.row(i), i as u32);
    }
    if last.len() == batch.num_rows() {
        return Ok(batch.clone());
    }
    let mut keep: Vec<u32> = last.into_values().collect();
    keep.sort_unstable();
    Ok(take_rows(batch, &keep)?)
}

fn without_deleted(batch: &RecordBatch, col: &str) -> Result<RecordBatch, Cause> {
    let c = batch
        .column_by_name(col)
        .ok_or_else(|| Cause::Refused(format!("no column {col}")))?;
    let keep: Vec<u32> = (0..batch.num_rows())
        .filter(|&i| c.is_null(i))
        .map(|i| i as u32)
        .collect();
    Ok(take_rows(batch, &keep)?)
}
