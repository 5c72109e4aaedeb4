//! The `on_invalid_record` policy: fail, skip (log and count) or quarantine
//! (keep the raw line and the reason under `_rejected/{stream}/`).

use std::collections::BTreeMap;

use std::time::Instant;

use super::LoadError;
use crate::config::OnInvalid;
use crate::state::BatchId;

/// Skipped lines logged one by one before the log goes quiet.
const LOG_EACH: u64 = 20;

/// Rejected-line bookkeeping.
pub struct Rejects {
    policy: OnInvalid,
    count: u64,
    /// Per stream: lines waiting to be written, the ledger id that holds
    /// back later STATE until they are, and when the first one came.
    quarantine: BTreeMap<String, Pending>,
}

/// Quarantined lines of one stream not yet written.
pub struct Pending {
    /// JSON lines.
    pub bytes: Vec<u8>,
    /// Ledger id: STATE after these lines waits until they are written.
    pub id: BatchId,
    since: Instant,
}

impl Rejects {
    /// Bookkeeping for a policy.
    pub fn new(policy: OnInvalid) -> Self {
        Rejects {
            policy,
            count: 0,
            quarantine: BTreeMap::new(),
        }
    }

    /// Applies the policy; returns the error to stop with under `fail`.
    /// `open_batch` gives a ledger id when a stream's quarantine starts.
    pub fn handle(
        &mut self,
        line: u64,
        stream: Option<&str>,
        raw: &[u8],
        msg: &str,
        open_batch: &mut dyn FnMut() -> BatchId,
    ) -> Option<LoadError> {
        self.count += 1;
        let hint = "fix the tap or the data, or set on_invalid_record to skip or quarantine to carry on past bad records";
        match self.policy {
            OnInvalid::Fail => Some(LoadError::Input {
                line,
                stream: stream.map(String::from),
                msg: format!("{msg} ({hint})"),
            }),
            OnInvalid::Skip | OnInvalid::Quarantine => {
                if self.count <= LOG_EACH {
                    tracing::warn!(line, stream = stream.unwrap_or("-"), "rejected: {msg}");
                } else if self.count == LOG_EACH + 1 {
                    tracing::warn!("more rejected lines follow; they are counted in the summary");
                }
                if self.policy == OnInvalid::Quarantine {
                    let entry = serde_json::json!({
                        "line": line,
                        "stream": stream,
                        "error": msg,
                        "raw": String::from_utf8_lossy(raw),
                    });
                    let pending = self
                        .quarantine
                        .entry(stream.unwrap_or("_unparsed").to_string())
                        .or_insert_with(|| Pending {
                            bytes: Vec::new(),
                            id: open_batch(),
                            since: Instant::now(),
                        });
                    if let Ok(mut v) = serde_json::to_vec(&entry) {
                        v.push(b'\n');
                        pending.bytes.extend_from_slice(&v);
                    }
                }
                None
            }
        }
    }

    /// Lines rejected so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes waiting to be quarantined.
    pub fn quarantine_bytes(&self) -> usize {
        self.quarantine.values().map(|p| p.bytes.len()).sum()
    }

    /// How long the oldest quarantined line has waited.
    pub fn oldest(&self) -> Option<std::time::Duration> {
        self.quarantine.values().map(|p| p.since.elapsed()).max()
    }

    /// Takes the quarantined lines per stream.
    pub fn take_quarantine(&mut self) -> BTreeMap<String, Pending> {
        std::mem::take(&mut self.quarantine)
    }
}
