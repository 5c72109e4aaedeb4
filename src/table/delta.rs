//! The Delta Lake commit protocol (delta-rs): each flushed batch becomes one
//! atomic commit (two for a partition overwrite that also appends), carrying
//! the Singer STATE it makes durable in the commit's metadata.
//!
//! Modes: `append`; `overwrite` (the run's first commit replaces the table,
//! later ones append); partition overwrite (the first rows of a partition in
//! the run replace that partition with a `replaceWhere` predicate); `merge`
//! (upsert on the stream's key properties, last record per key wins,
//! `_sdc_deleted_at` rows deleted or kept).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::{LogStoreFactory, StorageConfig as DeltaStorageConfig, default_logstore};
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use object_store::ObjectStore;
use serde_json::Value;
use url::Url;

use super::{TableError, Written};
use crate::storage::{Location, Store};

mod merge;
mod schema_check;

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
    /// Parquet settings of data files (codec, row groups).
    pub writer_properties: Option<deltalake::parquet::file::properties::WriterProperties>,
}

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

/// The Delta tables of one load, opened on first use.
pub struct DeltaTables {
    store: Store,
    settings: DeltaSettings,
    tables: HashMap<String, TableRun>,
}

/// One flush for a Delta table.
pub struct DeltaBatch<'a> {
    /// Stream name (for messages).
    pub stream: &'a str,
    /// Table folder relative to the destination.
    pub table_dir: &'a str,
    /// Key columns (merge mode).
    pub keys: &'a [String],
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// The Singer STATE this commit makes durable, stored in the commit.
    pub state: Option<Value>,
}

impl DeltaTables {
    /// Tables under `store`'s destination.
    pub fn new(store: Store, settings: DeltaSettings) -> Self {
        register_logstores();
        DeltaTables {
            store,
            settings,
            tables: HashMap::new(),
        }
    }

    /// Commits one flush; returns the data files it added (for progress).
    pub fn write(&mut self, b: DeltaBatch<'_>) -> Result<Vec<Written>, TableError> {
        let stream = b.stream.to_string();
        let err = |msg: String| TableError::Delta {
            stream: stream.clone(),
            msg,
        };
        let rows: usize = b.batches.iter().map(RecordBatch::num_rows).sum();
        let store = self.store.clone();
        let settings = self.settings.clone();
        let mut attempt = 0;
        loop {
            let run = self.open(b.table_dir).map_err(&err)?;
            let url = run.url.clone();
            let table = run
                .table
                .take()
                .ok_or_else(|| err("table handle lost".into()))?;
            match store.block_on(commit(table, run, &settings, &b, &url)) {
                Ok((table, files)) => {
                    if reuse_handle(&store) {
                        run.table = Some(table);
                    }
                    if b.state.is_some() {
                        run.last_state = b.state.clone();
                    }
                    tracing::debug!(stream = %stream, table = %url, rows, "delta commit");
                    return Ok(files);
                }
                Err(e) => {
                    // the handle was taken: the next use reloads the table, and
                    // the run's flags (replaced, partitions, state) stay
                    let e = crate::storage::redact(&e);
                    attempt += 1;
                    // another writer created the table or changed its metadata
                    // first: delta-rs does not retry that, so redo the commit
                    // against the table as it is now
                    if is_conflict(&e) && attempt < CONFLICT_ATTEMPTS {
                        tracing::info!(stream = %stream, table = %url, attempt, "concurrent commit; retrying: {e}");
                        continue;
                    }
                    return Err(err(format!("table {url}: {e}")));
                }
            }
        }
    }

