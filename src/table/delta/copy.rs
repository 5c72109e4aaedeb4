//! A full copy into a Delta table (`inlet export`). Data files are written
//! while the rows arrive ([`super::data_files`]: one open file per
//! partition, closed at each part), so memory stays bounded however
//! big the table; nothing is visible until the one commit that ends the
//! copy adds every file and, in overwrite mode, removes every file the table
//! had. A reader sees the old table or the new one, never a mix, and a copy
//! that fails leaves only unreferenced files (`inlet vacuum` removes them).

use std::collections::HashMap;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use serde_json::Value;

use super::stats::StatsColumns;
use super::{Cause, DeltaError, DeltaMode, DeltaTables, commit, open, schema_check, shard, types};
use crate::layout::TableNames;
use crate::table::Written;

impl DeltaTables {
    /// A copy whose data files are written as rows arrive (not an
    /// increment, whose rows wait for their merge).
    pub(super) fn copies_files(&self) -> bool {
        self.settings.copy && self.settings.mode != DeltaMode::Merge
    }

    /// Rows as they wait for their merge: as Delta holds them.
    pub(super) fn held_form(
        &self,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<RecordBatch>, DeltaError> {
        batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| Ok(types::to_delta(&b, &types::delta_schema(&b.schema()))?))
            .collect()
    }

    /// The manifest of the newest commit an export made to the table: one
    /// that carries `inlet.copy`, or an increment's merge that carries the
    /// watermark as `inlet.state` (the merges between carry neither).
    pub(super) fn copy_manifest(&self, names: &TableNames) -> Result<Option<Value>, DeltaError> {
        use futures::TryStreamExt;
        let dir = self.layout.table_dir(names);
        let url = open::table_url(&self.store, &dir)?;
        self.store.block_on(async {
            let table = open::open_table(&self.store, &url).await?;
            if table.version().is_none() {
                return Ok(None);
            }
            let mut commits = table.history(None);
            while let Some(c) = commits.try_next().await.map_err(|e| DeltaError::Table {
                url: url.clone(),
                context: Some("reading the history".into()),
                cause: e.into(),
            })? {
                if let Some(m) = c.info.get("inlet.copy") {
                    return Ok(Some(m.clone()));
                }
                if let Some(w) = c.info.get("inlet.state") {
                    return Ok(Some(serde_json::json!({ "incremental": w })));
                }
            }
            Ok(None)
        })
    }

    /// Closes the copy's open data files: they are complete but not yet
    /// part of the table; each [`Written`] carries its `add` action.
    pub(super) fn copy_close(&mut self, names: &TableNames) -> Result<Vec<Written>, DeltaError> {
        let Some((adds, _, _)) = self.close_rows(names)? else {
            return Ok(Vec::new());
        };
        let dir = self.layout.table_dir(names);
        adds.into_iter()
            .map(|add| {
                let pending = serde_json::to_value(&add).map_err(|e| {
                    table_error(&dir, "recording a data file", Cause::Refused(e.to_string()))
                })?;
                Ok(Written {
                    path: format!("{}/{}", dir.trim_end_matches('/'), add.path),
                    rows: records(&add),
                    bytes: usize::try_from(add.size).unwrap_or_default(),
                    pending: Some(pending),
                    version: None,
                })
            })
            .collect()
    }

    /// The commit that makes the copy the table's content: `written` are the
    /// data files of every writer of the copy, `schema` the source's columns.
    pub(super) fn copy_commit(
        &mut self,
        names: &TableNames,
        schema: &SchemaRef,
        written: &[Written],
        manifest: &Value,
    ) -> Result<(), DeltaError> {
        let dir = self.layout.table_dir(names);
        let url = open::table_url(&self.store, &dir)?;
        let mut adds = Vec::with_capacity(written.len());
        for w in written {
            let Some(p) = &w.pending else { continue };
            let add: Add = serde_json::from_value(p.clone()).map_err(|e| {
                table_error(
                    &url,
                    "reading a data file's record",
                    Cause::Refused(e.to_string()),
                )
            })?;
            adds.push(Action::Add(add));
        }
        let schema = types::delta_schema(schema);
        let watermark = manifest.get("incremental").cloned();
        // a shard's commit lists its files: the shard that replaces the table keeps its siblings'
        let mut manifest = manifest.clone();
        if manifest.get("shard").is_some() {
            manifest["shard"]["files"] = adds
                .iter()
                .filter_map(|a| match a {
                    Action::Add(a) => Some(Value::String(a.path.clone())),
                    _ => None,
                })
                .collect();
        }
        let manifest = &manifest;
        let props = commit::commit_props(
            [
                ("inlet.stream", Value::String(names.stream.clone())),
                ("inlet.copy", manifest.clone()),
            ]
            .into_iter()
            .chain(watermark.clone().map(|w| ("inlet.state", w))),
        );
        let (store, settings) = (&self.store, &self.settings);
        if let Some(id) = manifest["shard"]["id"].as_str() {
            let shard = shard::Shard {
                id,
                k: manifest["shard"]["k"].as_u64().unwrap_or_default(),
                resumed: manifest["shard"]["resumed"].as_bool() == Some(true),
            };
            return store.block_on(shard::commit(
                store, &url, &schema, adds, props, settings, shard,
            ));
        }
        store.block_on(async {
            let table = open::open_table(store, &url).await?;
            let exists = table.version().is_some();
            if exists {
                schema_check::writable(&table, settings.mode != DeltaMode::Append)
                    .map_err(|cause| table_error(&url, "checking the table", cause))?;
            }
            let result = match settings.mode {
                // the increment's merges are done; the last carried the
                // watermark unless it was empty
                DeltaMode::Merge if exists => {
                    let newest = newest_state(&table).await?;
                    match watermark {
                        Some(w) if newest.as_ref() != Some(&w) => {
                            commit::state_commit(&table, &w, Some(manifest)).await
                        }
                        _ => Ok(()),
                    }
                }
                DeltaMode::Append if exists => append(&table, &schema, adds, props, settings).await,
                _ => replace(&table, &schema, adds, props, settings, exists).await,
            };
            result.map_err(|cause| DeltaError::Table {
                url: url.clone(),
                context: Some("committing the copy".into()),
                cause,
            })
        })
    }
}

