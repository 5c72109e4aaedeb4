//! `inlet export`: database tables into the lake. One run takes one
//! snapshot of the source (by default), lists and selects relations, plans
//! their work units, and reads them with binary COPY on several connections
//! at once; each table's batches enter the same [`crate::table::Table`] seam
//! as Singer streams do, so formats, layouts, storage and commits are
//! shared with `inlet load`.

pub mod incremental;
mod job;
pub mod report;
pub mod select;
pub mod shard;
pub mod units;

use std::sync::Arc;
use std::time::Instant;

use crate::config::{ConfigError, LoadConfig};
use crate::layout::Layout;
use crate::load::plan::Plan;
use crate::runlog::{RunLog, RunStart};
use crate::source::Relation;
use crate::source::postgres::copy::BatchLimits;
use crate::source::postgres::decode::Infinity;
use crate::source::postgres::types::TypeOptions;
use crate::source::postgres::{Postgres, ReadSettings, Source};
use crate::source::{Database, ErrorKind, Snapshot as _, SnapshotMode, SourceError};
use crate::storage::{StorageError, Store};
use crate::table::{TableError, TableSettings};

use incremental::Increment;
use job::TableJob;
pub use report::{Summary, TableReport};
pub use select::Pattern;

/// What can stop an export (a single table's failure is in its report).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The source cannot be reached or read.
    #[error("{error}")]
    Source {
        /// How the export treats it.
        kind: ErrorKind,
        /// The source's own error.
        #[source]
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The destination cannot be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An `--include` pattern matches no relation.
    #[error(
        "--include '{0}' matches no table, view or partitioned table the source has (patterns are schema.table, with * or % as wildcards)"
    )]
    NoMatch(String),
    /// Nothing is left to export.
    #[error(
        "no table to export: the source has no readable table outside the system schemas, or --exclude removed them all"
    )]
    Empty,
    /// An `--incremental` or `--key` argument does not fit the table.
    #[error("{0}")]
    Incremental(String),
    /// An increment cannot be merged without a key.
    #[error(
        "table {table} has no primary key to merge its increment on: pass --key {table}:column[,column], or append instead (--incremental {table}:column:mode=append)"
    )]
    NoKey {
        /// The table.
        table: String,
    },
    /// The async runtime could not start.
    #[error("starting the export's threads: {0}")]
    Runtime(#[source] std::io::Error),
    /// The run log cannot be used.
    #[error(transparent)]
    RunLog(#[from] crate::runlog::RunLogError),
    /// A table's rows could not be written.
    #[error("table {table}: {source}")]
    Table {
        /// The table.
        table: String,
        /// Why.
        #[source]
        source: Box<TableError>,
    },
    /// The rows written are not the rows read.
    #[error(
        "table {table}: {read} rows read but {written} written; the copy is not marked complete"
    )]
    RowCount {
        /// The table.
        table: String,
        /// Rows COPY delivered.
        read: u64,
        /// Rows in the files.
        written: u64,
    },
    /// Some tables failed (each report says why).
    #[error("{} of {total} tables failed: {}", .failed.len(), .failed.join(", "))]
    Failed {
        /// The tables that failed.
        failed: Vec<String>,
        /// Tables in the run.
        total: usize,
        /// What was done.
        summary: Box<Summary>,
    },
}

/// Which kind of failure, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Configuration or selection.
    Config,
    /// The source database.
    Source,
    /// The destination.
    Destination,
    /// Some tables failed, others were exported.
    Tables,
    /// inlet itself.
    Internal,
}

impl ExportError {
    /// A failure of the source database.
    pub fn source(e: impl SourceError) -> ExportError {
        ExportError::Source {
            kind: e.kind(),
            error: Box::new(e),
        }
    }

    /// The kind of failure.
    pub fn failure(&self) -> Failure {
        match self {
            ExportError::Config(_)
            | ExportError::NoMatch(_)
            | ExportError::Empty
            | ExportError::Incremental(_)
            | ExportError::NoKey { .. }
            | ExportError::RunLog(_) => Failure::Config,
            ExportError::Source {
                kind: ErrorKind::Config,
                ..
            } => Failure::Config,
            ExportError::Source { .. } => Failure::Source,
            ExportError::Storage(e) if e.is_config() => Failure::Config,
            ExportError::Storage(_) => Failure::Destination,
            ExportError::Table { source, .. } if source.is_destination() => Failure::Destination,
            ExportError::Failed { .. } => Failure::Tables,
            ExportError::Runtime(_) | ExportError::Table { .. } | ExportError::RowCount { .. } => {
                Failure::Internal
            }
        }
    }
}

