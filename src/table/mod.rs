//! The commit protocol for plain files: a writer thread encodes each batch,
//! split by partition, as its rows arrive, and publishes every file with a
//! create-only put once the batch is sealed. A batch is committed when all of
//! its files are; only then may the STATE messages waiting on it be emitted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;

use crate::format::{DictionaryHints, Encoder, FileEncoder, FormatError};
use crate::layout::{Layout, PartitionKey, TableNames, part_number, partition_rows};
use crate::state::BatchId;
use crate::storage::{StorageError, Store};

pub mod delta;

use delta::{DeltaBatch, DeltaTables};

/// How many times a name clash is retried with a fresh name.
const NAME_ATTEMPTS: usize = 50;

/// Errors writing a batch.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Encoding failed.
    #[error("stream '{stream}': {source}")]
    Format {
        /// Stream.
        stream: String,
        /// Cause.
        source: FormatError,
    },
    /// Partitioning failed (bad partition key).
    #[error("stream '{stream}': {msg}")]
    Partition {
        /// Stream.
        stream: String,
        /// Cause.
        msg: String,
    },
    /// The destination refused.
    #[error("stream '{stream}': {source}")]
    Storage {
        /// Stream.
        stream: String,
        /// Cause.
        source: StorageError,
    },
    /// A Delta commit failed.
    #[error("stream '{stream}': {msg}")]
    Delta {
        /// Stream.
        stream: String,
        /// What happened and what to do.
        msg: String,
    },
    /// The writer thread is gone.
    #[error("the writer thread stopped unexpectedly")]
    WriterGone,
}

impl TableError {
    /// True when the destination (not the data) is at fault.
    pub fn is_destination(&self) -> bool {
        matches!(self, TableError::Storage { .. } | TableError::Delta { .. })
    }
}

