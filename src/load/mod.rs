//! A Singer load: the plan (settings resolved once), the router (Singer
//! lines → per-stream events), per-stream sinks (buffers, ledger ids, flush
//! policy), and the writer thread that drives the run's tables.

mod batch_files;
mod parallel;
pub mod plan;
mod progress;
mod reject;
mod router;
mod sink;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Write;

use crate::config::{ConfigError, LoadConfig};
use crate::layout::Layout;
pub use crate::singer::reader::Input;
use crate::state::{Ledger, StateError};
use crate::storage::{StorageError, Store};
use crate::table::{self, TableError, Writer};
pub use plan::Plan;
pub use progress::{Progress, StreamStats};

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad input.
    #[error("input line {line}{}: {msg}", stream.as_ref().map(|s| format!(" (stream '{s}')")).unwrap_or_default())]
    Input {
        /// 1-based line number.
        line: u64,
        /// Stream, when known.
        stream: Option<String>,
        /// What is wrong and what to do.
        msg: String,
    },
    /// The destination cannot be opened.
    #[error(transparent)]
    Storage(StorageError),
    /// Writing a table failed.
    #[error(transparent)]
    Table(#[from] TableError),
    /// stdout or the state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Arrow refused to build a stream's batch (a bug: report it).
    #[error("stream '{stream}': building the batch: {source}")]
    Batch {
        /// Stream.
        stream: String,
        /// Cause.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// A decoding thread stopped (a bug: report it).
    #[error("a decoding thread stopped")]
    DecoderGone,
    /// Decoded records for a stream the router does not know (a bug).
    #[error("decoded records for unknown stream '{0}'")]
    UnknownStream(String),
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which one.
        what: &'static str,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// What kind of failure a load ended with (the CLI maps these to exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Bad settings.
    Config,
    /// Bad input.
    Input,
    /// The destination failed.
    Destination,
    /// inlet itself, or stdout.
    Internal,
}

impl LoadError {
    /// What kind of failure this is.
    pub fn failure(&self) -> Failure {
        match self {
            LoadError::Config(_) | LoadError::State(StateError::File { .. }) => Failure::Config,
            LoadError::Input { .. } => Failure::Input,
            LoadError::Storage(e) if e.is_config() => Failure::Config,
            LoadError::Storage(_) => Failure::Destination,
            LoadError::Table(e) if e.is_destination() => Failure::Destination,
            LoadError::Table(_)
            | LoadError::State(_)
            | LoadError::Batch { .. }
            | LoadError::DecoderGone
            | LoadError::UnknownStream(_)
            | LoadError::Thread { .. } => Failure::Internal,
        }
    }
}

/// What a finished load did, per stream.
#[derive(Debug, Default)]
pub struct Summary {
    /// Per-stream counters.
    pub streams: BTreeMap<String, StreamStats>,
    /// STATE lines written.
    pub states_emitted: u64,
    /// Lines rejected (skip/quarantine), including those with no known stream.
    pub rejected: u64,
}

/// Runs `inlet load` on `input`, writing STATE values to `stdout`.
pub fn run(
    cfg: &LoadConfig,
    input: Input,
    stdout: Box<dyn Write + Send>,
) -> Result<Summary, LoadError> {
    let plan = Plan::new(cfg)?;
    let store = Store::open_with(&plan.destination, &cfg.storage).map_err(LoadError::Storage)?;
    let ledger = Ledger::new(stdout, cfg.state_file.clone());
    run_plan(plan, store, input, ledger)
}

/// Runs a load of `input` into `store` as `plan` says.
pub fn run_plan(
    mut plan: Plan,
    store: Store,
    input: Input,
    ledger: Ledger,
) -> Result<Summary, LoadError> {
    let layout = Layout::new(plan.layout.clone(), plan.encoder.extension());
    let table = table::open(
        store.clone(),
        plan.encoder.clone(),
        layout.clone(),
        plan.partitions.clone(),
        plan.table.clone(),
    );
    let traits = table.traits();
    plan.meta.table_version = traits.versions;
    let writer = Writer::start(table, store).map_err(|source| LoadError::Thread {
        what: "writer",
        source,
    })?;
    let shared = sink::Shared::new(ledger, writer, plan.limits, traits);
    let sinks = sink::Sinks {
        map: Default::default(),
        shared,
    };
    let mut r = router::Router::new(&plan, layout, sinks);
    let outcome = r.read_all(input);
    let outcome = r.finish(outcome);
    let sh = &mut r.sinks.shared;
    let summary = Summary {
        streams: sh.progress.take(),
        states_emitted: sh.ledger.emitted_count,
        rejected: r.rejects.count(),
    };
    for (name, s) in &summary.streams {
        tracing::info!(stream = %name, records = s.records, files = s.files, rejected = s.rejected, bytes_in = s.bytes, bytes_out = s.bytes_out, "stream done");
    }
    if sh.ledger.pending() > 0 && outcome.is_ok() {
        tracing::warn!(
            "{} STATE message(s) could not be emitted",
            sh.ledger.pending()
        );
    }
    outcome.map(|()| summary)
}
