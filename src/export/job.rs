//! One table's export: its units are read on up to `parallel` connections
//! inside the run's snapshot, and a writer thread hands the batches to the
//! table seam, closing a part file every `max_file_*`. Only when every unit
//! is read and every row is durable is the copy marked complete.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::ExportError;
use super::incremental::{Apply, Increment};
use super::report::{TableReport, WatermarkReport};
use super::units;
use crate::layout::{Layout, TableNames, safe_segment};
use crate::load::plan::Plan;
use crate::source::{
    Database, ErrorKind, Progress, ReadUnit, Relation, RowFilter, Snapshot as _, SourceError,
};
use crate::storage::Store;
use crate::table::{self, Commit, Table, TableSettings, Written};

/// Batches in flight between a table's readers and its writer (each
/// reader also fills one): enough to keep the writer busy, few enough to
/// keep memory flat.
const QUEUE: usize = 2;

/// Writer threads per table. Measured on lineitem (2 cores, `bench/export.sh`): two
/// writers gave the same wall time as one (the client's CPU and the server's
/// backends share the cores, so no stage waits on another) and 30–40 MB more
/// peak RSS; on more cores this is the knob to turn.
const WRITERS: usize = 1;

/// Attempts after the first to read a unit whose connection was lost.
const UNIT_RETRIES: u32 = 3;

/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What every table job shares.
pub struct Context<D: Database> {
    /// The source database.
    pub db: D,
    /// The run's snapshot id (None: one per table).
    pub snapshot: Option<String>,
    /// Connections per table.
    pub parallel: usize,
    /// Range size in pages.
    pub split_pages: u64,
    /// Part file bounds.
    pub max_file_bytes: u64,
    /// Part file bounds.
    pub max_file_rows: u64,
    /// The destination.
    pub store: Store,
    /// Encoder, layout, partitions.
    pub plan: Plan,
    /// Names of tables and files.
    pub layout: Layout,
    /// The live display, on a terminal (else progress is logged).
    pub bars: Option<indicatif::MultiProgress>,
    /// The run log and this run's id there.
    pub log: Option<(Arc<crate::runlog::RunLog>, String)>,
    /// This process's share of a sharded export.
    pub shard: Option<super::shard::Shard>,
    /// The run resumes another.
    pub resumed: bool,
}

/// A table to export, with its incremental plan.
#[derive(Debug, Clone)]
pub struct TableJob {
    /// The relation.
    pub rel: Relation,
    /// Its incremental run (None: a full copy).
    pub increment: Option<Increment>,
}

/// What a table's copy is, once its last copy is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyKind {
    /// A full copy (no watermark column).
    Full,
    /// An incremental table without a watermark (or reset): a full copy
    /// that records one.
    Reload,
    /// The rows past the watermark, added or merged.
    Increment,
}

impl CopyKind {
    fn label(self) -> &'static str {
        match self {
            CopyKind::Full => "full",
            CopyKind::Reload => "reload",
            CopyKind::Increment => "increment",
        }
    }
}

/// A table's copy as prepared on its finisher thread.
#[derive(Debug, Clone)]
struct Prepared {
    kind: CopyKind,
    /// The tables' settings for this copy (Delta: the mode).
    settings: TableSettings,
    /// The manifest of the last complete copy.
    last: Option<serde_json::Value>,
    /// The watermark the run starts from.
    watermark: Option<String>,
    /// The rows to read (incremental).
    filter: Option<RowFilter>,
    /// Merge keys.
    keys: Vec<String>,
    /// The watermark record, committed with the last rows.
    record: Option<serde_json::Value>,
}

