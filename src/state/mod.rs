//! Which STATE may be emitted now.
//!
//! A STATE message may only be written to stdout once every record that came
//! before it in the input is durable. Each buffered batch gets an id when its
//! first record arrives; a STATE waits on the ids that were open or in
//! flight when it arrived, and is released when all of them are committed.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

/// Id of one batch (one flush of one stream).
pub type BatchId = u64;

/// Errors writing STATE out.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// stdout is gone (the orchestrator stopped reading).
    #[error("cannot write STATE to stdout: {0}")]
    Stdout(std::io::Error),
    /// The state file could not be written.
    #[error(
        "cannot write state_file {path}: {source}; check that its folder exists and is writable"
    )]
    File {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Tracks pending STATE messages against uncommitted batches.
pub struct Ledger {
    next_id: BatchId,
    uncommitted: BTreeSet<BatchId>,
    /// Uncommitted batches already handed to the writer (it commits in order).
    sealed: BTreeSet<BatchId>,
    pending: VecDeque<(Value, Vec<BatchId>)>,
    emitted: Option<Value>,
    out: Box<dyn Write + Send>,
    state_file: Option<PathBuf>,
    /// Number of STATE lines written.
    pub emitted_count: u64,
}

impl Ledger {
    /// A ledger writing to `out` (stdout) and optionally a state file.
    pub fn new(out: Box<dyn Write + Send>, state_file: Option<PathBuf>) -> Self {
        Ledger {
            next_id: 1,
            uncommitted: BTreeSet::new(),
            sealed: BTreeSet::new(),
            pending: VecDeque::new(),
            emitted: None,
            out,
            state_file,
            emitted_count: 0,
        }
    }

    /// A new batch starts receiving records.
    pub fn open_batch(&mut self) -> BatchId {
        let id = self.next_id;
        self.next_id += 1;
        self.uncommitted.insert(id);
        id
    }

    /// A STATE arrived: it waits for every batch not yet committed.
    pub fn state(&mut self, value: Value) -> Result<(), StateError> {
        let deps: Vec<BatchId> = self.uncommitted.iter().copied().collect();
        self.pending.push_back((value, deps));
        self.release()
    }

    /// A batch was handed to the writer, after every batch sealed before it.
    pub fn sealed(&mut self, id: BatchId) {
        if self.uncommitted.contains(&id) {
            self.sealed.insert(id);
        }
    }

    /// The newest STATE that is durable once every sealed batch is committed:
    /// what a Delta commit of the last sealed batch may record as its state.
    pub fn state_through_sealed(&self) -> Option<Value> {
        let mut best = self.emitted.clone();
        for (v, deps) in &self.pending {
            if deps
                .iter()
                .all(|d| !self.uncommitted.contains(d) || self.sealed.contains(d))
            {
                best = Some(v.clone());
            } else {
                break;
            }
        }
        best
    }

    /// A batch is durable.
    pub fn committed(&mut self, id: BatchId) -> Result<(), StateError> {
        self.uncommitted.remove(&id);
        self.sealed.remove(&id);
        self.release()
    }

    /// A batch was dropped without being written (e.g. emptied by rejects).
    pub fn abandoned(&mut self, id: BatchId) -> Result<(), StateError> {
        self.committed(id)
    }

    /// Emits the newest STATE whose batches are all committed (older ones are superseded).
    fn release(&mut self) -> Result<(), StateError> {
        let mut ready = None;
        while let Some((_, deps)) = self.pending.front() {
            if deps.iter().any(|d| self.uncommitted.contains(d)) {
                break;
            }
            ready = self.pending.pop_front().map(|(v, _)| v);
        }
        if let Some(v) = ready {
            self.emit(v)?;
        }
        Ok(())
    }

    fn emit(&mut self, v: Value) -> Result<(), StateError> {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|_| self.out.flush())
            .map_err(StateError::Stdout)?;
        if let Some(path) = &self.state_file {
            write_atomic(path, &line).map_err(|source| StateError::File {
                path: path.clone(),
                source,
            })?;
        }
        tracing::debug!("emitted STATE");
        self.emitted_count += 1;
        self.emitted = Some(v);
        Ok(())
    }

    /// STATE messages still waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

fn write_atomic(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(s: &Sink) -> Vec<String> {
        String::from_utf8(s.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn state_waits_for_earlier_batches() {
        let out = Sink::default();
        let mut l = Ledger::new(Box::new(out.clone()), None);
        l.state(serde_json::json!(0)).unwrap(); // nothing buffered: out at once
        let a = l.open_batch();
        let b = l.open_batch();
        l.state(serde_json::json!(1)).unwrap();
        let c = l.open_batch();
        l.state(serde_json::json!(2)).unwrap();
        assert_eq!(lines(&out), ["0"]);
        l.committed(b).unwrap();
        assert_eq!(lines(&out), ["0"], "a is still open");
        l.committed(c).unwrap();
        assert_eq!(lines(&out), ["0"]);
        l.committed(a).unwrap();
        assert_eq!(lines(&out), ["0", "2"], "newest releasable state wins");
    }
}
