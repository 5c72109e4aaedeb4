//! Progress on stderr: per-stream records, bytes, files and rate — a live
//! display on a terminal, a plain log line every 10 s otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::table::Written;

/// Counters of one stream.
#[derive(Debug, Default, Clone)]
pub struct StreamStats {
    /// Records accepted.
    pub records: u64,
    /// Input bytes of accepted records.
    pub bytes: u64,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Records rejected (skip/quarantine).
    pub rejected: u64,
}

/// Collects counters and reports them.
pub struct Progress {
    streams: Vec<(String, StreamStats)>,
    index: std::collections::HashMap<String, usize>,
    start: Instant,
    last: Instant,
    bar: Option<indicatif::ProgressBar>,
}

const EVERY: Duration = Duration::from_secs(10);

impl Progress {
    /// A reporter; live display only when stderr is a terminal.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        let now = Instant::now();
        Progress {
            streams: Vec::new(),
            index: Default::default(),
            start: now,
            last: now,
            bar,
        }
    }

    /// A stream was announced; returns its slot for [`Progress::record`].
    pub fn stream(&mut self, s: &str) -> usize {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        self.streams.push((s.to_string(), StreamStats::default()));
        self.index.insert(s.to_string(), self.streams.len() - 1);
        self.streams.len() - 1
    }

    /// A record was buffered (per record: by slot, no name lookup).
    #[inline]
    pub fn record(&mut self, slot: usize, bytes: usize) {
        if let Some((_, st)) = self.streams.get_mut(slot) {
            st.records += 1;
            st.bytes += bytes as u64;
        }
    }

    /// `n` records of `bytes` input were buffered.
    pub fn records(&mut self, slot: usize, n: usize, bytes: usize) {
        if let Some((_, st)) = self.streams.get_mut(slot) {
            st.records += n as u64;
            st.bytes += bytes as u64;
        }
    }

    /// A record was rejected.
    pub fn rejected(&mut self, s: &str) {
        let i = self.stream(s);
        self.streams[i].1.rejected += 1;
    }

    /// Files were written.
    pub fn files(&mut self, s: &str, files: &[Written]) {
        let i = self.stream(s);
        let st = &mut self.streams[i].1;
        st.files += files.iter().filter(|f| f.rows > 0).count() as u64;
        st.bytes_out += files.iter().map(|f| f.bytes as u64).sum::<u64>();
    }

    fn line(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        self.streams
            .iter()
            .map(|(n, s)| {
                format!(
                    "{n}: {} records, {:.1} MB, {} files, {:.0} rec/s",
                    s.records,
                    s.bytes as f64 / 1e6,
                    s.files,
                    s.records as f64 / secs
                )
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Reports if it is time to.
    pub fn tick(&mut self) {
        if let Some(b) = &self.bar {
            b.set_message(self.line());
        } else if self.last.elapsed() >= EVERY {
            self.last = Instant::now();
            tracing::info!("progress: {}", self.line());
        }
    }

    /// Clears the live display.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    /// Takes the counters.
    pub fn take(&mut self) -> BTreeMap<String, StreamStats> {
        self.index.clear();
        std::mem::take(&mut self.streams).into_iter().collect()
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