/// Work for the writer thread.
pub enum Job {
    /// Rows of a stream's open batch (plain files only): encoded now, kept
    /// in memory, published with the batch. Reported back only when it fails
    /// (as the batch's failure).
    Rows {
        /// Ledger id of the batch.
        id: BatchId,
        /// Stream.
        stream: String,
        /// The rows, in chunks sharing the batch's schema.
        batches: Vec<RecordBatch>,
    },
    /// A sealed batch of one stream (the rest of its rows).
    Batch {
        /// Ledger id.
        id: BatchId,
        /// Names for the path.
        names: TableNames,
        /// The rows, in chunks sharing one schema.
        batches: Vec<RecordBatch>,
        /// Key columns (Delta merge).
        keys: Vec<String>,
        /// The STATE this batch makes durable (stored in Delta commits).
        state: Option<serde_json::Value>,
    },
    /// The run's final STATE, to record in every Delta table of the run
    /// (after every batch before it is committed).
    State {
        /// Ledger id (a batch of its own: a failure fails the load).
        id: BatchId,
        /// The state value.
        state: serde_json::Value,
    },
    /// ACTIVATE_VERSION on Delta: delete rows of earlier table versions.
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

/// A file that was published.
#[derive(Debug, Clone)]
pub struct Written {
    /// Path relative to the destination.
    pub path: String,
    /// Rows in it (0 for raw files).
    pub rows: usize,
    /// Size in bytes.
    pub bytes: usize,
}

/// The outcome of one job.
pub struct Done {
    /// Ledger id.
    pub id: BatchId,
    /// Stream.
    pub stream: String,
    /// Files written, or why not.
    pub result: Result<Vec<Written>, TableError>,
}

/// Handle to the writer thread.
pub struct FileWriter {
    tx: Option<SyncSender<Job>>,
    /// Completed jobs, in order.
    pub done: Receiver<Done>,
    handle: Option<JoinHandle<()>>,
    failed: Arc<AtomicBool>,
}

struct Worker {
    store: Store,
    encoder: Encoder,
    layout: Layout,
    partitions: Vec<PartitionKey>,
    parts: HashMap<String, u64>,
    /// Per stream: which columns are worth a Parquet dictionary.
    dictionaries: HashMap<String, DictionaryHints>,
    /// Per stream: the files of the batch being filled.
    open: HashMap<String, OpenBatch>,
    delta: Option<DeltaTables>,
}

/// Files of one batch encoded at the same time. Rows of further partitions
/// wait as Arrow data and are encoded one file at a time when the batch is
/// sealed: a partition key with thousands of values must not hold thousands
/// of encoders.
const OPEN_FILES: usize = 64;

/// A stream's batch while its rows arrive: one file per partition, in the
/// order the partitions first appear.
#[derive(Default)]
struct OpenBatch {
    files: Vec<(String, PartFile)>,
    /// Partition → position in `files`.
    index: HashMap<String, usize>,
}

/// One partition's file of an open batch.
enum PartFile {
    /// Encoded as rows arrive.
    Encoding(FileEncoder),
    /// Rows kept until the batch is sealed (past [`OPEN_FILES`]).
    Held(Vec<RecordBatch>),
}

impl FileWriter {
    /// Starts the writer thread; with `delta`, batches become Delta commits.
    pub fn start(
        store: Store,
        encoder: Encoder,
        layout: Layout,
        partitions: Vec<PartitionKey>,
        delta: Option<delta::DeltaSettings>,
    ) -> std::io::Result<FileWriter> {
        // rendezvous: the writer works on one job (a chunk of rows, or a
        // whole batch for Delta) while the router fills the next. A queued
        // chunk measured no faster, and held ~12 MB more.
        let (tx, rx) = mpsc::sync_channel::<Job>(0);
        let (done_tx, done) = mpsc::channel();
        let mut w = Worker {
            parts: HashMap::new(),
            dictionaries: HashMap::new(),
            open: HashMap::new(),
            delta: delta.map(|d| DeltaTables::new(store.clone(), d)),
            store,
            encoder,
            layout,
            partitions,
        };
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let handle = std::thread::Builder::new()
            .name("inlet-writer".into())
            .spawn(move || {
                // after a failed job nothing more is written: a later Delta
                // commit would record a STATE covering the failed batch
                let mut failed = false;
                for job in rx {
                    let d = if failed { w.skip(job) } else { w.run(job) };
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
        Ok(FileWriter {
            tx: Some(tx),
            done,
            handle: Some(handle),
            failed,
        })
    }

    /// A job failed: its outcome is waiting in [`FileWriter::done`], and no
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

impl Worker {
    /// A job not run because an earlier one failed.
    fn skip(&mut self, job: Job) -> Option<Done> {
        let (id, stream) = match job {
            Job::Rows { .. } => return None,
            Job::Batch { id, names, .. } | Job::Activate { id, names, .. } => (id, names.stream),
            Job::State { id, .. } => (id, String::new()),
            Job::Raw { id, stream, .. } => (id, stream),
        };
        Some(Done {
            id,
            stream,
            result: Err(TableError::WriterGone),
        })
    }

    fn run(&mut self, job: Job) -> Option<Done> {
        Some(match job {
            Job::Rows {
                id,
                stream,
                batches,
            } => match self.add_rows(&stream, batches) {
                Ok(()) => return None,
                Err(e) => Done {
                    id,
                    stream,
                    result: Err(e),
                },
            },
            Job::Batch {
                id,
                names,
                batches,
                keys,
                state,
            } => {
                let stream = names.stream.clone();
                let result = match &mut self.delta {
                    Some(d) => d.write(DeltaBatch {
                        stream: &names.stream,
                        table_dir: &self.layout.table_dir(&names),
                        keys: &keys,
                        batches,
                        state,
                    }),
                    None => self.write_batch(&names, batches),
                };
                Done { id, stream, result }
            }
            Job::Activate {
                id,
                names,
                version,
                column,
            } => {
                let result = match &mut self.delta {
                    Some(d) => d
                        .activate_version(
                            &names.stream,
                            &self.layout.table_dir(&names),
                            version,
                            &column,
                        )
                        .map(|_| Vec::new()),
                    None => Ok(Vec::new()),
                };
                Done {
                    id,
                    stream: names.stream,
                    result,
                }
            }
            Job::State { id, state } => {
                let result = match &mut self.delta {
                    Some(d) => d.record_state(&state).map(|_| Vec::new()),
                    None => Ok(Vec::new()),
                };
                Done {
                    id,
                    stream: String::new(),
                    result,
                }
            }
            Job::Raw {
                id,
                stream,
                dir,
                bytes,
            } => {
                let n = bytes.len();
                let rel = format!(
                    "{dir}/{}-{}.jsonl",
                    Utc::now().format("%Y%m%d-%H%M%S"),
                    uuid::Uuid::new_v4().simple()
                );
                let result = self
                    .store
                    .block_on(self.store.put_new(&rel, Bytes::from(bytes)))
                    .map(|_| {
                        vec![Written {
                            path: rel,
                            rows: 0,
                            bytes: n,
                        }]
                    })
                    .map_err(|source| TableError::Storage {
                        stream: stream.clone(),
                        source,
                    });
                Done { id, stream, result }
            }
        })
    }

    /// Encodes rows into the stream's open files, splitting them by partition.
    fn add_rows(&mut self, stream: &str, batches: Vec<RecordBatch>) -> Result<(), TableError> {
        let open = self.open.entry(stream.to_string()).or_default();
        let hints = self.dictionaries.entry(stream.to_string()).or_default();
        let format = |source| TableError::Format {
            stream: stream.to_string(),
            source,
        };
        // each chunk is dropped once encoded
        for b in batches {
            let parts =
                partition_rows(&b, &self.partitions).map_err(|e| TableError::Partition {
                    stream: stream.to_string(),
                    msg: e.to_string(),
                })?;
            for (key, rows) in parts {
                let i = match open.index.get(&key) {
                    Some(&i) => i,
                    None => {
                        let f = match open.files.len() < OPEN_FILES {
                            true => {
                                PartFile::Encoding(self.encoder.open(&rows, hints).map_err(format)?)
                            }
                            false => PartFile::Held(Vec::new()),
                        };
                        open.index.insert(key.clone(), open.files.len());
                        open.files.push((key, f));
                        open.files.len() - 1
                    }
                };
                match &mut open.files[i].1 {
                    PartFile::Encoding(f) => f.write(&rows).map_err(format)?,
                    PartFile::Held(held) => held.push(rows),
                }
            }
        }
        Ok(())
    }

    fn write_batch(
        &mut self,
        names: &TableNames,
        batches: Vec<RecordBatch>,
    ) -> Result<Vec<Written>, TableError> {
        let stream = || names.stream.clone();
        let added = self.add_rows(&names.stream, batches);
        let open = self.open.remove(&names.stream).unwrap_or_default();
        added?;
        let mut written = Vec::with_capacity(open.files.len());
        for (partition, file) in open.files {
            let hints = self.dictionaries.entry(names.stream.clone()).or_default();
            let encoded = match file {
                PartFile::Encoding(f) => f.finish(hints),
                PartFile::Held(rows) => self.encoder.encode(rows, hints),
            };
            let (n, bytes) = encoded.map_err(|source| TableError::Format {
                stream: stream(),
                source,
            })?;
            let path = self
                .publish(names, &partition, bytes.clone())
                .map_err(|source| TableError::Storage {
                    stream: stream(),
                    source,
                })?;
            tracing::debug!(stream = %names.stream, path = %path, rows = n, "file written");
            written.push(Written {
                path,
                rows: n,
                bytes: bytes.len(),
            });
        }
        Ok(written)
    }

    /// Puts a file under a fresh name; a clash (another writer, same second) picks the next name.
    fn publish(
        &mut self,
        names: &TableNames,
        partition: &str,
        bytes: Bytes,
    ) -> Result<String, StorageError> {
        let dir = self.layout.table_dir(names);
        let uses_parts = self.layout.uses_parts();
        if uses_parts && !self.parts.contains_key(&dir) {
            let existing = self.store.block_on(self.store.list(&dir))?;
            let next = existing
                .iter()
                .filter_map(|p| part_number(p))
                .max()
                .map_or(0, |m| m + 1);
            self.parts.insert(dir.clone(), next);
        }
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let part = if uses_parts {
                self.parts.get(&dir).copied()
            } else {
                None
            };
            let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let rel = self
                .layout
                .file_path(names, partition, Utc::now(), part, &unique);
            if let Some(p) = self.parts.get_mut(&dir) {
                *p += 1;
            }
            match self.store.block_on(self.store.put_new(&rel, bytes.clone())) {
                Ok(()) => return Ok(rel),
                Err(StorageError::AlreadyExists(p)) => last = Some(p),
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::Destination {
            dest: self.store.display().to_string(),
            msg: format!(
                "could not find a free file name after {NAME_ATTEMPTS} attempts (last tried {})",
                last.unwrap_or_default()
            ),
        })
    }
}
