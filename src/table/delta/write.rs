//! Commits of data files inlet wrote itself ([`super::data_files`]): append,
//! overwrite and partition overwrite, each one commit of `add` (and
//! `remove`) actions built on the snapshot the writer read.
//!
//! Every commit carries a random `inlet.commit` id. delta-rs redoes a commit
//! that lost its version to a non-conflicting one (its log store, inlet's
//! [`super::logstore::OwnCommits`], knows a version that is this very commit);
//! after any other failure the table is read again and the id looked for
//! among the commits since, so a commit whose outcome was unknown (a timeout
//! after the put) is found rather than committed twice. Only a commit that
//! is not there is built again, on the table as it is now, after a pause
//! with jitter.

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
        // delta-rs redoes a commit that lost its version to one that does not
        // conflict with it; a merge is planned again instead, on the new table
        let mut retries = DELTA_RETRIES;
        if let Some((removes, merge)) = f.merge {
            actions.extend(removes.into_iter().map(Action::Remove));
            op = merge;
            retries = 0;
        }
        (
            commit_once(&table, actions, op, props, retries).await,
            replaced,
        )
    };
    if let Err(e) = result {
        tracing::debug!(table = %table.table_url(), "commit failed: {e}");
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

/// Times delta-rs redoes a commit at the next version after another writer
/// took its version with a commit it does not conflict with (a concurrent
/// append): cheap, it reads only the newer commits. Safe because the log
/// store recognises a version that is already this commit
/// ([`super::logstore::OwnCommits`]).
const DELTA_RETRIES: usize = 25;

/// A commit on the snapshot `table` holds, with `retries` of delta-rs' own.
async fn commit_once(
    table: &DeltaTable,
    actions: Vec<Action>,
    op: DeltaOperation,
    props: CommitProperties,
    retries: usize,
) -> Result<(), Cause> {
    let done = CommitBuilder::from(props.with_max_retries(retries))
        .with_actions(actions)
        .build(Some(table.snapshot()?), table.log_store(), op)
        .await?;
    if done.metrics.num_retries > 0 {
        tracing::debug!(
            version = done.version,
            retries = done.metrics.num_retries,
            "committed at a later version after concurrent commits"
        );
    }
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

#[cfg(test)]
mod tests {
    //! A commit whose put landed but reported an error (a timeout after the
    //! write) must be found, not committed again.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };

    use crate::layout::{Layout, LayoutKind, LayoutSettings};
    use crate::storage::Store;
    use crate::table::delta::{DeltaMode, DeltaTables, open_table, table_url};
    use crate::table::{Commit, Table};

    /// Memory whose `fail_at`-th log commit is stored and then reported
    /// failed: as a lost reply, or (`exists`) as what the object store's own
    /// retry of the put then sees, the object already there.
    #[derive(Debug)]
    struct LostReply {
        inner: InMemory,
        commits: AtomicUsize,
        fail_at: usize,
        exists: bool,
    }

    impl std::fmt::Display for LostReply {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "LostReply")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for LostReply {
        async fn put_opts(
            &self,
            location: &Path,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            let commit = location.as_ref().contains("_delta_log/")
                && location.as_ref().ends_with(".json")
                && matches!(opts.mode, PutMode::Create);
            let r = self.inner.put_opts(location, payload, opts).await?;
            if commit && self.commits.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at {
                if self.exists {
                    return Err(object_store::Error::AlreadyExists {
                        path: location.to_string(),
                        source: "written by the first try".into(),
                    });
                }
                return Err(object_store::Error::Generic {
                    store: "LostReply",
                    source: "the connection closed before the reply".into(),
                });
            }
            Ok(r)
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    fn ids(b: &[i64]) -> arrow_array::RecordBatch {
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "id",
            arrow_schema::DataType::Int64,
            true,
        )]));
        arrow_array::RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow_array::Int64Array::from(b.to_vec()))],
        )
        .unwrap()
    }

    #[test]
    fn a_commit_whose_reply_was_lost_is_found_and_not_made_twice() {
        for (fail_at, exists) in [(1, false), (2, false), (2, true), (3, true)] {
            let store = Store::from_object_store(Arc::new(LostReply {
                inner: InMemory::new(),
                commits: AtomicUsize::new(0),
                fail_at,
                exists,
            }))
            .unwrap();
            let layout = Layout::new(LayoutSettings::of(LayoutKind::Mage), "parquet");
            let mut settings = crate::table::delta::tests::settings(DeltaMode::Append);
            settings.partition_columns = Vec::new();
            let mut t = DeltaTables::new(store.clone(), layout.clone(), settings);
            let names = layout.names("orders");
            for b in [[1i64, 2], [3, 4], [5, 6]] {
                t.commit(Commit {
                    names: &names,
                    keys: &[],
                    batches: vec![ids(&b)],
                    state: None,
                })
                .unwrap();
            }
            let url = table_url(&store, "orders").unwrap();
            let table = store.block_on(open_table(&store, &url)).unwrap();
            // three flushes, three commits (versions 0, 1, 2), each file once
            assert_eq!(
                table.version(),
                Some(2),
                "lost reply of commit {fail_at} ({exists})"
            );
            assert_eq!(table.get_file_uris().unwrap().count(), 3);
        }
    }
}
