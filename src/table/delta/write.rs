//! Commits of data files inlet wrote itself ([`super::data_files`]): append,
//! overwrite and partition overwrite, each one commit of `add` (and
//! `remove`) actions built on the snapshot the writer read.
//!
//! Every commit carries a random `inlet.commit` id and is tried once
//! (delta-rs' own retries are off): after any failure the table is read
//! again and the id looked for among the commits since, so a commit whose
//! outcome was unknown (a timeout after the put) is found rather than
//! committed twice. Only a commit that is not there is built again, on the
//! table as it is now, after a pause with jitter.

use std::collections::HashSet;

use arrow_schema::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, MetadataExt as _, Remove};
use deltalake::protocol::{DeltaOperation, SaveMode};
use serde_json::Value;

use super::commit::{commit_props, quote_ident};
use super::{Cause, DeltaMode, DeltaSettings, TableRun, schema_check};

/// What to commit: the files, the rows' schema and the commit's metadata.
pub(super) struct Files<'a> {
    pub adds: Vec<Add>,
    pub schema: &'a SchemaRef,
    pub meta: Vec<(&'static str, Value)>,
    /// A merge: the files it rewrote, and its operation.
    pub merge: Option<(Vec<Remove>, DeltaOperation)>,
}

/// Commits `f` to `table` as the load's mode says; returns the table at
/// the new version. A [`Cause::Conflict`] means nothing was committed and
/// the commit may be built again on the table as it is now.
pub(super) async fn commit_files(
    mut table: DeltaTable,
    run: &mut TableRun,
    s: &DeltaSettings,
    f: Files<'_>,
) -> Result<DeltaTable, Cause> {
    let id = uuid::Uuid::new_v4().to_string();
    let meta = f.meta.into_iter();
    let props = commit_props(meta.chain([("inlet.commit", Value::String(id.clone()))]));
    let before = table.version();
    let partition_by = (!s.partition_columns.is_empty()).then(|| s.partition_columns.clone());
    let (result, replaced) = if before.is_none() {
        let replaced = match s.mode {
            DeltaMode::Overwrite if !s.partition_columns.is_empty() => Replaced::Partitions(
                partitions(&f.adds, &s.partition_columns)
                    .iter()
                    .map(|p| key(p))
                    .collect(),
            ),
            DeltaMode::Overwrite => Replaced::Table,
            _ => Replaced::Nothing,
        };
        (create(&table, f.schema, f.adds, props, s).await, replaced)
    } else {
        let (mut actions, mut op, replaced) = plan(&table, run, s, f.adds, f.schema, partition_by)?;
        if let Some((removes, merge)) = f.merge {
            actions.extend(removes.into_iter().map(Action::Remove));
            op = merge;
        }
        (commit_once(&table, actions, op, props).await, replaced)
    };
    if let Err(e) = result {
        // the put may have landed although it failed: look before anything else
        match table.update_state().await {
            Ok(()) if committed(&table, before, &id).await? => {
                tracing::info!(table = %table.table_url(), "the commit that reported an error is in the table: {e}");
            }
            Ok(()) if e.is_conflict() || before.is_none() => {
                // the retry builds on the table as it is now, without loading it again
                if table.version().is_some() {
                    run.table = Some(table);
                }
                return Err(Cause::Conflict(e.to_string()));
            }
            Ok(()) | Err(deltalake::DeltaTableError::NotATable(_)) => return Err(e),
            Err(other) => return Err(other.into()),
        }
    }
    run.mark_replaced(replaced, s);
    table.update_state().await?;
    Ok(table)
}