/// Exports `relations`, `jobs` at a time; one report per table.
pub async fn run_all<D: Database>(
    ctx: Arc<Context<D>>,
    relations: Vec<TableJob>,
    jobs: usize,
    fail_fast: bool,
) -> Vec<TableReport> {
    let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reports = futures::stream::iter(relations)
        .map(|r| {
            let ctx = Arc::clone(&ctx);
            let failed = Arc::clone(&failed);
            async move {
                let name = r.rel.qualified();
                if fail_fast && failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return TableReport::skipped(name);
                }
                let report = export_table(ctx, r).await;
                if report.error.is_some() {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                report
            }
        })
        .buffered(jobs);
    reports.collect().await
}

/// Exports one table; failures end up in its report.
async fn export_table<D: Database>(ctx: Arc<Context<D>>, job: TableJob) -> TableReport {
    let started = Instant::now();
    let rel = &job.rel;
    let name = rel.qualified();
    let progress = Arc::new(Progress::default());
    let bar = ctx
        .bars
        .as_ref()
        .map(|m| m.add(table_bar(&name, rel.estimated_rows())));
    let ticker = match &bar {
        Some(b) => tokio::spawn(show_progress(b.clone(), Arc::clone(&progress))),
        None => tokio::spawn(log_progress(
            name.clone(),
            rel.estimated_rows(),
            Arc::clone(&progress),
        )),
    };
    let result = copy_table(&ctx, &job, &progress).await;
    ticker.abort();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let (report, written) = match result {
        Ok((written, watermark)) => {
            let rows: u64 = written.iter().map(|w| w.rows as u64).sum();
            let bytes: u64 = written.iter().map(|w| w.bytes as u64).sum();
            tracing::info!(
                table = %name,
                rows,
                files = written.len(),
                bytes,
                seconds = format!("{seconds:.2}"),
                "table {name}: {rows} rows in {} files ({:.0} rows/s)",
                written.len(),
                rows as f64 / seconds.max(1e-6)
            );
            let report = TableReport {
                table: name,
                rows,
                files: written.len() as u64,
                bytes,
                seconds,
                error: None,
                watermark,
            };
            (report, written)
        }
        Err(e) => {
            tracing::error!(table = %name, "{e}");
            let report = TableReport {
                table: name,
                rows: progress.rows(),
                files: 0,
                bytes: 0,
                seconds,
                error: Some(e.to_string()),
                watermark: None,
            };
            (report, Vec::new())
        }
    };
    if let Some((log, run)) = &ctx.log {
        record(log, run, &report, &written);
    }
    report
}

/// Records a finished table in the run log; a log that cannot be written
/// is said, and the export goes on.
fn record(log: &crate::runlog::RunLog, run: &str, t: &TableReport, written: &[Written]) {
    use crate::runlog::{FileRow, TableRow};
    let row = TableRow {
        table: t.table.clone(),
        status: if t.error.is_some() {
            "failed"
        } else {
            "succeeded"
        }
        .into(),
        rows: t.rows,
        files: t.files,
        bytes: t.bytes,
        seconds: t.seconds,
        error: t.error.clone(),
        watermark: t.watermark.clone(),
    };
    let files: Vec<FileRow> = written
        .iter()
        .map(|w| FileRow {
            table: t.table.clone(),
            path: w.path.clone(),
            rows: w.rows as u64,
            bytes: w.bytes as u64,
        })
        .collect();
    if let Err(e) = log.table(run, &row, &files) {
        tracing::warn!("{e}; table {} is not in the run log", t.table);
    }
}

/// A table's line in the live display: rows against the estimate, rate, time left.
fn table_bar(name: &str, estimate: u64) -> indicatif::ProgressBar {
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:30!} [{bar:25}] {human_pos}/~{human_len} rows  {msg}  {eta} left",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    indicatif::ProgressBar::new(estimate.max(1))
        .with_style(style)
        .with_prefix(name.to_string())
}