/// What `inlet export` was asked to do, besides the destination settings.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The source database.
    pub source: Source,
    /// Relations to take (none: all tables).
    pub include: Vec<Pattern>,
    /// Relations to leave out.
    pub exclude: Vec<Pattern>,
    /// Views, materialized views and foreign tables too.
    pub include_views: bool,
    /// Tables at once.
    pub jobs: usize,
    /// Connections per table.
    pub parallel: usize,
    /// A table is split into block ranges of at least this many pages.
    pub split_pages: u64,
    /// One snapshot or one per table.
    pub snapshot: SnapshotMode,
    /// Type choices (`numeric` without precision, portable types).
    pub types: TypeOptions,
    /// ±infinity dates and timestamps.
    pub infinity: Infinity,
    /// A part file is closed past this many bytes of Arrow data.
    pub max_file_bytes: u64,
    /// … or this many rows.
    pub max_file_rows: u64,
    /// Print the plan, read and write nothing.
    pub dry_run: bool,
    /// Stop at the first failed table.
    pub fail_fast: bool,
    /// A live display of the tables in progress (on a terminal).
    pub live: bool,
    /// The run log: a file, or a `postgresql://` URL (None: no run log).
    pub run_log: Option<String>,
    /// Incremental tables.
    pub incremental: Vec<incremental::Spec>,
    /// Merge keys of tables without a primary key.
    pub keys: Vec<incremental::KeySpec>,
    /// Lag of time watermarks, in seconds, where a table sets none.
    pub lag: Option<u64>,
    /// Tables whose watermark is ignored: reloaded whole (`--full` sets `*.*`).
    pub reset: Vec<Pattern>,
    /// Only these tables (`schema.table`) of the selection (a resumed run's
    /// unfinished ones).
    pub only: Option<Vec<String>>,
    /// The run this one resumes.
    pub resumes: Option<String>,
    /// The arguments as given, the source redacted (recorded for `--resume`).
    pub argv: Vec<String>,
    /// This process's share of a sharded export.
    pub shard: Option<shard::Shard>,
    /// A snapshot another session exported and holds open.
    pub snapshot_id: Option<String>,
}

/// Rows per decoded batch, and its wire-byte bound.
const BATCH: BatchLimits = BatchLimits {
    rows: 32_768,
    bytes: 4 << 20,
};

