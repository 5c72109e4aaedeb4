//! The seam between sources and the lake. A source (Singer streams today,
//! database tables next) hands Arrow RecordBatches to a [`Table`] together
//! with "this STATE may travel with this commit"; the table makes them
//! durable as plain files ([`files::FileTables`]) or Delta commits
//! ([`delta::DeltaTables`]). The [`writer`] thread drives one table for a
//! run, written once against the trait. Nothing outside this module asks
//! which kind of table it is: sources read the table's [`Traits`].

use arrow_array::RecordBatch;
use serde_json::Value;

use crate::format::{Encoder, FormatError};
use crate::layout::{Layout, PartitionKey, TableNames};
use crate::storage::{StorageError, Store};

#[cfg(feature = "delta")]
pub mod delta;
pub mod files;
pub mod writer;

pub use writer::{Done, Job, Writer};

/// Errors making rows durable.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Encoding failed.
    #[error("stream '{stream}': {source}")]
    Format {
        /// Stream (or source table).
        stream: String,
        /// Cause.
        #[source]
        source: FormatError,
    },
    /// Partitioning failed (a partition key the data cannot give).
    #[error("stream '{stream}': {source}")]
    Partition {
        /// Stream.
        stream: String,
        /// Cause.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// The destination refused.
    #[error("stream '{stream}': {source}")]
    Storage {
        /// Stream.
        stream: String,
        /// Cause.
        #[source]
        source: StorageError,
    },
    /// A Delta operation failed.
    #[cfg(feature = "delta")]
    #[error("stream '{stream}': {source}")]
    Delta {
        /// Stream.
        stream: String,
        /// Cause.
        #[source]
        source: delta::DeltaError,
    },
    /// The writer thread is gone.
    #[error("the writer thread stopped unexpectedly")]
    WriterGone,
}

impl TableError {
    /// True when the destination (not the data or inlet) is at fault.
    pub fn is_destination(&self) -> bool {
        match self {
            TableError::Storage { .. } => true,
            #[cfg(feature = "delta")]
            TableError::Delta { .. } => true,
            _ => false,
        }
    }
}

/// What a kind of table does with what it is given; sources act on these,
/// never on the kind itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    /// Commits record the STATE they make durable, and the run's final
    /// STATE gets a commit of its own ([`Table::record_state`]).
    pub stores_state: bool,
    /// Rows carry `_sdc_table_version`, and ACTIVATE_VERSION deletes the
    /// rows of earlier versions.
    pub versions: bool,
    /// Rows are upserted on the stream's key: a record without its key
    /// properties cannot be written.
    pub needs_keys: bool,
    /// Takes a batch's rows while it fills ([`Table::add_rows`]), encoding
    /// them at once; otherwise the source holds them until the commit.
    pub rows_early: bool,
    /// A batch may hold any number of rows in bounded memory (its rows
    /// become data files as they come), so a run can be one commit.
    pub unbounded_batches: bool,
}

/// One batch made durable.
pub struct Commit<'a> {
    /// Where the rows go.
    pub names: &'a TableNames,
    /// Key columns (for upserts).
    pub keys: &'a [String],
    /// The batch's last rows (earlier ones came through [`Table::add_rows`]).
    pub batches: Vec<RecordBatch>,
    /// The STATE this commit makes durable (kept in the commit where the
    /// table stores state).
    pub state: Option<Value>,
}

/// The tables of one run, of one kind. Rows of a batch arrive in chunks
/// ([`Table::add_rows`]) and become durable all at once ([`Table::commit`]):
/// a batch is visible whole or not at all.
pub trait Table: Send {
    /// How this kind behaves.
    fn traits(&self) -> Traits;

    /// Rows of the open batch of `names`' table: encoded at once, or held
    /// until the commit.
    fn add_rows(&mut self, names: &TableNames, batches: Vec<RecordBatch>)
    -> Result<(), TableError>;

    /// Makes the open batch of `c.names` durable; returns what was written.
    fn commit(&mut self, c: Commit<'_>) -> Result<Vec<Written>, TableError>;

    /// Records the run's final STATE where tables store state (after every
    /// batch before it is committed).
    fn record_state(&mut self, state: &Value) -> Result<(), TableError>;

    /// A full copy of `names`' table begins (`inlet export`): until
    /// [`Table::complete_copy`] a reader can tell it is incomplete.
    fn begin_copy(
        &mut self,
        names: &TableNames,
        schema: &arrow_schema::SchemaRef,
    ) -> Result<(), TableError>;

    /// The manifest of the last complete copy of `names`' table (None: no
    /// copy completed there): where an incremental export finds its
    /// watermark (`manifest["incremental"]`).
    fn last_copy(&mut self, names: &TableNames) -> Result<Option<Value>, TableError>;

    /// A copy of `names`' table is durable as `written`: the files of
    /// earlier runs go unless `manifest["parts"]` lists them (an incremental
    /// run keeps them), and the table is marked complete, with `manifest`
    /// describing the copy where the kind keeps one.
    fn complete_copy(
        &mut self,
        names: &TableNames,
        written: &[Written],
        manifest: &Value,
    ) -> Result<(), TableError>;

    /// ACTIVATE_VERSION: removes rows of versions before `version`, where
    /// the table keeps versions.
    fn activate_version(
        &mut self,
        names: &TableNames,
        version: i64,
        column: &str,
    ) -> Result<(), TableError>;
}

/// A file that was published (or a Delta commit, for progress).
#[derive(Debug, Clone)]
pub struct Written {
    /// Path relative to the destination.
    pub path: String,
    /// Rows in it (0 for raw files).
    pub rows: usize,
    /// Size in bytes.
    pub bytes: usize,
    /// A file written but not yet part of its table: what the table's
    /// commit needs of it (a Delta `add` action).
    pub pending: Option<Value>,
    /// The table version this commit made (Delta).
    pub version: Option<u64>,
}

/// The kinds of table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Plain files in folders.
    Files,
    /// Delta Lake tables.
    Delta,
}

/// Which kind of table a run writes, with its settings.
#[derive(Debug, Clone)]
pub enum TableSettings {
    /// Plain files.
    Files,
    /// Delta tables.
    #[cfg(feature = "delta")]
    Delta(Box<delta::DeltaSettings>),
}

/// Opens the tables of a run.
pub fn open(
    store: Store,
    encoder: Encoder,
    layout: Layout,
    partitions: Vec<PartitionKey>,
    settings: TableSettings,
) -> Box<dyn Table> {
    match settings {
        TableSettings::Files => {
            Box::new(files::FileTables::new(store, encoder, layout, partitions))
        }
        #[cfg(feature = "delta")]
        TableSettings::Delta(d) => Box::new(delta::DeltaTables::new(store, layout, *d)),
    }
}
