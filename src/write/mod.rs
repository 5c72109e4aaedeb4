//! `inlet write`: one table's rows as an Arrow IPC stream (a DataFrame from
//! Python, DuckDB's output, another program) → the same plan, seam and
//! writer thread as `inlet load`. Types come from the stream's schema; no
//! SCHEMA message, no inference.
//!
//! Commits: a table that turns rows into data files as they come (Delta
//! append and overwrite) gets **one commit for the whole stream**, so a
//! reader sees all of the write or none of it. Plain files are published a
//! batch (`batch_max_rows` / `batch_max_bytes`) at a time, as a load
//! publishes them; a Delta merge holds its batch, so it merges a batch at a
//! time (each merge an idempotent upsert: a failed write can be re-run).

use std::io::Read;

use arrow_array::RecordBatch;

use crate::batch::Limits;
use crate::config::{ConfigError, LoadConfig};
use crate::layout::{Layout, TableNames};
use crate::load::{Failure, Plan};
use crate::source::arrow::{ArrowInput, ArrowInputError};
use crate::state::BatchId;
use crate::storage::{StorageError, Store};
use crate::table::{self, Job, TableError, Traits, Written};

/// Why a write stopped.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The input is not a stream of rows inlet can write.
    #[error("table '{table}': {source}")]
    Input {
        /// The table.
        table: String,
        /// Cause.
        #[source]
        source: ArrowInputError,
    },
    /// A key or partition column the rows do not have.
    #[error(
        "table '{table}': {what} column '{column}' is not in the data (its columns: {columns})"
    )]
    MissingColumn {
        /// The table.
        table: String,
        /// `key` or `partition_keys`.
        what: &'static str,
        /// The column asked for.
        column: String,
        /// The columns there are.
        columns: String,
    },
    /// The destination cannot be opened.
    #[error(transparent)]
    Storage(StorageError),
    /// Writing the table failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The writer thread could not be started.
    #[error("cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl WriteError {
    /// What kind of failure this is (the CLI maps these to exit codes).
    pub fn failure(&self) -> Failure {
        match self {
            WriteError::Config(_) | WriteError::MissingColumn { .. } => Failure::Config,
            WriteError::Input { .. } => Failure::Input,
            WriteError::Storage(e) if e.is_config() => Failure::Config,
            WriteError::Storage(_) => Failure::Destination,
            WriteError::Table(e) if e.is_destination() => Failure::Destination,
            WriteError::Table(_) | WriteError::Thread(_) => Failure::Internal,
        }
    }
}

/// What to write.
#[derive(Debug, Clone)]
pub struct Request {
    /// The table (a stream name: `schema-table` as for `inlet load`).
    pub table: String,
    /// Key columns (mode merge upserts on them).
    pub keys: Vec<String>,
}

/// What a finished write did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Rows written.
    pub rows: u64,
    /// Bytes of data files written.
    pub bytes: u64,
    /// Files published, or Delta commits made.
    pub written: Vec<Written>,
    /// The Delta table's version after the write (its last commit).
    pub version: Option<u64>,
}

/// The size at which a write's Delta data file is finished when
/// `target_file_size` is not set: one commit takes the whole stream, and a
/// file is held in memory until it is finished and uploaded.
pub const DEFAULT_FILE_SIZE: u64 = 100 << 20;

