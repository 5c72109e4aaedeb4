//! The commits themselves: append, overwrite, partition overwrite, the
//! state-only commit and ACTIVATE_VERSION's delete, each carrying inlet's
//! version (and the STATE) in the commit info.

use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use serde_json::Value;

use super::{Cause, DeltaBatch, DeltaMode, DeltaSettings, TableRun, merge, schema_check};
use crate::table::Written;

pub(super) fn props(b: &DeltaBatch<'_>) -> CommitProperties {
    let state = b.state.clone().map(|s| ("inlet.state", s));
    commit_props(
        std::iter::once(("inlet.stream", Value::String(b.stream.to_string()))).chain(state),
    )
}

/// Commit properties: inlet's version plus `extra` in the commit info, and
/// delta-rs' own retries of commits that do not conflict.
pub(super) fn commit_props(
    extra: impl IntoIterator<Item = (&'static str, Value)>,
) -> CommitProperties {
    let meta = std::iter::once((
        "inlet.version",
        Value::String(env!("CARGO_PKG_VERSION").to_string()),
    ))
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v));
    CommitProperties::default()
        .with_metadata(meta)
        .with_max_retries(25)
}

pub(super) async fn commit(
    table: DeltaTable,
    run: &mut TableRun,
    s: &DeltaSettings,
    b: &DeltaBatch<'_>,
    url: &str,
) -> Result<(DeltaTable, Vec<Written>), Cause> {
    let exists = table.version().is_some();
    let schema = b
        .batches
        .first()
        .map(|x| x.schema())
        .ok_or_else(|| Cause::Refused("nothing to commit".into()))?;
    let overwrite_schema = s.mode == DeltaMode::Overwrite && s.schema_overwrite && !run.replaced;
    if exists && !overwrite_schema {
        schema_check::compatible(&table, &schema)?;
    }
    let before = table.version();
    let table = match s.mode {
        DeltaMode::Merge => merge::upsert(table, s, b).await?,
        DeltaMode::Append => append(table, s, b.batches.clone(), props(b), false).await?,
        DeltaMode::Overwrite if s.overwrite_partitions || !s.partition_columns.is_empty() => {
            partition_overwrite(table, run, s, b).await?
        }
        DeltaMode::Overwrite if !run.replaced => {
            // marked only once the replacing commit succeeded: a retry replaces again
            let t = append(table, s, b.batches.clone(), props(b), true).await?;
            run.replaced = true;
            t
        }
        DeltaMode::Overwrite => append(table, s, b.batches.clone(), props(b), false).await?,
    };
    let rows = b.batches.iter().map(RecordBatch::num_rows).sum();
    let files = added_files(&table, before, url, rows);
    Ok((table, files))
}

/// A commit holding only `{"txn": {"appId": "inlet", …}}` and the state in
/// its commit info (a streaming-update commit, as kafka-delta-ingest writes).
/// An export's `manifest` goes along as `inlet.copy`.
pub(super) async fn state_commit(
    table: &DeltaTable,
    state: &Value,
    manifest: Option<&Value>,
) -> Result<(), Cause> {
    use deltalake::kernel::Transaction;
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::{DeltaOperation, OutputMode};
    let snapshot = table.snapshot()?;
    let now = chrono::Utc::now().timestamp_millis();
    let copy = manifest.map(|m| ("inlet.copy", m.clone()));
    let props = commit_props(std::iter::once(("inlet.state", state.clone())).chain(copy))
        .with_application_transaction(Transaction::new_with_last_update("inlet", now, Some(now)))
        .with_max_retries(25);
    CommitBuilder::from(props)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::StreamingUpdate {
                output_mode: OutputMode::Append,
                query_id: "inlet".into(),
                epoch_id: now,
            },
        )
        .await?;
    Ok(())
}

/// Plain write; `replace` overwrites the whole table (and its schema when allowed).
pub(super) async fn append(
    table: DeltaTable,
    s: &DeltaSettings,
    batches: Vec<RecordBatch>,
    props: CommitProperties,
    replace: bool,
) -> Result<DeltaTable, Cause> {
    use deltalake::operations::write::SchemaMode;
    let mut w = table
        .write(batches)
        .with_save_mode(if replace {
            SaveMode::Overwrite
        } else {
            SaveMode::Append
        })
        .with_schema_mode(if replace && s.schema_overwrite {
            SchemaMode::Overwrite
        } else {
            SchemaMode::Merge
        })
        .with_commit_properties(props);
    w = file_settings(w, s);
    Ok(w.await?)
}

/// What every write of the load shares: Parquet settings, file size, partitions.
fn file_settings(
    mut w: deltalake::operations::write::WriteBuilder,
    s: &DeltaSettings,
) -> deltalake::operations::write::WriteBuilder {
    w = w.with_target_file_size(s.target_file_size.and_then(std::num::NonZeroU64::new));
    if let Some(wp) = &s.writer_properties {
        w = w.with_writer_properties(wp.clone());
    }
    if !s.partition_columns.is_empty() {
        w = w.with_partition_columns(s.partition_columns.clone());
    }
    w
}