/// The `inlet.state` of the table's newest commit.
async fn newest_state(table: &DeltaTable) -> Result<Option<Value>, DeltaError> {
    use futures::TryStreamExt;
    let mut commits = table.history(Some(1));
    let newest = commits.try_next().await.map_err(|e| DeltaError::Table {
        url: table.table_url().to_string(),
        context: Some("reading the history".into()),
        cause: e.into(),
    })?;
    Ok(newest.and_then(|c| c.info.get("inlet.state").cloned()))
}

/// Adds the copy's files to the table as it is.
pub(super) async fn append(
    table: &DeltaTable,
    schema: &SchemaRef,
    adds: Vec<Action>,
    props: deltalake::kernel::transaction::CommitProperties,
    s: &super::DeltaSettings,
) -> Result<(), Cause> {
    schema_check::compatible(table, schema)?;
    let partition_by = (!s.partition_columns.is_empty()).then(|| s.partition_columns.clone());
    CommitBuilder::from(props)
        .with_actions(adds)
        .build(
            Some(table.snapshot()?),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by,
                predicate: None,
            },
        )
        .await?;
    Ok(())
}

/// Creates the table, or replaces it: its schema and files become the
/// copy's, its protocol and properties stay.
async fn replace(
    table: &DeltaTable,
    schema: &SchemaRef,
    mut actions: Vec<Action>,
    props: deltalake::kernel::transaction::CommitProperties,
    s: &super::DeltaSettings,
    exists: bool,
) -> Result<(), Cause> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let columns: deltalake::kernel::StructType = schema.as_ref().try_into_kernel()?;
    let mut create = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_columns(columns.fields().cloned())
        .with_partition_columns(s.partition_columns.clone())
        .with_save_mode(SaveMode::Overwrite)
        .with_commit_properties(props);
    if exists {
        let snapshot = table.snapshot()?;
        actions.push(Action::Protocol(snapshot.protocol().clone()));
        create =
            create.with_configuration(configuration(table).into_iter().map(|(k, v)| (k, Some(v))));
    }
    create.with_actions(actions).await?;
    Ok(())
}

/// The table's properties (`delta.*` and the user's own).
fn configuration(table: &DeltaTable) -> HashMap<String, String> {
    // the kernel keeps the accessor internal; the action's JSON is public
    let Ok(snapshot) = table.snapshot() else {
        return HashMap::new();
    };
    serde_json::to_value(snapshot.metadata())
        .ok()
        .and_then(|m| serde_json::from_value(m["configuration"].clone()).ok())
        .unwrap_or_default()
}

/// Which columns get statistics: the table's own settings, else the
/// protocol's default (the first 32).
pub(super) fn stats_columns(table: &DeltaTable) -> StatsColumns {
    let conf = configuration(table);
    StatsColumns::from_properties(
        conf.get("delta.dataSkippingNumIndexedCols")
            .map(String::as_str),
        conf.get("delta.dataSkippingStatsColumns")
            .map(String::as_str),
    )
}

/// Rows in a data file, from its statistics.
fn records(add: &Add) -> usize {
    add.stats
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .and_then(|v| v["numRecords"].as_u64())
        .map_or(0, |n| n as usize)
}

pub(super) fn table_error(url: &str, what: &str, cause: Cause) -> DeltaError {
    DeltaError::Table {
        url: url.to_string(),
        context: Some(what.to_string()),
        cause,
    }
}