async fn show_progress(bar: indicatif::ProgressBar, p: Arc<Progress>) {
    let started = Instant::now();
    loop {
        let rows = p.rows();
        // the estimate (reltuples) may be low: the bar grows with the rows
        if rows > bar.length().unwrap_or(0) {
            bar.set_length(rows);
        }
        bar.set_position(rows);
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{:.1} MB read, {rate:.0} rows/s",
            p.bytes() as f64 / 1e6
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn log_progress(name: String, estimate: u64, p: Arc<Progress>) {
    let started = Instant::now();
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let rows = p.rows();
        let secs = started.elapsed().as_secs_f64();
        let rate = rows as f64 / secs.max(1e-6);
        let eta = match estimate > rows && rate > 0.0 {
            true => format!(", about {:.0} s left", (estimate - rows) as f64 / rate),
            false => String::new(),
        };
        let pct = match estimate {
            0 => String::new(),
            e => format!(" ({:.0}% of ~{e})", 100.0 * rows as f64 / e as f64),
        };
        tracing::info!(table = %name, rows, bytes = p.bytes(), "table {name}: {rows} rows{pct}, {rate:.0} rows/s{eta}");
    }
}

/// Reads every unit and writes the table; returns its files and, for an
/// incremental table, the bounds it was read between.
async fn copy_table<D: Database>(
    ctx: &Arc<Context<D>>,
    job: &TableJob,
    progress: &Arc<Progress>,
) -> Result<(Vec<Written>, Option<WatermarkReport>), ExportError> {
    let rel = &job.rel;
    let name = rel.qualified();
    // its own snapshot in per-table mode, held until the table is read
    let (own, snapshot_id) = match &ctx.snapshot {
        Some(id) => (None, id.clone()),
        None => {
            let s = ctx.db.snapshot().await.map_err(ExportError::source)?;
            let id = s.id().to_string();
            (Some(s), id)
        }
    };
    let names = TableNames {
        stream: name.clone(),
        table: safe_segment(&rel.name),
        schema: safe_segment(&rel.schema),
    };
    let schema = rel.arrow_schema();
    // the finisher reads the last copy (and its watermark), marks the copy
    // incomplete before any part is written, and complete once every
    // writer is done
    let (ready_tx, ready_rx) = oneshot::channel();
    let (done_tx, done_rx) = std_mpsc::channel::<Option<(Vec<Written>, u64)>>();
    let (result_tx, result_rx) = oneshot::channel();
    {
        let ctx = Arc::clone(ctx);
        let names = names.clone();
        let schema = Arc::clone(&schema);
        let increment = job.increment.clone();
        let mut manifest = json!({
            "table": name,
            "source": ctx.db.to_string(),
            "snapshot": snapshot_id,
            "started_at": chrono::Utc::now().to_rfc3339(),
        });
        // a full copy shared by shards: the tables complete it together
        if let Some(sh) = ctx.shard.as_ref().filter(|_| job.increment.is_none()) {
            manifest["shard"] = json!({
                "id": sh.id, "k": sh.k, "n": sh.n, "first": sh.first(rel),
                // a resumed shard may find its own share of an earlier attempt
                "resumed": ctx.resumed,
            });
        }
        std::thread::Builder::new()
            .name("inlet-export-finish".into())
            .spawn(move || {
                let began = prepare(&ctx, increment.as_ref(), &names).and_then(|p| {
                    let mut table = open_table(&ctx, p.settings.clone());
                    table
                        .begin_copy(&names, &schema)
                        .map_err(|e| fail(&names, e))?;
                    Ok((table, p))
                });
                let (table, prepared) = match began {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(prepared.clone()));
                if let Ok(Some((written, read))) = done_rx.recv() {
                    let run = ctx.log.as_ref().map(|(_, id)| id.as_str());
                    let end = Finish {
                        names: &names,
                        schema,
                        read,
                        manifest,
                        prepared: &prepared,
                        increment: increment.as_ref(),
                        run,
                    };
                    let _ = result_tx.send(finish(table, written, end));
                }
            })
            .map_err(ExportError::Runtime)?;
    }
    let prepared = ready_rx.await.map_err(|_| gone(&name))??;
    let report = job.increment.as_ref().map(|inc| WatermarkReport {
        column: inc.column.clone(),
        kind: prepared.kind.label().into(),
        low: prepared.watermark.clone(),
        lag: if prepared.watermark.is_some() {
            inc.lag
        } else {
            0
        },
        high: inc.high.clone().or(prepared.watermark.clone()),
    });
    if let Some(w) = &report {
        tracing::info!(table = %name, column = %w.column, low = ?w.low, high = ?w.high, "table {name}: {} {}", w.kind, w.describe());
    }
    let units = match &ctx.shard {
        Some(sh) => sh.units(rel, ctx.split_pages, prepared.filter.as_ref()),
        None => units::units(rel, ctx.parallel, ctx.split_pages, prepared.filter.as_ref()),
    };
    let writers = WRITERS.min(units.len()).max(1);
    let (tx, rx) = mpsc::channel::<RecordBatch>(QUEUE * writers);
    let parallel = ctx.parallel.max(1);
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let (verdict_tx, _) = tokio::sync::broadcast::channel::<bool>(1);
    let mut results = Vec::with_capacity(writers);
    for _ in 0..writers {
        let table = open_table(ctx, prepared.settings.clone());
        let (names, rx) = (names.clone(), Arc::clone(&rx));
        let verdict = verdict_tx.subscribe();
        let (res_tx, res_rx) = oneshot::channel();
        let part = PartRules {
            max_bytes: ctx.max_file_bytes,
            max_rows: ctx.max_file_rows,
            keys: prepared.keys.clone(),
            record: prepared.record.clone(),
        };
        std::thread::Builder::new()
            .name("inlet-export-writer".into())
            .spawn(move || {
                let _ = res_tx.send(write_parts(table, &names, &rx, verdict, &part));
            })
            .map_err(ExportError::Runtime)?;
        results.push(res_rx);
    }
    drop(rx);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let read = futures::stream::iter(units)
        .map(|unit| {
            let reader = Reader {
                ctx: Arc::clone(ctx),
                rel: rel.clone(),
                snapshot: snapshot_id.clone(),
                tx: tx.clone(),
                progress: Arc::clone(progress),
                stop: stop_rx.clone(),
            };
            reader.spawn(unit)
        })
        .buffer_unordered(parallel)
        .try_fold(
            0u64,
            |a, n| async move { Ok::<u64, ReadError<D::Error>>(a + n) },
        )
        .await;
    // the first failure stops the other readers
    let _ = stop_tx.send(read.is_err());
    drop(tx);
    drop(own);
    let _ = verdict_tx.send(read.is_ok());
    let mut written = Vec::new();
    let mut failure = None;
    for r in results {
        match r.await.map_err(|_| gone(&name)).and_then(|x| x) {
            Ok(w) => written.extend(w),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match (read, failure) {
        (Err(e), Some(w)) if e.kind() == ErrorKind::SinkGone => Err(w),
        (Err(e), _) => Err(ExportError::source(e)),
        (Ok(_), Some(w)) => Err(w),
        (Ok(n), None) => {
            let _ = done_tx.send(Some((written, n)));
            let written = result_rx.await.map_err(|_| gone(&name))??;
            Ok((written, report))
        }
    }
}

/// The table's copy, of this run's kind.
fn open_table<D: Database>(ctx: &Context<D>, settings: TableSettings) -> Box<dyn Table> {
    table::open(
        ctx.store.clone(),
        ctx.plan.encoder.clone(),
        ctx.layout.clone(),
        ctx.plan.partitions.clone(),
        settings,
    )
}

/// Finds the table's watermark in its last copy and chooses the copy's kind.
fn prepare<D: Database>(
    ctx: &Context<D>,
    increment: Option<&Increment>,
    names: &TableNames,
) -> Result<Prepared, ExportError> {
    let base = ctx.plan.table.clone();
    let Some(inc) = increment else {
        return Ok(Prepared {
            kind: CopyKind::Full,
            settings: full_settings(base),
            last: None,
            watermark: None,
            filter: None,
            keys: Vec::new(),
            record: None,
        });
    };
    let last = open_table(ctx, base.clone())
        .last_copy(names)
        .map_err(|e| fail(names, e))?;
    let watermark = inc.recorded(last.as_ref());
    let kind = match watermark {
        Some(_) => CopyKind::Increment,
        None => CopyKind::Reload,
    };
    let settings = increment_settings(base, kind, inc, &names.stream)?;
    let run = ctx.log.as_ref().map(|(_, id)| id.as_str());
    Ok(Prepared {
        kind,
        settings,
        filter: Some(inc.filter(watermark.as_deref())),
        keys: inc.keys.clone(),
        record: Some(inc.record(watermark.as_deref(), run)),
        last,
        watermark,
    })
}

/// A full copy replaces or appends; mode merge is for increments.
fn full_settings(base: TableSettings) -> TableSettings {
    match base {
        TableSettings::Files => TableSettings::Files,
        #[cfg(feature = "delta")]
        TableSettings::Delta(mut d) => {
            use crate::table::delta::DeltaMode;
            if d.mode == DeltaMode::Merge {
                d.mode = DeltaMode::Overwrite;
            }
            TableSettings::Delta(d)
        }
    }
}

/// A Delta table's mode for an incremental copy: a reload replaces it, an
/// increment is merged on the key (or appended when asked).
fn increment_settings(
    base: TableSettings,
    kind: CopyKind,
    inc: &Increment,
    table: &str,
) -> Result<TableSettings, ExportError> {
    match base {
        TableSettings::Files => Ok(TableSettings::Files),
        #[cfg(feature = "delta")]
        TableSettings::Delta(mut d) => {
            use crate::table::delta::DeltaMode;
            let apply = inc.apply.unwrap_or(match d.mode {
                DeltaMode::Append => Apply::Append,
                _ => Apply::Upsert,
            });
            d.mode = match (kind, apply) {
                (CopyKind::Increment, Apply::Append) => DeltaMode::Append,
                (CopyKind::Increment, Apply::Upsert) if inc.keys.is_empty() => {
                    return Err(ExportError::NoKey {
                        table: table.to_string(),
                    });
                }
                (CopyKind::Increment, Apply::Upsert) => DeltaMode::Merge,
                _ => DeltaMode::Overwrite,
            };
            Ok(TableSettings::Delta(d))
        }
    }
}

/// What a reader thread needs.
struct Reader<D: Database> {
    ctx: Arc<Context<D>>,
    rel: Relation,
    snapshot: String,
    tx: mpsc::Sender<RecordBatch>,
    progress: Arc<Progress>,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl<D: Database> Reader<D> {
    /// Reads `unit` on a thread of its own, with a runtime of its own: the
    /// connection's task and the decoder share the thread, so the COPY data
    /// passes between them without waking another thread (on lineitem,
    /// waking the multi-thread runtime's workers for every few rows cost a
    /// sixth of the client's CPU).
    async fn spawn(mut self, unit: ReadUnit) -> Result<u64, ReadError<D::Error>> {
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("inlet-export-read".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let result = match rt {
                    Ok(rt) => rt.block_on(async {
                        let read = read_with_retries(
                            &self.ctx,
                            &self.rel,
                            &unit,
                            &self.snapshot,
                            &self.tx,
                            &self.progress,
                        );
                        tokio::select! {
                            r = read => r,
                            // another unit failed: this one's rows are not wanted
                            _ = self.stop.wait_for(|s| *s) => Ok(0),
                        }
                    }),
                    Err(e) => Err(ReadError::Thread(e)),
                };
                let _ = done_tx.send(result);
            })
            .map_err(ReadError::Thread)?;
        done_rx
            .await
            .map_err(|_| ReadError::Thread(std::io::Error::other("a reader thread stopped")))?
    }
}

/// Reads one unit; a unit whose connection is lost (or that a hot standby
/// cancels) is read again on a new connection inside the same snapshot,
/// skipping the rows already delivered, up to [`UNIT_RETRIES`] times.
async fn read_with_retries<D: Database>(
    ctx: &Context<D>,
    rel: &Relation,
    unit: &ReadUnit,
    snapshot: &str,
    tx: &mpsc::Sender<RecordBatch>,
    progress: &Progress,
) -> Result<u64, ReadError<D::Error>> {
    let mut delivered = 0u64;
    let mut attempt = 0;
    loop {
        let read = async {
            let conn = ctx.db.join(snapshot).await?;
            ctx.db
                .read(&conn, rel, unit, tx, progress, &mut delivered)
                .await
        };
        match read.await {
            Err(e) if e.kind() == ErrorKind::Transient && attempt < UNIT_RETRIES => {
                attempt += 1;
                let wait = Duration::from_millis(500 << attempt);
                tracing::warn!(
                    table = %rel.qualified(),
                    attempt,
                    rows_kept = delivered,
                    "{e}; reading this range again in {:.0} s on a new connection, in the same snapshot \
                     (the {delivered} rows it already delivered are skipped)",
                    wait.as_secs_f64()
                );
                tokio::time::sleep(wait).await;
            }
            r => return r.map_err(ReadError::Source),
        }
    }
}

/// Why a unit could not be read: the source's error, or no reader thread.
#[derive(Debug, thiserror::Error)]
enum ReadError<E: SourceError> {
    /// The source failed.
    #[error(transparent)]
    Source(E),
    /// A reader thread could not start (or stopped).
    #[error("starting a reader thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl<E: SourceError> SourceError for ReadError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            ReadError::Source(e) => e.kind(),
            ReadError::Thread(_) => ErrorKind::Other,
        }
    }
}

fn fail(names: &TableNames, source: table::TableError) -> ExportError {
    ExportError::Table {
        table: names.stream.clone(),
        source: Box::new(source),
    }
}

fn gone(table: &str) -> ExportError {
    ExportError::Table {
        table: table.to_string(),
        source: Box::new(table::TableError::WriterGone),
    }
}

/// When a writer closes a part, and what its commits carry.
struct PartRules {
    max_bytes: u64,
    max_rows: u64,
    /// Merge keys (a Delta increment).
    keys: Vec<String>,
    /// The watermark, committed with the last part (a Delta merge).
    record: Option<serde_json::Value>,
}

/// A writer thread: batches from the shared queue into part files; when
/// the readers are done and succeeded, its last part.
fn write_parts(
    mut table: Box<dyn Table>,
    names: &TableNames,
    rx: &std::sync::Mutex<mpsc::Receiver<RecordBatch>>,
    mut verdict: tokio::sync::broadcast::Receiver<bool>,
    rules: &PartRules,
) -> Result<Vec<Written>, ExportError> {
    let mut written = Vec::new();
    let (mut rows, mut bytes) = (0u64, 0u64);
    let commit = |t: &mut Box<dyn Table>, state: Option<serde_json::Value>| {
        t.commit(Commit {
            names,
            keys: &rules.keys,
            batches: Vec::new(),
            state,
        })
        .map_err(|e| fail(names, e))
    };
    loop {
        // the lock makes the queue multi-consumer: whoever holds it waits for the next batch
        let next = match rx.lock() {
            Ok(mut q) => q.blocking_recv(),
            Err(_) => None,
        };
        let Some(b) = next else { break };
        rows += b.num_rows() as u64;
        bytes += b.get_array_memory_size() as u64;
        table.add_rows(names, vec![b]).map_err(|e| fail(names, e))?;
        if rows >= rules.max_rows || bytes >= rules.max_bytes {
            written.extend(commit(&mut table, None)?);
            rows = 0;
            bytes = 0;
        }
    }
    // the readers failed: nothing more is written, the copy stays incomplete
    if verdict.blocking_recv() != Ok(true) {
        return Ok(written);
    }
    if rows > 0 {
        written.extend(commit(&mut table, rules.record.clone())?);
    }
    Ok(written)
}

/// What the finisher knows of the copy it completes.
struct Finish<'a> {
    names: &'a TableNames,
    schema: arrow_schema::SchemaRef,
    /// Rows the readers delivered.
    read: u64,
    /// The manifest so far (table, source, snapshot, start).
    manifest: serde_json::Value,
    prepared: &'a Prepared,
    increment: Option<&'a Increment>,
    run: Option<&'a str>,
}