    /// Records `state` in every table of the run whose last commit carries an
    /// older one, as a commit of only an application transaction (`inlet`)
    /// and the state: the table then says how far the whole run got.
    pub fn record_state(&mut self, state: &Value) -> Result<(), TableError> {
        let dirs: Vec<String> = self
            .tables
            .iter()
            .filter(|(_, r)| r.last_state.as_ref() != Some(state))
            .map(|(d, _)| d.clone())
            .collect();
        for dir in dirs {
            let store = self.store.clone();
            let err = |msg: String| TableError::Delta {
                stream: dir.clone(),
                msg,
            };
            let mut attempt = 0;
            loop {
                let run = self.open(&dir).map_err(err)?;
                let table = run
                    .table
                    .take()
                    .ok_or_else(|| err("table handle lost".into()))?;
                if table.version().is_none() {
                    // opened (e.g. by ACTIVATE_VERSION) but never written
                    run.table = Some(table);
                    break;
                }
                let url = run.url.clone();
                let r = store.block_on(state_commit(&table, state));
                // reload on next use either way: the handle is now behind the log
                run.table = None;
                match r {
                    Ok(()) => {
                        run.last_state = Some(state.clone());
                        break;
                    }
                    // another process committed (its own STATE) meanwhile
                    Err(e) if is_conflict(&e) && attempt + 1 < CONFLICT_ATTEMPTS => attempt += 1,
                    Err(e) => {
                        return Err(err(format!(
                            "table {url}: recording the final STATE: {}",
                            crate::storage::redact(&e)
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Deletes the rows of table versions before `version` (and rows with no
    /// version), as one Delta delete commit.
    pub fn activate_version(
        &mut self,
        stream: &str,
        table_dir: &str,
        version: i64,
        column: &str,
    ) -> Result<(), TableError> {
        let err = |msg: String| TableError::Delta {
            stream: stream.to_string(),
            msg,
        };
        let store = self.store.clone();
        let run = self.open(table_dir).map_err(err)?;
        let url = run.url.clone();
        let Some(table) = run.table.take() else {
            return Err(err("table handle lost".into()));
        };
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
        let predicate = format!("{c} < {version} OR {c} IS NULL", c = quote_ident(column));
        let props = commit_props([("inlet.activate_version", Value::from(version))]);
        let r = store.block_on(async {
            table
                .delete()
                .with_predicate(predicate)
                .with_commit_properties(props)
                .await
                .map_err(|e| e.to_string())
        });
        match r {
            Ok((t, m)) => {
                tracing::info!(
                    stream,
                    version,
                    deleted = m.num_deleted_rows,
                    "ACTIVATE_VERSION: rows of earlier versions deleted"
                );
                if reuse_handle(&store) {
                    run.table = Some(t);
                }
                Ok(())
            }
            Err(e) => Err(err(format!(
                "table {url}: ACTIVATE_VERSION {version}: {}",
                crate::storage::redact(&e)
            ))),
        }
    }

    fn open(&mut self, table_dir: &str) -> Result<&mut TableRun, String> {
        if let Some(run) = self.tables.get_mut(table_dir)
            && run.table.is_none()
        {
            let url = run.url.clone();
            run.table = Some(self.store.block_on(open_table(&self.store, &url))?);
        }
        if !self.tables.contains_key(table_dir) {
            if self.settings.single_table
                && let Some(other) = self.tables.keys().next()
            {
                return Err(format!(
                    "table_uri names one table, and stream folders '{other}' and '{table_dir}' \
                     would both write into it; set destination (one table per stream below it) \
                     or run one stream per load"
                ));
            }
            let dir = if self.settings.single_table {
                ""
            } else {
                table_dir
            };
            let url = table_url(&self.store, dir)?;
            let table = self.store.block_on(open_table(&self.store, &url))?;
            self.tables.insert(
                table_dir.to_string(),
                TableRun {
                    table: Some(table),
                    url,
                    replaced: false,
                    replaced_partitions: HashSet::new(),
                    last_state: None,
                },
            );
        }
        self.tables
            .get_mut(table_dir)
            .ok_or_else(|| "table vanished".to_string())
    }
}

/// Commits redone after a conflicting concurrent commit.
const CONFLICT_ATTEMPTS: usize = 10;

fn is_conflict(e: &str) -> bool {
    e.contains("Failed to commit transaction")
}

/// The URL of a table folder below the destination.
pub fn table_url(store: &Store, table_dir: &str) -> Result<String, String> {
    let rel = table_dir.trim_matches('/');
    Ok(match store.location() {
        Location::Local { path } => {
            let base = std::path::absolute(path).map_err(|e| format!("{path}: {e}"))?;
            let dir = base.join(rel);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            Url::from_directory_path(&dir)
                .map_err(|_| format!("{} is not an absolute folder", dir.display()))?
                .to_string()
        }
        Location::S3 { bucket, prefix } => cloud_url("s3", bucket, prefix, rel),
        Location::Gcs { bucket, prefix } => cloud_url("gs", bucket, prefix, rel),
        Location::Azure {
            container, prefix, ..
        } => cloud_url("az", container, prefix, rel),
    })
}

fn cloud_url(scheme: &str, root: &str, prefix: &str, rel: &str) -> String {
    let path = [prefix.trim_matches('/'), rel]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    format!("{scheme}://{root}/{path}")
}

/// Whether a table handle delta-rs updated after a commit may be reused. On
/// Azure it fails the next commit ("Invalid table version", seen with
/// Azurite), so the table is loaded afresh there instead.
fn reuse_handle(store: &Store) -> bool {
    !matches!(store.location(), Location::Azure { .. })
}

/// Opens (or prepares to create) the table at `url`, on inlet's own object
/// store for cloud URLs so credentials, endpoints and retries are the same.
pub async fn open_table(store: &Store, url: &str) -> Result<DeltaTable, String> {
    let parsed = Url::parse(url).map_err(|e| format!("'{url}' is not a table URL: {e}"))?;
    let mut builder = DeltaTableBuilder::from_url(parsed.clone()).map_err(|e| e.to_string())?;
    if parsed.scheme() != "file" {
        builder = builder.with_storage_backend(store.root(), parsed);
    }
    let mut table = builder.build().map_err(|e| e.to_string())?;
    match table.load().await {
        Ok(()) | Err(DeltaTableError::NotATable(_)) => Ok(table),
        Err(e) => Err(e.to_string()),
    }
}

fn props(b: &DeltaBatch<'_>) -> CommitProperties {
    let state = b.state.clone().map(|s| ("inlet.state", s));
    commit_props(
        std::iter::once(("inlet.stream", Value::String(b.stream.to_string()))).chain(state),
    )
}

/// Commit properties: inlet's version plus `extra` in the commit info, and
/// delta-rs' own retries of commits that do not conflict.
fn commit_props(extra: impl IntoIterator<Item = (&'static str, Value)>) -> CommitProperties {
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

async fn commit(
    table: DeltaTable,
    run: &mut TableRun,
    s: &DeltaSettings,
    b: &DeltaBatch<'_>,
    url: &str,
) -> Result<(DeltaTable, Vec<Written>), String> {
    let exists = table.version().is_some();
    let schema = b.batches.first().map(|x| x.schema()).ok_or("empty batch")?;
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
async fn state_commit(table: &DeltaTable, state: &Value) -> Result<(), String> {
    use deltalake::kernel::Transaction;
    use deltalake::kernel::transaction::CommitBuilder;
    use deltalake::protocol::{DeltaOperation, OutputMode};
    let snapshot = table.snapshot().map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp_millis();
    let props = commit_props([("inlet.state", state.clone())])
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
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Plain write; `replace` overwrites the whole table (and its schema when allowed).
async fn append(
    table: DeltaTable,
    s: &DeltaSettings,
    batches: Vec<RecordBatch>,
    props: CommitProperties,
    replace: bool,
) -> Result<DeltaTable, String> {
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
    w.await.map_err(|e| e.to_string())
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
) -> Result<DeltaTable, String> {
    if s.partition_columns.is_empty() {
        return Err(
            "overwrite_partitions needs partition_keys (the columns whose values name a partition)"
                .into(),
        );
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
        table = w.await.map_err(|e| e.to_string())?;
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
pub(crate) fn quote_ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

/// Each row's partition values as text (null stays null).
fn partition_values(
    batch: &RecordBatch,
    cols: &[String],
) -> Result<Vec<Vec<Option<String>>>, String> {
    let mut out = vec![Vec::with_capacity(cols.len()); batch.num_rows()];
    for c in cols {
        let col = batch
            .column_by_name(c)
            .ok_or_else(|| format!("partition column '{c}' is not in the data"))?;
        let text = arrow_cast::cast(col, &DataType::Utf8).map_err(|e| e.to_string())?;
        let text = text
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .ok_or("cast to text failed")?;
        for (i, row) in out.iter_mut().enumerate() {
            row.push(text.is_valid(i).then(|| text.value(i).to_string()));
        }
    }
    Ok(out)
}

pub(crate) fn take_rows(batch: &RecordBatch, rows: &[u32]) -> Result<RecordBatch, String> {
    let idx = arrow_array::UInt32Array::from(rows.to_vec());
    arrow_select::take::take_record_batch(batch, &idx).map_err(|e| e.to_string())
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
    }]
}

/// Delta's default log store (create-only commits via object_store's
/// conditional put) for the schemes inlet opens with its own object store.
fn register_logstores() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let registry = deltalake::logstore::logstore_factories();
        for scheme in ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"] {
            if let Ok(u) = Url::parse(scheme)
                && !registry.contains_key(&u)
            {
                registry.insert(u, Arc::new(InletLogStores));
            }
        }
    });
}

#[derive(Debug)]
struct InletLogStores;

impl LogStoreFactory for InletLogStores {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &DeltaStorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}
