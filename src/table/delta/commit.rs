//! The commits themselves: the dispatch of a flush (merge, or the data
//! files inlet wrote), the state-only commit and ACTIVATE_VERSION's delete,
//! each carrying inlet's version (and the STATE) in the commit info.

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use serde_json::Value;

use super::{Cause, DeltaBatch, DeltaMode, DeltaSettings, TableRun, merge, schema_check, write};
use crate::table::Written;

/// The commit info of a flush: its stream and the STATE it makes durable.
pub(super) fn meta(b: &DeltaBatch<'_>) -> Vec<(&'static str, Value)> {
    let state = b.state.clone().map(|s| ("inlet.state", s));
    std::iter::once(("inlet.stream", Value::String(b.stream.to_string())))
        .chain(state)
        .collect()
}

/// [`meta`] as commit properties.
pub(super) fn props(b: &DeltaBatch<'_>) -> CommitProperties {
    commit_props(meta(b))
}

/// Commit properties: inlet's version plus `extra` in the commit info, and
/// delta-rs' own retries of commits that do not conflict. Expired log
/// files are cleaned up after checkpoints only
/// ([`super::maintenance::after_commit`]), not by a listing per commit.
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
        .with_cleanup_expired_logs(Some(false))
}

/// Commits one flush: a merge of its rows, or its data files.
pub(super) async fn commit(
    table: DeltaTable,
    run: &mut TableRun,
    s: &DeltaSettings,
    b: &DeltaBatch<'_>,
    url: &str,
) -> Result<(DeltaTable, Vec<Written>), Cause> {
    let exists = table.version().is_some();
    let schema = b
        .schema
        .clone()
        .ok_or_else(|| Cause::Refused("nothing to commit".into()))?;
    let overwrite_schema = s.mode == DeltaMode::Overwrite && s.schema_overwrite && !run.replaced;
    if exists {
        schema_check::writable(&table, s.mode != DeltaMode::Append)?;
    }
    if exists && !overwrite_schema {
        schema_check::compatible(&table, &schema)?;
    }
    let before = table.version();
    let table = match s.mode {
        DeltaMode::Merge if exists => merge::upsert(table, s, b).await?,
        _ => {
            let files = write::Files {
                adds: b.adds.clone(),
                schema: &schema,
                meta: meta(b),
                merge: None,
            };
            write::commit_files(table, run, s, files).await?
        }
    };
    let rows = match s.mode {
        DeltaMode::Merge => b.batches.iter().map(RecordBatch::num_rows).sum(),
        _ => b.rows,
    };
    let bytes = b
        .adds
        .iter()
        .map(|a| usize::try_from(a.size).unwrap_or_default())
        .sum();
    let files = added_files(&table, before, url, rows, bytes);
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

/// A column name as a SQL identifier.
pub(super) fn quote_ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

pub(super) fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, ArrowError> {
    let idx = arrow_array::UInt32Array::from(rows.to_vec());
    arrow_select::take::take_record_batch(batch, &idx)
}

/// The commit just made, as one entry for progress counting (files = commits).
pub(super) fn added_files(
    table: &DeltaTable,
    before: Option<u64>,
    url: &str,
    rows: usize,
    bytes: usize,
) -> Vec<Written> {
    let after = table.version();
    if after == before {
        return Vec::new();
    }
    vec![Written {
        path: format!(
            "{}/_delta_log/{:020}.json",
            url.trim_end_matches('/'),
            after.unwrap_or_default()
        ),
        rows,
        bytes,
        pending: None,
        version: after,
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