/// Every part is durable: the row count check, then the completion.
fn finish(
    mut table: Box<dyn Table>,
    mut written: Vec<Written>,
    mut f: Finish<'_>,
) -> Result<Vec<Written>, ExportError> {
    let names = f.names;
    let shared = f.manifest.get("shard").cloned();
    // of a table shared by shards, the owner of its first range writes the empty part
    let sole = shared
        .as_ref()
        .is_none_or(|s| s["first"].as_bool() == Some(true));
    if written.is_empty() && f.prepared.kind != CopyKind::Increment && sole {
        // an empty table still gets one (empty) part: readers see its columns
        let empty = table.commit(Commit {
            names,
            keys: &[],
            batches: vec![RecordBatch::new_empty(Arc::clone(&f.schema))],
            state: None,
        });
        written = empty.map_err(|e| fail(names, e))?;
    }
    written.sort_by(|a, b| a.path.cmp(&b.path));
    let total: u64 = written.iter().map(|w| w.rows as u64).sum();
    if total != f.read {
        return Err(ExportError::RowCount {
            table: names.stream.clone(),
            read: f.read,
            written: total,
        });
    }
    let base = std::mem::take(&mut f.manifest);
    let manifest = manifest(base, &written, total, &f);
    table
        .complete_copy(names, &written, &manifest)
        .map_err(|e| fail(names, e))?;
    Ok(written)
}

