//! Per-stream sinks: each stream's buffer, the ledger id of its open batch,
//! and the flush policy; plus what all sinks share — the ledger, the writer
//! thread and progress — and the bookkeeping of finished writes.

use rustc_hash::FxHashMap;

use super::{LoadError, Progress};
use crate::batch::{Limits, StreamBuffer};
use crate::layout::TableNames;
use crate::state::{BatchId, Ledger};
use crate::table::{Done, Job, Traits, Writer};

/// One stream: its buffer and where its batches go.
pub struct Sink {
    /// The rows of the open batch.
    pub buf: StreamBuffer,
    /// Where they go.
    pub names: TableNames,
    /// Ledger id of the open batch.
    batch: Option<BatchId>,
    /// Slot in [`Progress`].
    pub stat: usize,
    /// key_properties of the stream's SCHEMA (renamed like the columns).
    keys: Vec<String>,
}

/// What every sink hands its batches to.
pub struct Shared {
    /// Which STATE may go out.
    pub ledger: Ledger,
    /// The writer thread.
    pub writer: Writer,
    /// Counters and the progress display.
    pub progress: Progress,
    /// When a batch is sealed.
    pub limits: Limits,
    /// What the tables do.
    pub traits: Traits,
    /// The first failure of the writer, until it is reported.
    failure: Option<LoadError>,
}

/// The sinks of a run, by stream name.
pub struct Sinks {
    /// Fx hash: looked up once per record, keys are the tap's stream names.
    pub map: FxHashMap<String, Sink>,
    /// What they share.
    pub shared: Shared,
}

fn building(stream: &str, e: arrow_schema::ArrowError) -> LoadError {
    LoadError::Batch {
        stream: stream.to_string(),
        source: e,
    }
}

impl Sink {
    /// A sink for a stream's (new) SCHEMA.
    pub fn new(buf: StreamBuffer, names: TableNames, stat: usize, keys: Vec<String>) -> Self {
        Sink {
            buf,
            names,
            batch: None,
            stat,
            keys,
        }
    }

    /// Bookkeeping after a record was buffered: ledger id, progress,
    /// chunking. Returns whether the stream must be flushed now.
    pub fn pushed(&mut self, sh: &mut Shared, bytes: usize) -> Result<bool, LoadError> {
        self.open_batch(&mut sh.ledger);
        sh.progress.record(self.stat, bytes);
        self.buf
            .cut_chunk_if_full()
            .map_err(|e| building(&self.names.stream, e))?;
        if sh.traits.rows_early {
            self.ship(&sh.writer)?;
            if sh.writer.has_failed() {
                return Ok(true); // the flush reports the writer's failure now
            }
        }
        Ok(self.buf.is_over_size(&sh.limits))
    }

    /// Gives the open batch a ledger id (before its first row).
    pub fn open_batch(&mut self, ledger: &mut Ledger) {
        if self.batch.is_none() {
            self.batch = Some(ledger.open_batch());
        }
    }

    /// Hands finished chunks to the writer, which encodes them while the
    /// batch fills: memory holds a chunk or two, not the whole batch, and
    /// little encoding is left when the batch is sealed.
    pub fn ship(&mut self, writer: &Writer) -> Result<(), LoadError> {
        let Some(id) = self.batch.filter(|_| self.buf.ready_rows() > 0) else {
            return Ok(());
        };
        let now_us = chrono::Utc::now().timestamp_micros();
        let batches = self
            .buf
            .take_ready(now_us)
            .map_err(|e| building(&self.names.stream, e))?;
        Ok(writer.send(Job::Rows {
            id,
            names: self.names.clone(),
            batches,
        })?)
    }
}

impl Sinks {
    /// Seals a stream's batch and hands it to the writer for its commit.
    pub fn flush(&mut self, stream: &str) -> Result<(), LoadError> {
        let Some(sink) = self.map.get_mut(stream) else {
            return Ok(());
        };
        let sh = &mut self.shared;
        let now_us = chrono::Utc::now().timestamp_micros();
        let rows = sink.buf.rows();
        let batches = sink.buf.seal(now_us).map_err(|e| building(stream, e))?;
        let Some(id) = sink.batch.take() else {
            return Ok(());
        };
        if rows == 0 {
            sh.ledger.abandoned(id)?;
        } else {
            sh.ledger.sealed(id);
            let state = match sh.traits.stores_state {
                true => sh.ledger.state_through_sealed(),
                false => None,
            };
            sh.writer.send(Job::Commit {
                id,
                names: sink.names.clone(),
                batches,
                keys: sink.keys.clone(),
                state,
            })?;
        }
        self.poll_done(false)
    }

    /// Seals every stream whose batch is old (or full).
    pub fn flush_aged(&mut self) -> Result<(), LoadError> {
        let aged: Vec<String> = self
            .map
            .iter()
            .filter(|(_, s)| s.buf.is_full(&self.shared.limits))
            .map(|(k, _)| k.clone())
            .collect();
        for s in aged {
            self.flush(&s)?;
        }
        Ok(())
    }

    /// Seals every stream.
    pub fn flush_all_streams(&mut self) -> Result<(), LoadError> {
        let streams: Vec<String> = self.map.keys().cloned().collect();
        for s in streams {
            self.flush(&s)?;
        }
        Ok(())
    }

    /// Where tables store state, the run's final STATE goes into every
    /// table of the run (after every batch before it).
    pub fn flush_final_state(&mut self) -> Result<(), LoadError> {
        let sh = &mut self.shared;
        if sh.traits.stores_state
            && let Some(state) = sh.ledger.state_through_sealed()
        {
            self.send_sealed(|id| Job::State { id, state })?;
        }
        Ok(())
    }

    /// Sends a job that is a batch of its own in the ledger (sealed at once).
    pub fn send_sealed(&mut self, job: impl FnOnce(BatchId) -> Job) -> Result<(), LoadError> {
        let id = self.shared.ledger.open_batch();
        self.shared.ledger.sealed(id);
        self.shared.writer.send(job(id))?;
        Ok(())
    }

    /// Applies finished writes to the ledger; `wait` blocks for all of them.
    pub fn poll_done(&mut self, wait: bool) -> Result<(), LoadError> {
        let sh = &mut self.shared;
        loop {
            let next = match wait {
                true => sh.writer.done.recv().ok(),
                false => sh.writer.done.try_recv().ok(),
            };
            let Some(d): Option<Done> = next else {
                return Ok(());
            };
            match d.result {
                Ok(files) => {
                    if !d.stream.is_empty() {
                        sh.progress.files(&d.stream, &files);
                    }
                    sh.ledger.committed(d.id)?;
                }
                Err(e) => {
                    if sh.failure.is_none() {
                        sh.failure = Some(e.into());
                    }
                }
            }
            if let Some(f) = sh.failure.take() {
                return Err(f);
            }
        }
    }
}

impl Shared {
    /// What the sinks share, around a started writer.
    pub fn new(ledger: Ledger, writer: Writer, limits: Limits, traits: Traits) -> Self {
        Shared {
            ledger,
            writer,
            progress: Progress::new(),
            limits,
            traits,
            failure: None,
        }
    }
}
