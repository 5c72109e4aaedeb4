//! Delta Lake tables (delta-rs): each committed batch becomes one atomic
//! commit (two for a partition overwrite that also appends), carrying the
//! STATE it makes durable in the commit's metadata.
//!
//! Modes: `append`; `overwrite` (the run's first commit replaces the table,
//! later ones append); partition overwrite (the first rows of a partition in
//! the run replace that partition with a `replaceWhere` predicate); `merge`
//! (upsert on the stream's key properties, last record per key wins,
//! `_sdc_deleted_at` rows deleted or kept).

use std::collections::{HashMap, HashSet};

use arrow_array::RecordBatch;
use deltalake::kernel::transaction::TransactionError;
use deltalake::{DeltaTable, DeltaTableError};
use serde_json::Value;

use super::{Commit, Table, TableError, Traits, Written};
use crate::layout::{Layout, TableNames};
use crate::storage::{Location, Store};

mod commit;
mod copy;
mod data_files;
mod logstore;
pub mod maintenance;
mod merge;
mod merge_files;
mod open;
mod schema_check;
mod shard;
pub mod stats;
pub mod types;
mod write;

pub use open::{open_table, table_url};

/// How a stream's rows go into its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaMode {
    /// Every flush is appended.
    Append,
    /// The run replaces the table (or the partitions it touches).
    Overwrite,
    /// Upsert on `key_properties`.
    Merge,
}

/// Delta settings of a load.
#[derive(Debug, Clone)]
pub struct DeltaSettings {
    /// Write mode.
    pub mode: DeltaMode,
    /// Partition columns (plain column names).
    pub partition_columns: Vec<String>,
    /// In overwrite mode, replace only the partitions present in the run.
    pub overwrite_partitions: bool,
    /// In merge mode, delete rows whose `_sdc_deleted_at` is set (else keep them).
    pub hard_delete: bool,
    /// In overwrite mode, let the run replace the table's schema.
    pub schema_overwrite: bool,
    /// Target size of data files.
    pub target_file_size: Option<u64>,
    /// The destination is the table itself (Mage's `table_uri`): every
    /// stream writes there instead of `{destination}/{table}`.
    pub single_table: bool,
    /// Name of the `_sdc_deleted_at` column after header renaming.
    pub deleted_at_column: String,
    /// How data files are encoded (codec, row groups): the plain-file
    /// path's own Parquet encoder.
    pub encoder: crate::format::Encoder,
    /// Full copies (`inlet export`): data files are written as rows arrive
    /// and a copy is one commit, made by [`Table::complete_copy`].
    pub copy: bool,
}

/// Why a Delta operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// An operation on one table failed.
    #[error("table {url}: {}{cause}", context.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Table {
        /// The table's URL.
        url: String,
        /// What inlet was doing, when not a plain commit.
        context: Option<String>,
        /// What went wrong.
        #[source]
        cause: Cause,
    },
    /// The table's location cannot be used.
    #[error("{0}")]
    Location(String),
    /// The rows could not be prepared for Delta (a bug: report it).
    #[error("preparing the rows: {0}")]
    Rows(#[from] arrow_schema::ArrowError),
}