/// Replaces each partition the first time the run brings rows for it; rows
/// of partitions already replaced in this run are appended.
async fn partition_overwrite(
    mut table: DeltaTable,
    run: &mut TableRun,
    s: &DeltaSettings,
    b: &DeltaBatch<'_>,
) -> Result<DeltaTable, Cause> {
    if s.partition_columns.is_empty() {
        return Err(Cause::Refused(
            "overwrite_partitions needs partition_keys (the columns whose values name a partition)"
                .into(),
        ));
    }
    let mut fresh: Vec<RecordBatch> = Vec::new();
    let mut seen: Vec<RecordBatch> = Vec::new();
    let mut new_keys: Vec<(String, Vec<Option<String>>)> = Vec::new();
    for batch in &b.batches {
        let keys = partition_values(batch, &s.partition_columns)?;
        let mut fresh_rows = Vec::new();
        let mut seen_rows = Vec::new();
        for (i, vals) in keys.into_iter().enumerate() {
            let k = serde_json::to_string(&vals).unwrap_or_default();
            if run.replaced_partitions.contains(&k) && !new_keys.iter().any(|(n, _)| *n == k) {
                seen_rows.push(i as u32);
            } else {
                if !new_keys.iter().any(|(n, _)| *n == k) {
                    new_keys.push((k, vals));
                }
                fresh_rows.push(i as u32);
            }
        }
        fresh.push(take_rows(batch, &fresh_rows)?);
        seen.push(take_rows(batch, &seen_rows)?);
    }
    let fresh: Vec<RecordBatch> = fresh.into_iter().filter(|x| x.num_rows() > 0).collect();
    let seen: Vec<RecordBatch> = seen.into_iter().filter(|x| x.num_rows() > 0).collect();
    if !fresh.is_empty() {
        let predicate = replace_predicate(&s.partition_columns, &new_keys);
        let exists = table.version().is_some();
        use deltalake::operations::write::SchemaMode;
        let mut w = table
            .write(fresh)
            .with_save_mode(SaveMode::Overwrite)
            .with_schema_mode(SchemaMode::Merge)
            // the STATE goes with the last commit of the flush
            .with_commit_properties(if seen.is_empty() {
                props(b)
            } else {
                commit_props([])
            });
        w = file_settings(w, s);
        if exists {
            w = w.with_replace_where(predicate);
        }
        table = w.await?;
        for (k, _) in new_keys {
            run.replaced_partitions.insert(k);
        }
    }
    if !seen.is_empty() {
        table = append(table, s, seen, props(b), false).await?;
    }
    Ok(table)
}

/// `(p1 = 'a' AND p2 = 'b') OR (…)` over the partitions being replaced.
fn replace_predicate(cols: &[String], keys: &[(String, Vec<Option<String>>)]) -> String {
    keys.iter()
        .map(|(_, vals)| {
            let parts: Vec<String> = cols
                .iter()
                .zip(vals)
                .map(|(c, v)| match v {
                    Some(v) => format!("{} = '{}'", quote_ident(c), v.replace('\'', "''")),
                    None => format!("{} IS NULL", quote_ident(c)),
                })
                .collect();
            format!("({})", parts.join(" AND "))
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// A column name as a SQL identifier.
pub(super) fn quote_ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// Each row's partition values as text (null stays null).
fn partition_values(
    batch: &RecordBatch,
    cols: &[String],
) -> Result<Vec<Vec<Option<String>>>, Cause> {
    let mut out = vec![Vec::with_capacity(cols.len()); batch.num_rows()];
    for c in cols {
        let col = batch
            .column_by_name(c)
            .ok_or_else(|| Cause::Refused(format!("partition column '{c}' is not in the data")))?;
        let text = arrow_cast::cast(col, &DataType::Utf8)?;
        let text = text
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .ok_or_else(|| {
                ArrowError::CastError(format!("partition column '{c}' did not cast to text"))
            })?;
        for (i, row) in out.iter_mut().enumerate() {
            row.push(text.is_valid(i).then(|| text.value(i).to_string()));
        }
    }
    Ok(out)
}

pub(super) fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, ArrowError> {
    let idx = arrow_array::UInt32Array::from(rows.to_vec());
    arrow_select::take::take_record_batch(batch, &idx)
}

/// The commit just made, as one entry for progress counting (files = commits).
fn added_files(table: &DeltaTable, before: Option<u64>, url: &str, rows: usize) -> Vec<Written> {
    let after = table.version();
    if after == before {
        return Vec::new();
    }
    vec![Written {
        path: format!("{url}/_delta_log/{:020}.json", after.unwrap_or_default()),
        rows,
        bytes: 0,
        pending: None,
    }]
}

/// ACTIVATE_VERSION's delete of rows of earlier versions (and rows with no
/// version): the table and the rows deleted.
pub(super) async fn delete_versions_before(
    table: DeltaTable,
    column: &str,
    version: i64,
) -> Result<(DeltaTable, usize), Cause> {
    let predicate = format!("{c} < {version} OR {c} IS NULL", c = quote_ident(column));
    let props = commit_props([("inlet.activate_version", Value::from(version))]);
    let (t, m) = table
        .delete()
        .with_predicate(predicate)
        .with_commit_properties(props)
        .await?;
    Ok((t, m.num_deleted_rows.unwrap_or(0)))
}

/// The rows without inlet's JSON-text marks: a Delta schema keeps field
/// metadata, and a mark would change the schema of every table written
/// before it (a metadata commit that conflicts with concurrent writers).
pub(super) fn unmarked(batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, ArrowError> {
    use crate::format::{has_json_mark, without_json_marks};
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(batches);
    };
    if !schema.fields().iter().any(|f| has_json_mark(f)) {
        return Ok(batches);
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .map(|f| without_json_marks(f))
        .collect();
    let plain = std::sync::Arc::new(arrow_schema::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ));
    batches
        .into_iter()
        .map(|b| {
            let cols = b
                .columns()
                .iter()
                .zip(plain.fields())
                .map(|(c, f)| match c.data_type() == f.data_type() {
                    true => Ok(c.clone()),
                    false => arrow_cast::cast(c, f.data_type()),
                })
                .collect::<Result<Vec<_>, _>>()?;
            RecordBatch::try_new(plain.clone(), cols)
        })
        .collect()
}
