//! The writer thread: runs a [`Table`]'s work off the source's thread, one
//! job at a time and in order, and reports each batch's outcome so the
//! ledger can release the STATE waiting on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;

use super::{Commit, Table, TableError, Written};
use crate::layout::TableNames;
use crate::state::BatchId;
use crate::storage::Store;

/// Work for the writer thread.
pub enum Job {
    /// Rows of a table's open batch, handed over while the batch fills.
    /// Reported back only when it fails (as the batch's failure).
    Rows {
        /// Ledger id of the batch.
        id: BatchId,
        /// Where the rows go.
        names: TableNames,
        /// The rows, in chunks sharing the batch's schema.
        batches: Vec<RecordBatch>,
    },
    /// A sealed batch: its last rows, then the commit.
    Commit {
        /// Ledger id.
        id: BatchId,
        /// Where the rows go.
        names: TableNames,
        /// The rest of the rows.
        batches: Vec<RecordBatch>,
        /// Key columns (upserts).
        keys: Vec<String>,
        /// The STATE this batch makes durable (kept where tables store it).
        state: Option<serde_json::Value>,
    },
    /// The run's final STATE, for tables that store it (after every batch
    /// before it is committed).
    State {
        /// Ledger id (a batch of its own: a failure fails the run).
        id: BatchId,
        /// The state value.
        state: serde_json::Value,
    },
    /// ACTIVATE_VERSION: rows of earlier versions go, where tables keep versions.
    Activate {
        /// Ledger id.
        id: BatchId,
        /// The stream's names.
        names: TableNames,
        /// The version now active.
        version: i64,
        /// Name of the `_sdc_table_version` column.
        column: String,
    },
    /// Raw bytes to write as one new file in a folder (quarantined lines).
    Raw {
        /// Ledger id.
        id: BatchId,
        /// Stream.
        stream: String,
        /// Folder relative to the destination.
        dir: String,
        /// File content.
        bytes: Vec<u8>,
    },
}

/// The outcome of one job.
pub struct Done {
    /// Ledger id.
    pub id: BatchId,
    /// Stream (empty for the final STATE).
    pub stream: String,
    /// What was written, or why not.
    pub result: Result<Vec<Written>, TableError>,
}

/// Handle to the writer thread.
pub struct Writer {
    tx: Option<SyncSender<Job>>,
    /// Completed jobs, in order.
    pub done: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the thread that runs `table`'s jobs; raw files go to `store`.
    pub fn start(table: Box<dyn Table>, store: Store) -> std::io::Result<Writer> {
        // rendezvous: the writer works on one job (a chunk of rows, or a
        // commit) while the source fills the next. A queued chunk measured
        // no faster, and held ~12 MB more.
        let (tx, rx) = mpsc::sync_channel::<Job>(0);
        let (done_tx, done) = mpsc::channel();
        let mut w = Worker { table, store };
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let handle = std::thread::Builder::new()
            .name("inlet-writer".into())
            .spawn(move || {
                // after a failed job nothing more is written: a later commit
                // could record a STATE covering the failed batch
                let mut failed = false;
                for job in rx {
                    let d = if failed { skip(job) } else { w.run(job) };
                    let Some(d) = d else { continue };
                    failed |= d.result.is_err();
                    if done_tx.send(d).is_err() {
                        return;
                    }
                    if failed {
                        flag.store(true, Ordering::Release);
                    }
                }
            })?;
        Ok(Writer {
            tx: Some(tx),
            done,
            handle: Some(handle),
            failed,
        })
    }

    /// A job failed: its outcome is waiting in [`Writer::done`], and no
    /// later job will be run.
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Hands a job over (blocks while the writer is busy with the previous one).
    pub fn send(&self, job: Job) -> Result<(), TableError> {
        self.tx
            .as_ref()
            .ok_or(TableError::WriterGone)?
            .send(job)
            .map_err(|_| TableError::WriterGone)
    }

    /// No more jobs; returns once every job is done.
    pub fn close(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct Worker {
    table: Box<dyn Table>,
    store: Store,
}

/// A job not run because an earlier one failed.
fn skip(job: Job) -> Option<Done> {
    let (id, stream) = match job {
        Job::Rows { .. } => return None,
        Job::Commit { id, names, .. } | Job::Activate { id, names, .. } => (id, names.stream),
        Job::State { id, .. } => (id, String::new()),
        Job::Raw { id, stream, .. } => (id, stream),
    };
    Some(Done {
        id,
        stream,
        result: Err(TableError::WriterGone),
    })
}

impl Worker {
    fn run(&mut self, job: Job) -> Option<Done> {
        let (id, stream, result) = match job {
            Job::Rows { id, names, batches } => match self.table.add_rows(&names, batches) {
                Ok(()) => return None,
                Err(e) => (id, names.stream, Err(e)),
            },
            Job::Commit {
                id,
                names,
                batches,
                keys,
                state,
            } => {
                let result = self.table.commit(Commit {
                    names: &names,
                    keys: &keys,
                    batches,
                    state,
                });
                (id, names.stream, result)
            }
            Job::Activate {
                id,
                names,
                version,
                column,
            } => {
                let result = self
                    .table
                    .activate_version(&names, version, &column)
                    .map(|()| Vec::new());
                (id, names.stream, result)
            }
            Job::State { id, state } => {
                let result = self.table.record_state(&state).map(|()| Vec::new());
                (id, String::new(), result)
            }
            Job::Raw {
                id,
                stream,
                dir,
                bytes,
            } => {
                let result = self.raw(&stream, &dir, bytes);
                (id, stream, result)
            }
        };
        Some(Done { id, stream, result })
    }

    /// Writes `bytes` as a new file under `dir`.
    fn raw(&self, stream: &str, dir: &str, bytes: Vec<u8>) -> Result<Vec<Written>, TableError> {
        let n = bytes.len();
        let rel = format!(
            "{dir}/{}-{}.jsonl",
            Utc::now().format("%Y%m%d-%H%M%S"),
            uuid::Uuid::new_v4().simple()
        );
        self.store
            .block_on(self.store.put_new(&rel, Bytes::from(bytes)))
            .map_err(|source| TableError::Storage {
                stream: stream.to_string(),
                source,
            })?;
        Ok(vec![Written {
            path: rel,
            rows: 0,
            bytes: n,
            pending: None,
            version: None,
        }])
    }
}