/// Writes the Arrow IPC stream on `input` into `req.table`.
pub fn run(
    cfg: &LoadConfig,
    req: &Request,
    input: Box<dyn Read + Send>,
) -> Result<Summary, WriteError> {
    let mut cfg = cfg.clone();
    cfg.target_file_size.get_or_insert(DEFAULT_FILE_SIZE);
    let cfg = &cfg;
    let plan = Plan::new(cfg)?;
    let store = Store::open_with(&plan.destination, &cfg.storage).map_err(WriteError::Storage)?;
    let input_error = |source| WriteError::Input {
        table: req.table.clone(),
        source,
    };
    let mut input = ArrowInput::new(input, plan.headers).map_err(input_error)?;
    let keys: Vec<String> = req.keys.iter().map(|k| plan.headers.apply(k)).collect();
    let partition_columns = plan.partitions.iter().map(|p| p.column.clone());
    check_columns(&req.table, input.schema(), "key", keys.iter().cloned())?;
    check_columns(
        &req.table,
        input.schema(),
        "partition_keys",
        partition_columns,
    )?;
    let layout = Layout::new(plan.layout.clone(), plan.encoder.extension());
    let names = layout.names(&req.table);
    let table = table::open(
        store.clone(),
        plan.encoder.clone(),
        layout,
        plan.partitions.clone(),
        plan.table.clone(),
    );
    let traits = table.traits();
    if traits.needs_keys && keys.is_empty() {
        return Err(ConfigError::Value {
            key: "mode".into(),
            msg: format!(
                "merge upserts on a key: give the key column(s) of table '{}' (--key, or key= in Python)",
                req.table
            ),
        }
        .into());
    }
    let writer = table::Writer::start(table, store).map_err(WriteError::Thread)?;
    let mut run = Run {
        writer,
        names,
        keys,
        traits,
        limits: plan.limits,
        batch: Open::default(),
        next_id: 1,
        summary: Summary::default(),
        failure: None,
    };
    let read = run.read_all(&mut input).map_err(input_error);
    let sealed = read.and_then(|()| run.seal());
    run.writer.close();
    run.collect();
    match (sealed, run.failure) {
        // the writer's failure is the cause of a send that failed
        (_, Some(e)) => Err(e.into()),
        (Err(e), None) => Err(e),
        (Ok(()), None) => Ok(run.summary),
    }
}

fn check_columns(
    table: &str,
    schema: &arrow_schema::Schema,
    what: &'static str,
    columns: impl Iterator<Item = String>,
) -> Result<(), WriteError> {
    for column in columns {
        if schema.field_with_name(&column).is_err() {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(WriteError::MissingColumn {
                table: table.to_string(),
                what,
                column,
                columns: names.join(", "),
            });
        }
    }
    Ok(())
}

/// The batch being filled.
#[derive(Default)]
struct Open {
    id: Option<BatchId>,
    rows: usize,
    bytes: usize,
    /// Rows held until the commit (tables that do not take them early).
    held: Vec<RecordBatch>,
}

struct Run {
    writer: table::Writer,
    names: TableNames,
    keys: Vec<String>,
    traits: Traits,
    limits: Limits,
    batch: Open,
    next_id: BatchId,
    summary: Summary,
    failure: Option<TableError>,
}

impl Run {
    fn read_all(&mut self, input: &mut ArrowInput) -> Result<(), ArrowInputError> {
        while let Some(chunk) = input.next_chunk()? {
            if !self.add(chunk) {
                break;
            }
        }
        Ok(())
    }

    /// Hands `chunk` over; false once the writer has failed.
    fn add(&mut self, chunk: RecordBatch) -> bool {
        let id = *self.batch.id.get_or_insert_with(|| {
            self.next_id += 1;
            self.next_id - 1
        });
        self.batch.rows += chunk.num_rows();
        self.batch.bytes += slice_bytes(&chunk);
        if self.traits.rows_early {
            let job = Job::Rows {
                id,
                names: self.names.clone(),
                batches: vec![chunk],
            };
            if self.writer.send(job).is_err() {
                return false;
            }
        } else {
            self.batch.held.push(chunk);
        }
        self.collect();
        if self.failure.is_some() {
            return false;
        }
        let full =
            self.batch.rows >= self.limits.max_rows || self.batch.bytes >= self.limits.max_bytes;
        if full && !self.traits.unbounded_batches {
            return self.seal().is_ok() && self.failure.is_none();
        }
        true
    }

    /// Commits the open batch.
    fn seal(&mut self) -> Result<(), WriteError> {
        let batch = std::mem::take(&mut self.batch);
        let Some(id) = batch.id else {
            return Ok(());
        };
        let job = Job::Commit {
            id,
            names: self.names.clone(),
            batches: batch.held,
            keys: self.keys.clone(),
            state: None,
        };
        self.writer.send(job)?;
        Ok(())
    }

    /// Takes the outcomes of finished jobs.
    fn collect(&mut self) {
        while let Ok(done) = self.writer.done.try_recv() {
            match done.result {
                Ok(written) => {
                    for w in written {
                        self.summary.rows += w.rows as u64;
                        self.summary.bytes += w.bytes as u64;
                        self.summary.version = w.version.or(self.summary.version);
                        self.summary.written.push(w);
                    }
                }
                Err(e) => {
                    self.failure.get_or_insert(e);
                }
            }
        }
    }
}

/// Bytes of the rows in `b` (a slice of a bigger batch counts its own rows,
/// not the buffers it shares).
fn slice_bytes(b: &RecordBatch) -> usize {
    b.columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}