/// What went wrong in a Delta operation.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// delta-rs refused or failed (message redacted of secrets; boxed:
    /// delta-rs errors are large).
    #[error("{}", crate::storage::redact(&.0.to_string()))]
    Delta(#[source] Box<DeltaTableError>),
    /// DataFusion failed while planning a merge.
    #[error("{}", crate::storage::redact(&.0.to_string()))]
    DataFusion(#[source] Box<deltalake::datafusion::error::DataFusionError>),
    /// Arrow failed on the rows (partition values, keys).
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The rows or settings do not fit the table; the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// Another writer committed first and nothing of this commit is in the
    /// table: it may be built again on the table as it is now.
    #[error("another writer committed first: {0}")]
    Conflict(String),
    /// A data file could not be encoded (boxed, as the others: errors travel far).
    #[error("{0}")]
    Format(#[source] Box<crate::format::FormatError>),
    /// A data file could not be stored.
    #[error("{0}")]
    Storage(#[source] Box<crate::storage::StorageError>),
}

impl From<crate::format::FormatError> for Cause {
    fn from(e: crate::format::FormatError) -> Self {
        Cause::Format(Box::new(e))
    }
}

impl From<crate::storage::StorageError> for Cause {
    fn from(e: crate::storage::StorageError) -> Self {
        Cause::Storage(Box::new(e))
    }
}

impl From<DeltaTableError> for Cause {
    fn from(e: DeltaTableError) -> Self {
        Cause::Delta(Box::new(e))
    }
}

impl From<deltalake::datafusion::error::DataFusionError> for Cause {
    fn from(e: deltalake::datafusion::error::DataFusionError) -> Self {
        Cause::DataFusion(Box::new(e))
    }
}

impl Cause {
    /// Another writer committed first (created the table, changed its
    /// metadata, or took the version): redo the commit against the table as
    /// it is now. delta-rs retries only commits that do not conflict.
    pub fn is_conflict(&self) -> bool {
        let e = match self {
            Cause::Conflict(_) => return true,
            Cause::Delta(e) => e,
            _ => return false,
        };
        matches!(
            **e,
            DeltaTableError::VersionAlreadyExists(_)
                | DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(_)
                        | TransactionError::MaxCommitAttempts(_)
                        | TransactionError::VersionAlreadyExists(_),
                }
        )
    }
}

impl DeltaSettings {
    /// How Delta tables with these settings behave.
    pub fn traits(&self) -> Traits {
        Traits {
            stores_state: true,
            versions: true,
            needs_keys: self.mode == DeltaMode::Merge,
            rows_early: true,
            // merges hold their batch until the commit
            unbounded_batches: self.mode != DeltaMode::Merge,
        }
    }
}

/// Per table, what this run did to it so far.
struct TableRun {
    table: Option<DeltaTable>,
    url: String,
    /// The run's first overwrite commit happened.
    replaced: bool,
    /// Partitions this run already replaced (partition overwrite).
    replaced_partitions: HashSet<String>,
    /// The STATE the run's last commit to this table recorded.
    last_state: Option<Value>,
}

/// The Delta tables of one run, opened on first use.
pub struct DeltaTables {
    store: Store,
    layout: Layout,
    settings: DeltaSettings,
    tables: HashMap<String, TableRun>,
    /// Per stream: rows of the open batch of a merge, held until its commit.
    held: HashMap<String, Vec<RecordBatch>>,
    /// Per stream: the data files being written (a flush, or a copy's part).
    open_files: HashMap<String, OpenFiles>,
    /// Per stream: which columns are worth a Parquet dictionary.
    hints: HashMap<String, crate::format::DictionaryHints>,
    /// Per stream: the source's columns of a full copy begun here.
    copy_schemas: HashMap<String, arrow_schema::SchemaRef>,
}

/// A stream's data files being written, with the rows' schema (as Delta
/// holds it, partition columns included) and their count.
struct OpenFiles {
    files: data_files::DataFiles,
    schema: arrow_schema::SchemaRef,
    rows: usize,
}

/// One batch for a Delta table.
struct DeltaBatch<'a> {
    /// Stream name (for messages).
    stream: &'a str,
    /// Key columns (merge mode).
    keys: &'a [String],
    /// Merge mode: the rows, held for the merge.
    batches: Vec<RecordBatch>,
    /// The data files written (merge mode: the first merge, into no table).
    adds: Vec<deltalake::kernel::Add>,
    /// The rows' schema as Delta holds it.
    schema: Option<arrow_schema::SchemaRef>,
    /// Rows in `adds`.
    rows: usize,
    /// The STATE this commit makes durable, stored in the commit.
    state: Option<Value>,
}

/// Commits redone after a conflicting concurrent commit.
const CONFLICT_ATTEMPTS: u32 = 60;

/// A pause before commit attempt `attempt` + 1: doubling from 20 ms up to
/// 1.3 s, times a random factor in [0.5, 1.5) so that writers that collided
/// do not collide again in step.
fn backoff(attempt: u32) -> std::time::Duration {
    let base = 20u64 << attempt.min(6);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u64;
    std::time::Duration::from_millis(base * (500 + jitter) / 1000)
}

impl DeltaTables {
    /// Tables under `store`'s destination, in the folders `layout` names.
    pub fn new(store: Store, layout: Layout, settings: DeltaSettings) -> Self {
        open::register_logstores();
        DeltaTables {
            store,
            layout,
            settings,
            tables: HashMap::new(),
            held: HashMap::new(),
            open_files: HashMap::new(),
            hints: HashMap::new(),
            copy_schemas: HashMap::new(),
        }
    }

    /// Commits one batch; returns the commit (for progress).
    fn write(&mut self, table_dir: &str, b: DeltaBatch<'_>) -> Result<Vec<Written>, DeltaError> {
        let rows = b.rows + b.batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        let store = self.store.clone();
        let settings = self.settings.clone();
        let mut attempt = 0;
        loop {
            let run = self.open(table_dir)?;
            let url = run.url.clone();
            let table = run.take_table()?;
            match store.block_on(commit::commit(table, run, &settings, &b, &url)) {
                Ok((table, files)) => {
                    tracing::debug!(stream = %b.stream, table = %url, rows, attempt, "delta commit");
                    self.committed(table_dir, table, b.state.as_ref())?;
                    return Ok(files);
                }
                // the handle was taken (a conflict may have left the table as it
                // is now): the next use reloads it if needed, and the run's flags
                // (replaced, partitions, state) stay
                Err(cause) if cause.is_conflict() && attempt + 1 < CONFLICT_ATTEMPTS => {
                    attempt += 1;
                    let pause = backoff(attempt);
                    tracing::debug!(stream = %b.stream, table = %url, attempt, ?pause, "concurrent commit; retrying: {cause}");
                    std::thread::sleep(pause);
                }
                Err(cause) => {
                    return Err(DeltaError::Table {
                        url,
                        context: None,
                        cause,
                    });
                }
            }
        }
    }

    /// After a commit: expired log files go (at checkpoints), the handle is
    /// kept for the next commit, and the table's STATE is known.
    fn committed(
        &mut self,
        table_dir: &str,
        table: DeltaTable,
        state: Option<&Value>,
    ) -> Result<(), DeltaError> {
        let store = self.store.clone();
        let run = self
            .tables
            .get_mut(table_dir)
            .ok_or_else(|| DeltaError::Location(format!("table {table_dir} vanished")))?;
        store
            .block_on(maintenance::after_commit(&table))
            .map_err(|cause| DeltaError::Table {
                url: run.url.clone(),
                context: Some("cleaning up expired log files".into()),
                cause,
            })?;
        if reuse_handle(&store) {
            run.table = Some(table);
        }
        if let Some(state) = state {
            run.last_state = Some(state.clone());
        }
        Ok(())
    }

    /// Encodes `batches` into the stream's open data files (opened on the
    /// first rows, with the table's statistics settings).
    fn write_rows(
        &mut self,
        names: &TableNames,
        batches: Vec<RecordBatch>,
    ) -> Result<(), DeltaError> {
        for b in batches.into_iter().filter(|b| b.num_rows() > 0) {
            let rows = types::to_delta(&b, &types::delta_schema(&b.schema()))?;
            if !self.open_files.contains_key(&names.stream) {
                let files = self.start_files(names)?;
                self.open_files.insert(
                    names.stream.clone(),
                    OpenFiles {
                        files,
                        schema: rows.schema(),
                        rows: 0,
                    },
                );
            }
            let hints = self.hints.entry(names.stream.clone()).or_default();
            let (store, dir) = (&self.store, self.layout.table_dir(names));
            if let Some(open) = self.open_files.get_mut(&names.stream) {
                open.files
                    .write(store, &rows, hints)
                    .map_err(|cause| copy::table_error(&dir, "writing a data file", cause))?;
                open.rows += rows.num_rows();
            }
        }
        Ok(())
    }

    fn start_files(&mut self, names: &TableNames) -> Result<data_files::DataFiles, DeltaError> {
        let dir = self.layout.table_dir(names);
        let replaces = self.settings.mode != DeltaMode::Append;
        let run = self.open(&dir)?;
        // a table inlet cannot write is refused before any file is written
        if let Some(t) = run.table.as_ref().filter(|t| t.version().is_some()) {
            schema_check::writable(t, replaces).map_err(|cause| DeltaError::Table {
                url: run.url.clone(),
                context: None,
                cause,
            })?;
        }
        let columns = run
            .table
            .as_ref()
            .map(copy::stats_columns)
            .unwrap_or_default();
        let files_dir = match self.settings.single_table {
            true => "",
            false => dir.as_str(),
        };
        Ok(data_files::DataFiles::new(
            files_dir,
            &self.settings.partition_columns,
            &self.settings.encoder,
            columns,
            self.settings.target_file_size,
        ))
    }

    /// Finishes the stream's open data files: their `add` actions, the
    /// rows' schema and count (`None` when no rows came).
    fn close_rows(
        &mut self,
        names: &TableNames,
    ) -> Result<Option<(Vec<deltalake::kernel::Add>, arrow_schema::SchemaRef, usize)>, DeltaError>
    {
        let Some(open) = self.open_files.remove(&names.stream) else {
            return Ok(None);
        };
        let hints = self.hints.entry(names.stream.clone()).or_default();
        let dir = self.layout.table_dir(names);
        let adds = open
            .files
            .close(&self.store, hints)
            .map_err(|cause| copy::table_error(&dir, "closing a data file", cause))?;
        Ok(Some((adds, open.schema, open.rows)))
    }

    /// Records `state` in every table of the run whose last commit carries an
    /// older one, as a commit of only an application transaction (`inlet`)
    /// and the state: the table then says how far the whole run got.
    fn record(&mut self, state: &Value) -> Result<(), TableError> {
        let dirs: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, r)| r.last_state.as_ref() != Some(state))
            .map(|(d, _)| d.clone())
            .collect();
        for dir in dirs {
            let store = self.store.clone();
            let fail = |source| TableError::Delta {
                stream: dir.clone(),
                source,
            };
            let mut attempt = 0;
            loop {
                let run = self.open(&dir).map_err(fail)?;
                let table = run.take_table().map_err(fail)?;
                if table.version().is_none() {
                    // opened (e.g. by ACTIVATE_VERSION) but never written
                    run.table = Some(table);
                    break;
                }
                let r = store.block_on(commit::state_commit(&table, state, None));
                // reload on next use either way: the handle is now behind the log
                run.table = None;
                match r {
                    Ok(()) => {
                        run.last_state = Some(state.clone());
                        break;
                    }
                    // another process committed (its own STATE) meanwhile
                    Err(e) if e.is_conflict() && attempt + 1 < CONFLICT_ATTEMPTS => attempt += 1,
                    Err(cause) => {
                        return Err(fail(DeltaError::Table {
                            url: run.url.clone(),
                            context: Some("recording the final STATE".into()),
                            cause,
                        }));
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the rows of table versions before `version` (and rows with no
    /// version), as one Delta delete commit.
    fn activate(
        &mut self,
        stream: &str,
        table_dir: &str,
        version: i64,
        column: &str,
    ) -> Result<(), DeltaError> {
        let store = self.store.clone();
        let run = self.open(table_dir)?;
        let url = run.url.clone();
        let table = run.take_table()?;
        let has_column = table.version().is_some()
            && schema_check::table_arrow_schema(&table)
                .map(|s| s.field_with_name(column).is_ok())
                .unwrap_or(false);
        if !has_column {
            run.table = Some(table);
            tracing::debug!(
                stream,
                version,
                "ACTIVATE_VERSION: no rows of earlier versions"
            );
            return Ok(());
        }
        match store.block_on(commit::delete_versions_before(table, column, version)) {
            Ok((t, deleted)) => {
                tracing::info!(
                    stream,
                    version,
                    deleted,
                    "ACTIVATE_VERSION: rows of earlier versions deleted"
                );
                if reuse_handle(&store) {
                    run.table = Some(t);
                }
                Ok(())
            }
            Err(cause) => Err(DeltaError::Table {
                url,
                context: Some(format!("ACTIVATE_VERSION {version}")),
                cause,
            }),
        }
    }

    /// The run's view of the table in `table_dir`, loaded if needed.
    fn open(&mut self, table_dir: &str) -> Result<&mut TableRun, DeltaError> {
        if !self.tables.contains_key(table_dir) {
            if self.settings.single_table
                && let Some(other) = self.tables.keys().next()
            {
                return Err(DeltaError::Location(format!(
                    "table_uri names one table, and stream folders '{other}' and '{table_dir}' \
                     would both write into it; set destination (one table per stream below it) \
                     or run one stream per load"
                )));
            }
            let dir = if self.settings.single_table {
                ""
            } else {
                table_dir
            };
            let url = table_url(&self.store, dir)?;
            self.tables.insert(
                table_dir.to_string(),
                TableRun {
                    table: None,
                    url,
                    replaced: false,
                    replaced_partitions: HashSet::new(),
                    last_state: None,
                },
            );
        }
        let store = &self.store;
        let run = self
            .tables
            .get_mut(table_dir)
            .ok_or_else(|| DeltaError::Location(format!("table {table_dir} vanished")))?;
        if run.table.is_none() {
            run.table = Some(store.block_on(open_table(store, &run.url))?);
        }
        Ok(run)
    }
}

impl TableRun {
    fn take_table(&mut self) -> Result<DeltaTable, DeltaError> {
        self.table.take().ok_or_else(|| DeltaError::Table {
            url: self.url.clone(),
            context: None,
            cause: Cause::Refused("the table handle was lost".into()),
        })
    }
}

/// Whether a table handle delta-rs updated after a commit may be reused. On
/// Azure it fails the next commit ("Invalid table version", seen with
/// Azurite), so the table is loaded afresh there instead.
fn reuse_handle(store: &Store) -> bool {
    !matches!(store.location(), Location::Azure { .. })
}

impl Table for DeltaTables {
    fn traits(&self) -> Traits {
        self.settings.traits()
    }

    fn add_rows(
        &mut self,
        names: &TableNames,
        batches: Vec<RecordBatch>,
    ) -> Result<(), TableError> {
        let delta = |source| TableError::Delta {
            stream: names.stream.clone(),
            source,
        };
        if self.settings.mode != DeltaMode::Merge {
            return self.write_rows(names, batches).map_err(delta);
        }
        // delta-rs merges a flush's rows at once: they wait for the commit
        let batches = self.held_form(batches).map_err(delta)?;
        self.held
            .entry(names.stream.clone())
            .or_default()
            .extend(batches);
        Ok(())
    }

    fn commit(&mut self, c: Commit<'_>) -> Result<Vec<Written>, TableError> {
        let delta = |source| TableError::Delta {
            stream: c.names.stream.clone(),
            source,
        };
        if self.copies_files() {
            // a part boundary of a copy: its files are closed, committed later
            self.write_rows(c.names, c.batches).map_err(delta)?;
            return self.copy_close(c.names).map_err(delta);
        }
        let dir = self.layout.table_dir(c.names);
        let mut b = DeltaBatch {
            stream: &c.names.stream,
            keys: c.keys,
            batches: Vec::new(),
            adds: Vec::new(),
            schema: None,
            rows: 0,
            state: c.state,
        };
        if self.settings.mode == DeltaMode::Merge {
            let mut batches = self.held.remove(&c.names.stream).unwrap_or_default();
            batches.extend(self.held_form(c.batches).map_err(delta)?);
            b.schema = batches.first().map(RecordBatch::schema);
            b.batches = batches;
            let run = self.open(&dir).map_err(delta)?;
            let new_table = run.table.as_ref().is_some_and(|t| t.version().is_none());
            if !new_table && !b.batches.is_empty() {
                return self.merge_into(&dir, b).map_err(delta);
            }
            if new_table && !b.batches.is_empty() {
                // the first merge into no table: its rows become plain data files
                let rows = merge::first_rows(&self.settings, &b).map_err(|cause| {
                    delta(copy::table_error(&dir, "preparing the first merge", cause))
                })?;
                self.write_rows(c.names, vec![rows]).map_err(delta)?;
                if let Some((adds, _, n)) = self.close_rows(c.names).map_err(delta)? {
                    (b.adds, b.rows) = (adds, n);
                }
            }
        } else {
            self.write_rows(c.names, c.batches).map_err(delta)?;
            if let Some((adds, schema, rows)) = self.close_rows(c.names).map_err(delta)? {
                (b.adds, b.schema, b.rows) = (adds, Some(schema), rows);
            }
        }
        self.write(&dir, b).map_err(delta)
    }

    fn record_state(&mut self, state: &Value) -> Result<(), TableError> {
        self.record(state)
    }

    fn activate_version(
        &mut self,
        names: &TableNames,
        version: i64,
        column: &str,
    ) -> Result<(), TableError> {
        let dir = self.layout.table_dir(names);
        self.activate(&names.stream, &dir, version, column)
            .map_err(|source| TableError::Delta {
                stream: names.stream.clone(),
                source,
            })
    }

    /// Nothing to mark: a Delta table changes only by whole commits.
    fn begin_copy(
        &mut self,
        names: &TableNames,
        schema: &arrow_schema::SchemaRef,
    ) -> Result<(), TableError> {
        self.copy_schemas
            .insert(names.stream.clone(), std::sync::Arc::clone(schema));
        Ok(())
    }

    fn last_copy(&mut self, names: &TableNames) -> Result<Option<Value>, TableError> {
        self.copy_manifest(names)
            .map_err(|source| TableError::Delta {
                stream: names.stream.clone(),
                source,
            })
    }

    /// One commit adds the copy's files (and, overwriting, removes every
    /// earlier file): it is itself the mark of completion.
    fn complete_copy(
        &mut self,
        names: &TableNames,
        written: &[Written],
        manifest: &Value,
    ) -> Result<(), TableError> {
        let delta = |source| TableError::Delta {
            stream: names.stream.clone(),
            source,
        };
        let schema = self
            .copy_schemas
            .remove(&names.stream)
            .ok_or(DeltaError::Location(format!(
                "the copy of {} was not begun (a bug: report it)",
                names.stream
            )))
            .map_err(delta)?;
        self.copy_commit(names, &schema, written, manifest)
            .map_err(delta)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};
    use object_store::memory::InMemory;
    use serde_json::json;

    use super::*;
    use crate::layout::{LayoutKind, LayoutSettings};

    fn rows(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
    }

    pub(super) fn settings(mode: DeltaMode) -> DeltaSettings {
        DeltaSettings {
            mode,
            partition_columns: Vec::new(),
            overwrite_partitions: false,
            hard_delete: false,
            schema_overwrite: false,
            target_file_size: None,
            single_table: false,
            deleted_at_column: "_sdc_deleted_at".into(),
            encoder: crate::format::Encoder {
                format: crate::format::FileFormat::Parquet,
                codec: crate::format::Codec::Snappy,
                row_group_size: 1024,
                delimiter: b',',
            },
            copy: false,
        }
    }

    fn tables(store: &Store, mode: DeltaMode) -> DeltaTables {
        let layout = Layout::new(LayoutSettings::of(LayoutKind::Mage), "parquet");
        DeltaTables::new(store.clone(), layout, settings(mode))
    }

    fn memory() -> Store {
        Store::from_object_store(Arc::new(InMemory::new())).unwrap()
    }

    fn commit(t: &mut DeltaTables, stream: &str, ids: &[i64], state: Option<Value>) {
        let names = t.layout.names(stream);
        t.commit(Commit {
            names: &names,
            keys: &["id".to_string()],
            batches: vec![rows(ids)],
            state,
        })
        .unwrap();
    }

    /// The table at `dir` as a reader sees it: version and sorted ids.
    fn read(store: &Store, dir: &str) -> (Option<u64>, Vec<i64>) {
        let url = table_url(store, dir).unwrap();
        let table = store.block_on(open_table(store, &url)).unwrap();
        let mut ids = Vec::new();
        if table.version().is_none() {
            return (None, ids);
        }
        for uri in table.get_file_uris().unwrap() {
            let rel = uri.trim_start_matches("memory:///");
            let bytes = store.block_on(store.get(rel)).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap()
                    .build()
                    .unwrap();
            for b in reader {
                let b = b.unwrap();
                let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                ids.extend(col.iter().flatten());
            }
        }
        ids.sort_unstable();
        (table.version(), ids)
    }

    #[test]
    fn each_commit_carries_its_state_and_the_final_state_gets_its_own() {
        let store = memory();
        let mut t = tables(&store, DeltaMode::Append);
        commit(&mut t, "orders", &[1, 2], Some(json!({"at": 1})));
        commit(&mut t, "orders", &[3], Some(json!({"at": 2})));
        assert_eq!(read(&store, "orders"), (Some(1), vec![1, 2, 3]));
        // the final STATE is already in the last commit: no commit for it
        t.record_state(&json!({"at": 2})).unwrap();
        assert_eq!(read(&store, "orders").0, Some(1));
        // a newer one (say, STATE after the last record) gets a commit of its own
        t.record_state(&json!({"at": 3})).unwrap();
        let root = maintenance::open_existing(&store).unwrap_err().to_string();
        assert!(root.contains("not a Delta table"), "{root}");
        let url = table_url(&store, "orders").unwrap();
        let table = store.block_on(open_table(&store, &url)).unwrap();
        assert_eq!(table.version(), Some(2));
        let state = maintenance::last_state(&store, &table).unwrap();
        assert_eq!(state, Some(json!({"at": 3})));
    }

    #[test]
    fn rows_handed_over_early_are_committed_with_the_batch() {
        let store = memory();
        let mut t = tables(&store, DeltaMode::Append);
        let names = t.layout.names("orders");
        t.add_rows(&names, vec![rows(&[1]), rows(&[2])]).unwrap();
        assert_eq!(read(&store, "orders").0, None, "nothing before the commit");
        commit(&mut t, "orders", &[3], None);
        assert_eq!(read(&store, "orders"), (Some(0), vec![1, 2, 3]));
    }

    #[test]
    fn a_commit_that_conflicts_with_another_writer_is_redone_not_lost() {
        let store = memory();
        let mut stale = tables(&store, DeltaMode::Append);
        commit(&mut stale, "orders", &[1], None);
        // another writer adds a column: a metadata change, which delta-rs
        // does not retry over
        let mut other = tables(&store, DeltaMode::Append);
        let wide = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("extra", DataType::Int64, true),
        ]));
        let names = other.layout.names("orders");
        let b = RecordBatch::try_new(
            wide,
            vec![
                Arc::new(Int64Array::from(vec![2])),
                Arc::new(Int64Array::from(vec![20])),
            ],
        )
        .unwrap();
        other
            .commit(Commit {
                names: &names,
                keys: &[],
                batches: vec![b],
                state: None,
            })
            .unwrap();
        // `stale` still holds the table as of version 0: its commit
        // conflicts, and is redone against the table as it is now
        commit(&mut stale, "orders", &[3], None);
        assert_eq!(read(&store, "orders"), (Some(2), vec![1, 2, 3]));
    }

    #[test]
    fn merge_upserts_on_the_key_and_the_last_row_of_a_key_wins() {
        let store = memory();
        let mut t = tables(&store, DeltaMode::Merge);
        commit(&mut t, "orders", &[1, 2], None);
        commit(&mut t, "orders", &[2, 3, 3], None);
        assert_eq!(read(&store, "orders").1, vec![1, 2, 3]);
    }

    #[test]
    fn a_merge_rewrites_only_the_files_that_hold_its_keys() {
        let store = memory();
        let mut t = tables(&store, DeltaMode::Merge);
        commit(&mut t, "orders", &[1, 2, 3], None);
        commit(&mut t, "orders", &[10, 11, 12], None);
        commit(&mut t, "orders", &[20, 21], None);
        let files = |store: &Store| {
            let url = table_url(store, "orders").unwrap();
            let table = store.block_on(open_table(store, &url)).unwrap();
            let mut f = table.get_file_uris().unwrap().collect::<Vec<_>>();
            f.sort();
            f
        };
        let before = files(&store);
        assert_eq!(before.len(), 3);
        // key 11 is in the second file only (by its statistics, then by its rows); 30 is new;
        // 5 is inside no file's key range, 15 inside none either
        commit(&mut t, "orders", &[11, 30, 5, 15], None);
        let after = files(&store);
        assert_eq!(
            read(&store, "orders").1,
            vec![1, 2, 3, 5, 10, 11, 12, 15, 20, 21, 30]
        );
        let kept: Vec<_> = before.iter().filter(|f| after.contains(f)).collect();
        assert_eq!(
            kept.len(),
            2,
            "the first and third files are untouched: {after:?}"
        );
        // the rewritten file and the flush's new file
        assert_eq!(after.len(), 4, "{after:?}");
    }

    #[test]
    fn merge_without_keys_says_what_to_set() {
        let store = memory();
        let mut t = tables(&store, DeltaMode::Merge);
        let names = t.layout.names("orders");
        let e = t
            .commit(Commit {
                names: &names,
                keys: &[],
                batches: vec![rows(&[1])],
                state: None,
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs key_properties"), "{e}");
        assert!(e.contains("stream 'orders'"), "{e}");
    }

    #[test]
    fn conflicts_are_told_apart_by_type() {
        let conflict: Cause = DeltaTableError::VersionAlreadyExists(3).into();
        assert!(conflict.is_conflict());
        let other: Cause = DeltaTableError::NotATable("x".into()).into();
        assert!(!other.is_conflict());
        assert!(!Cause::Refused("x".into()).is_conflict());
    }
}