/// Whether a commit after `before` carries `inlet.commit` = `id`.
async fn committed(table: &DeltaTable, before: Option<u64>, id: &str) -> Result<bool, Cause> {
    use futures::TryStreamExt;
    let Some(now) = table.version() else {
        return Ok(false);
    };
    let newer = now.saturating_sub(before.unwrap_or(0)) as usize + usize::from(before.is_none());
    if newer == 0 {
        return Ok(false);
    }
    let mut commits = table.history(Some(newer));
    while let Some(c) = commits.try_next().await? {
        if c.info.get("inlet.commit").and_then(Value::as_str) == Some(id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The actions of a commit to an existing table, its operation, and the
/// partitions (or whole table) it replaces.
fn plan(
    table: &DeltaTable,
    run: &TableRun,
    s: &DeltaSettings,
    adds: Vec<Add>,
    schema: &SchemaRef,
    partition_by: Option<Vec<String>>,
) -> Result<(Vec<Action>, DeltaOperation, Replaced), Cause> {
    let snapshot = table.snapshot()?;
    let mut actions = Vec::new();
    let replace_schema = s.mode == DeltaMode::Overwrite && s.schema_overwrite && !run.replaced;
    let new_schema = match replace_schema {
        true => Some(schema.as_ref().clone()),
        false => schema_check::merged(table, schema)?,
    };
    if let Some(new) = new_schema {
        use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
        let columns: deltalake::kernel::StructType = (&new).try_into_kernel()?;
        let metadata = snapshot
            .metadata()
            .clone()
            .with_schema(&columns)
            .map_err(deltalake::DeltaTableError::from)?;
        actions.push(Action::Metadata(metadata));
    }
    let (mode, predicate, replaced) = match s.mode {
        DeltaMode::Overwrite if s.overwrite_partitions || !s.partition_columns.is_empty() => {
            let fresh: Vec<Vec<Option<String>>> = partitions(&adds, &s.partition_columns)
                .into_iter()
                .filter(|p| !run.replaced_partitions.contains(&key(p)))
                .collect();
            let fresh_keys: HashSet<String> = fresh.iter().map(|p| key(p)).collect();
            for f in snapshot.log_data().iter() {
                let values = f.partition_values_map();
                let p: Vec<Option<String>> = s
                    .partition_columns
                    .iter()
                    .map(|c| values.get(c).cloned().flatten())
                    .collect();
                if fresh_keys.contains(&key(&p)) {
                    actions.push(Action::Remove(f.remove_action(true)));
                }
            }
            let predicate =
                (!fresh.is_empty()).then(|| replace_predicate(&s.partition_columns, &fresh));
            (
                SaveMode::Overwrite,
                predicate,
                Replaced::Partitions(fresh_keys),
            )
        }
        DeltaMode::Overwrite if !run.replaced => {
            actions.extend(
                snapshot
                    .log_data()
                    .iter()
                    .map(|f| Action::Remove(f.remove_action(true))),
            );
            (SaveMode::Overwrite, None, Replaced::Table)
        }
        _ => (SaveMode::Append, None, Replaced::Nothing),
    };
    actions.extend(adds.into_iter().map(Action::Add));
    let op = DeltaOperation::Write {
        mode,
        partition_by,
        predicate,
    };
    Ok((actions, op, replaced))
}

/// What a commit replaced, marked once it succeeded (a retry replaces again).
pub(super) enum Replaced {
    Nothing,
    Table,
    Partitions(HashSet<String>),
}

impl TableRun {
    fn mark_replaced(&mut self, r: Replaced, s: &DeltaSettings) {
        match r {
            Replaced::Nothing => {}
            Replaced::Table => self.replaced = true,
            Replaced::Partitions(p) => self.replaced_partitions.extend(p),
        }
        if s.mode == DeltaMode::Overwrite {
            self.replaced = true;
        }
    }
}

/// One attempt at a commit on the snapshot `table` holds.
async fn commit_once(
    table: &DeltaTable,
    actions: Vec<Action>,
    op: DeltaOperation,
    props: CommitProperties,
) -> Result<(), Cause> {
    CommitBuilder::from(props.with_max_retries(0))
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), op)
        .await?;
    Ok(())
}

/// The table's first commit: protocol, schema, partition columns and
/// files, as one `WRITE` (what delta-rs' write commits for a new table).
/// The protocol is reader 1 / writer 2 unless a timestamp without time
/// zone needs `timestampNtz` (reader 3 / writer 7).
async fn create(
    table: &DeltaTable,
    schema: &SchemaRef,
    adds: Vec<Add>,
    props: CommitProperties,
    s: &DeltaSettings,
) -> Result<(), Cause> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let columns: deltalake::kernel::StructType = schema.as_ref().try_into_kernel()?;
    let protocol = match schema.fields().iter().any(|f| has_ntz(f.data_type())) {
        true => serde_json::json!({"minReaderVersion": 3, "minWriterVersion": 7,
            "readerFeatures": ["timestampNtz"], "writerFeatures": ["timestampNtz"]}),
        false => serde_json::json!({"minReaderVersion": 1, "minWriterVersion": 2}),
    };
    let protocol = serde_json::from_value(protocol)
        .map_err(|e| Cause::Refused(format!("building the protocol action: {e}")))?;
    let metadata = deltalake::kernel::new_metadata(
        &columns,
        &s.partition_columns,
        std::iter::empty::<(String, String)>(),
    )
    .map_err(deltalake::DeltaTableError::from)?;
    let mut actions = vec![Action::Protocol(protocol), Action::Metadata(metadata)];
    actions.extend(adds.into_iter().map(Action::Add));
    let op = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: (!s.partition_columns.is_empty()).then(|| s.partition_columns.clone()),
        predicate: None,
    };
    CommitBuilder::from(props.with_max_retries(0))
        .with_actions(actions)
        .build(None, table.log_store(), op)
        .await?;
    Ok(())
}

fn has_ntz(t: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType as D;
    match t {
        D::Timestamp(_, None) => true,
        D::List(f) | D::LargeList(f) => has_ntz(f.data_type()),
        D::Struct(fs) => fs.iter().any(|f| has_ntz(f.data_type())),
        _ => false,
    }
}

/// The distinct partitions of `adds`, values in column order.
fn partitions(adds: &[Add], cols: &[String]) -> Vec<Vec<Option<String>>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for a in adds {
        let p: Vec<Option<String>> = cols
            .iter()
            .map(|c| a.partition_values.get(c).cloned().flatten())
            .collect();
        if seen.insert(key(&p)) {
            out.push(p);
        }
    }
    out
}

/// A partition's identity in [`TableRun::replaced_partitions`].
fn key(p: &[Option<String>]) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

/// `(p1 = 'a' AND p2 IS NULL) OR (…)` over the partitions being replaced
/// (recorded in the commit; readers and conflict checks use it).
fn replace_predicate(cols: &[String], parts: &[Vec<Option<String>>]) -> String {
    parts
        .iter()
        .map(|vals| {
            let terms: Vec<String> = cols
                .iter()
                .zip(vals)
                .map(|(c, v)| match v {
                    Some(v) => format!("{} = '{}'", quote_ident(c), v.replace('\'', "''")),
                    None => format!("{} IS NULL", quote_ident(c)),
                })
                .collect();
            format!("({})", terms.join(" AND "))
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}