/// The copy's manifest: its parts (an increment's after the earlier runs'),
/// each tagged with the run that wrote it, the runs with their bounds, and
/// the table's watermark.
fn manifest(
    mut m: serde_json::Value,
    written: &[Written],
    total: u64,
    f: &Finish<'_>,
) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339();
    let parts: Vec<serde_json::Value> = written
        .iter()
        .map(|w| json!({"path": w.path, "rows": w.rows, "bytes": w.bytes, "run": f.run}))
        .collect();
    let p = f.prepared;
    let this = json!({
        "run": f.run,
        "kind": p.kind.label(),
        "low": p.watermark,
        "lag": f.increment.map(|i| i.lag).filter(|_| p.watermark.is_some()),
        "high": f.increment.and_then(|i| i.high.clone()).or(p.watermark.clone()),
        "rows": total,
        "parts": parts.len(),
        "snapshot": m["snapshot"],
        "started_at": m["started_at"],
        "finished_at": now,
    });
    // plain files list every run's parts; a Delta table's log is its own list
    let files = matches!(p.settings, TableSettings::Files);
    let earlier = |key: &str| -> Vec<serde_json::Value> {
        match (p.kind, &p.last) {
            (CopyKind::Increment, Some(last)) if files => {
                last[key].as_array().cloned().unwrap_or_default()
            }
            _ => Vec::new(),
        }
    };
    let mut all_parts = earlier("parts");
    all_parts.extend(parts);
    let mut runs = earlier("runs");
    runs.push(this);
    let earlier_rows = match (p.kind, &p.last) {
        (CopyKind::Increment, Some(last)) if files => last["rows"].as_u64().unwrap_or(0),
        _ => 0,
    };
    m["rows"] = (earlier_rows + total).into();
    m["finished_at"] = now.into();
    m["parts"] = all_parts.into();
    m["runs"] = runs.into();
    if let Some(sh) = m.get("shard").cloned() {
        m["shard_rows"] = total.into();
        m["shard"] = sh;
    }
    if let Some(r) = &p.record {
        m["incremental"] = r.clone();
    }
    m
}