/// Runs an export; `cfg` holds the destination, format, layout and storage
/// settings (the keys `inlet load` has).
pub fn run(cfg: &LoadConfig, opts: &ExportOptions) -> Result<Summary, ExportError> {
    let mut plan = Plan::new(cfg)?;
    copy_settings(&mut plan.table)?;
    if opts.shard.is_some() && opts.snapshot == SnapshotMode::PerTable {
        return Err(ExportError::Incremental(
            "--shard needs --snapshot one: a shard cuts tables at the size its snapshot saw".into(),
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .thread_name("inlet-export")
        .build()
        .map_err(ExportError::Runtime)?;
    let started = Instant::now();
    let db = Postgres::new(
        opts.source.clone(),
        ReadSettings {
            limits: BATCH,
            infinity: opts.infinity,
        },
        opts.types,
    )
    .with_snapshot(opts.snapshot_id.clone());
    let files = matches!(plan.table, TableSettings::Files);
    let (snapshot, tables) = rt.block_on(discover(&db, opts, files))?;
    let layout = Layout::new(plan.layout.clone(), plan.encoder.extension());
    if opts.dry_run {
        report::print_plan(&tables, opts, &plan, &layout);
        return Ok(Summary::default());
    }
    let store = Store::open_with(&plan.destination, &cfg.storage)?;
    tracing::info!("{}", rt.block_on(db.security(&snapshot)));
    tracing::info!(
        tables = tables.len(),
        destination = %store.display(),
        snapshot = %snapshot.id(),
        "exporting {} tables from {db} to {}",
        tables.len(),
        store.display()
    );
    let log = match &opts.run_log {
        Some(path) => {
            let log = Arc::new(RunLog::open(path, &crate::cli::env_pairs())?);
            let id = log.start(&RunStart {
                source: &db.to_string(),
                destination: store.display(),
                format: &format!("{:?}", cfg.format).to_ascii_lowercase(),
                settings: settings_json(opts, &tables),
                resumes: opts.resumes.as_deref(),
            })?;
            tracing::info!(run_id = %id, run_log = %log.path(), "run {id} (run log {})", log.path());
            Some((log, id))
        }
        None => None,
    };
    // per table: the catalog's snapshot goes now, each table takes its own
    let shared = match opts.snapshot {
        SnapshotMode::One => Some(snapshot.id().to_string()),
        SnapshotMode::PerTable => None,
    };
    let holder = shared.is_some().then_some(snapshot);
    let ctx = Arc::new(job::Context {
        db,
        snapshot: shared,
        parallel: opts.parallel.max(1),
        split_pages: opts.split_pages,
        max_file_bytes: opts.max_file_bytes,
        max_file_rows: opts.max_file_rows,
        store,
        plan,
        layout,
        bars: opts.live.then(indicatif::MultiProgress::new),
        log: log.clone(),
        shard: opts.shard.clone(),
        resumed: opts.resumes.is_some(),
    });
    // the last handle on the store (and its runtime) must go outside async code
    let reports = rt.block_on(job::run_all(
        Arc::clone(&ctx),
        tables,
        opts.jobs.max(1),
        opts.fail_fast,
    ));
    drop(ctx);
    if let Some(h) = holder {
        let held = h.started().elapsed().as_secs_f64();
        drop(h);
        tracing::info!(
            seconds = format!("{held:.2}"),
            "the run's snapshot was held for {held:.1} s"
        );
    }
    let summary = Summary {
        tables: reports,
        seconds: started.elapsed().as_secs_f64(),
    };
    let failed: Vec<String> = summary
        .tables
        .iter()
        .filter(|t| t.error.is_some())
        .map(|t| t.table.clone())
        .collect();
    if let Some((log, id)) = &log {
        let error = (!failed.is_empty()).then(|| format!("failed: {}", failed.join(", ")));
        let (rows, bytes) = summary
            .tables
            .iter()
            .fold((0, 0), |(r, b), t| (r + t.rows, b + t.bytes));
        let n = summary.tables.len() as u64;
        if let Err(e) = log.finish(id, n, rows, bytes, error.as_deref()) {
            tracing::warn!("{e}; the run's end is not in the run log");
        }
    }
    if failed.is_empty() {
        Ok(summary)
    } else {
        Err(ExportError::Failed {
            total: summary.tables.len(),
            failed,
            summary: Box::new(summary),
        })
    }
}

/// What the run log keeps of a run's settings (nothing secret).
fn settings_json(opts: &ExportOptions, tables: &[TableJob]) -> serde_json::Value {
    serde_json::json!({
        "argv": opts.argv,
        "pid": std::process::id(),
        "host": crate::runlog::host(),
        "include": opts.include.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "exclude": opts.exclude.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "include_views": opts.include_views,
        "jobs": opts.jobs,
        "parallel": opts.parallel,
        "snapshot": format!("{:?}", opts.snapshot),
        "max_file_bytes": opts.max_file_bytes,
        "max_file_rows": opts.max_file_rows,
        "tables": tables.iter().map(|t| t.rel.qualified()).collect::<Vec<_>>(),
        "incremental": tables.iter().filter_map(|t| t.increment.as_ref().map(|i| serde_json::json!({
            "table": t.rel.qualified(),
            "column": i.column,
            "lag": i.lag,
            "high": i.high,
            "reset": i.reset,
        }))).collect::<Vec<_>>(),
    })
}

/// A table kind's settings for copies (Delta: mode merge means incremental
/// tables are merged; a full copy always replaces or appends).
fn copy_settings(table: &mut TableSettings) -> Result<(), ExportError> {
    match table {
        TableSettings::Files => Ok(()),
        #[cfg(feature = "delta")]
        TableSettings::Delta(d) => {
            d.copy = true;
            Ok(())
        }
    }
}

/// The snapshot, and the selected relations with their columns, leaves
/// and incremental plans (bounds read inside the snapshot).
async fn discover<D: Database>(
    db: &D,
    opts: &ExportOptions,
    files: bool,
) -> Result<(D::Snapshot, Vec<TableJob>), ExportError> {
    let snapshot = db.snapshot().await.map_err(ExportError::source)?;
    let all = db.relations(&snapshot).await.map_err(ExportError::source)?;
    let mut chosen = select::select(all, &opts.include, &opts.exclude, opts.include_views)?;
    for r in &mut chosen {
        db.describe(&snapshot, r)
            .await
            .map_err(ExportError::source)?;
    }
    for spec in &opts.incremental {
        if !chosen.iter().any(|r| spec.table.matches(r)) {
            return Err(ExportError::Incremental(format!(
                "--incremental names {}, which is not among the tables this export takes \
                 (check the name, and --include / --exclude)",
                spec.table
            )));
        }
    }
    if let Some(only) = &opts.only {
        chosen.retain(|r| only.contains(&r.qualified()));
    }
    let mut jobs = Vec::with_capacity(chosen.len());
    for rel in chosen {
        let increment = match opts.incremental.iter().find(|s| s.table.matches(&rel)) {
            Some(spec) => Some(plan_increment(db, &snapshot, &rel, spec, opts).await?),
            None => None,
        };
        if let Some(sh) = &opts.shard
            && !shard_takes(sh, &rel, increment.is_some(), opts.split_pages, files)
        {
            tracing::debug!(table = %rel.qualified(), "another shard exports this table");
            continue;
        }
        jobs.push(TableJob { rel, increment });
    }
    if let Some(sh) = &opts.shard {
        tracing::info!(
            shard = %format!("{}/{}", sh.k, sh.n),
            export_id = %sh.id,
            "shard {}/{} of export {}: {} tables with work here",
            sh.k,
            sh.n,
            sh.id,
            jobs.len()
        );
    }
    Ok((snapshot, jobs))
}

/// Whether a shard has work on a table: an incremental table's owner; for
/// a full copy, the shards with ranges of it and the owner of its first
/// range (who commits it even when empty) — and, with plain files, every
/// shard (each records its share, the last one completes the table).
fn shard_takes(
    sh: &shard::Shard,
    rel: &Relation,
    incremental: bool,
    split: u64,
    files: bool,
) -> bool {
    match incremental {
        true => sh.owns_whole(rel),
        false => files || sh.first(rel) || !sh.units(rel, split, None).is_empty(),
    }
}

/// An incremental table's run: its column checked, its upper bound read
/// inside the snapshot, a missing index said.
async fn plan_increment<D: Database>(
    db: &D,
    snapshot: &D::Snapshot,
    rel: &Relation,
    spec: &incremental::Spec,
    opts: &ExportOptions,
) -> Result<Increment, ExportError> {
    let key = opts.keys.iter().find(|k| k.table.matches(rel));
    let reset = opts.reset.iter().any(|p| p.matches(rel));
    let mut inc = incremental::Increment::plan(rel, spec, opts.lag, key, reset)
        .map_err(ExportError::Incremental)?;
    inc.high = db
        .high(snapshot, rel, &inc.column)
        .await
        .map_err(ExportError::source)?;
    let indexed = db
        .indexed(snapshot, rel, &inc.column)
        .await
        .map_err(ExportError::source)?;
    let table = rel.qualified();
    if !indexed {
        tracing::warn!(
            table = %table,
            column = %inc.column,
            "table {table}: no index leads with {col}, so every incremental run reads the whole table \
             (a sequential scan); create one: CREATE INDEX CONCURRENTLY ON {table} ({col})",
            col = crate::source::postgres::quote_ident(&inc.column)
        );
    }
    if inc.nullable {
        tracing::info!(
            table = %table,
            "table {table}: {} may be NULL; such rows are exported by full reloads only",
            inc.column
        );
    }
    inc.indexed = indexed;
    Ok(inc)
}
