//! The `on_invalid_record` policy: fail, skip (log and count) or quarantine
//! (keep the raw line and the reason under `_rejected/{stream}/`).

use std::collections::BTreeMap;

use super::LoadError;
use crate::config::OnInvalid;

/// Skipped lines logged one by one before the log goes quiet.
const LOG_EACH: u64 = 20;

/// Rejected-line bookkeeping.
pub struct Rejects {
    policy: OnInvalid,
    count: u64,
    quarantine: BTreeMap<String, Vec<u8>>,
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
    pub fn handle(
        &mut self,
        line: u64,
        stream: Option<&str>,
        raw: &[u8],
        msg: &str,
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
                    let buf = self
                        .quarantine
                        .entry(stream.unwrap_or("_unparsed").to_string())
                        .or_default();
                    if let Ok(mut v) = serde_json::to_vec(&entry) {
                        v.push(b'\n');
                        buf.extend_from_slice(&v);
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
        self.quarantine.values().map(Vec::len).sum()
    }

    /// Takes the quarantined lines per stream.
    pub fn take_quarantine(&mut self) -> BTreeMap<String, Vec<u8>> {
        std::mem::take(&mut self.quarantine)
    }
}
