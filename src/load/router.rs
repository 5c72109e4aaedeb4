//! The router: Singer lines → per-stream events. It reads blocks of input
//! (decoding RECORDs on threads when there are several), hands records to
//! their stream's sink, and acts on SCHEMA, STATE, ACTIVATE_VERSION and
//! BATCH messages. It knows the Singer protocol and nothing of the tables.

use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::Duration;

use super::LoadError;
use super::batch_files;
use super::parallel::{Decoded, Event, Pool, Snapshot};
use super::plan::Plan;
use super::reject::Rejects;
use super::sink::{Sink, Sinks};
use crate::batch::StreamBuffer;
use crate::config::ConfigError;
use crate::layout::Layout;
use crate::schema::{SchemaError, StreamSchema};
use crate::singer::reader::{Block, Input};
use crate::singer::{self, Line};
use crate::table::Job;

/// A decoded chunk while its block is applied: rows `..taken` are in the
/// stream's buffer, rows `taken..next` (`bytes` of input) are counted but not
/// yet handed over.
struct Part {
    stream: String,
    arrays: Vec<arrow_array::ArrayRef>,
    line_bytes: Vec<u32>,
    next: usize,
    taken: usize,
    bytes: usize,
}

/// Routes one run's input.
pub struct Router<'p> {
    plan: &'p Plan,
    layout: Layout,
    /// The streams' sinks and what they share.
    pub sinks: Sinks,
    /// Invalid records under the policy.
    pub rejects: Rejects,
    line_no: u64,
    /// The streams as decoding threads see them.
    snapshot: Arc<Snapshot>,
}

impl<'p> Router<'p> {
    /// A router over `sinks`, naming tables by `layout`.
    pub fn new(plan: &'p Plan, layout: Layout, sinks: Sinks) -> Self {
        Router {
            plan,
            layout,
            sinks,
            rejects: Rejects::new(plan.on_invalid),
            line_no: 0,
            snapshot: Arc::new(Snapshot::default()),
        }
    }

    /// Reads the whole input.
    pub fn read_all(&mut self, input: Input) -> Result<(), LoadError> {
        let threads = self.plan.decode_threads;
        // decoding threads get bigger blocks: fewer, longer arrays per file
        let block = if threads > 1 { 4 << 20 } else { 1 << 20 };
        let blocks = singer::reader::spawn(input, block);
        if threads > 1 {
            match Pool::start(threads) {
                Ok(pool) => {
                    tracing::debug!("decoding records on {threads} threads");
                    return self.read_parallel(&blocks, pool);
                }
                Err(e) => tracing::warn!("cannot start decoding threads ({e}); decoding on one"),
            }
        }
        loop {
            match blocks.recv_timeout(Duration::from_secs(1)) {
                Ok(Ok(b)) => self.lines(&b)?,
                Ok(Err(e)) => return Err(self.read_error(e)),
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.housekeeping()?;
        }
    }

    /// [`Router::read_all`] with decoding threads: blocks go out as the
    /// reader delivers them and their results are applied in input order.
    fn read_parallel(
        &mut self,
        blocks: &std::sync::mpsc::Receiver<std::io::Result<Block>>,
        mut pool: Pool,
    ) -> Result<(), LoadError> {
        let mut reading = true;
        let mut read_error = None;
        loop {
            if reading && pool.in_flight() < pool.capacity() {
                // wait for input only when nothing is being decoded
                let got = if pool.in_flight() == 0 {
                    blocks
                        .recv_timeout(Duration::from_secs(1))
                        .map_err(|e| match e {
                            RecvTimeoutError::Timeout => false,
                            RecvTimeoutError::Disconnected => true,
                        })
                } else {
                    blocks
                        .try_recv()
                        .map_err(|e| e == TryRecvError::Disconnected)
                };
                match got {
                    // before any SCHEMA a decoding thread could not decode a
                    // thing: the block is read here, where its SCHEMAs apply
                    Ok(Ok(block)) if self.snapshot.streams.is_empty() && pool.in_flight() == 0 => {
                        self.lines(&block)?;
                    }
                    Ok(Ok(block)) => {
                        if pool.submit(block, self.snapshot.clone()).is_err() {
                            return Err(LoadError::DecoderGone);
                        }
                        continue;
                    }
                    Ok(Err(e)) => {
                        read_error = Some(e);
                        reading = false;
                    }
                    Err(ended) => reading &= !ended,
                }
            }
            if pool.in_flight() > 0 {
                match pool.next() {
                    Some(d) => self.apply(d)?,
                    None => return Err(LoadError::DecoderGone),
                }
            } else if !reading {
                break;
            }
            self.housekeeping()?;
        }
        match read_error {
            Some(e) => Err(self.read_error(e)),
            None => Ok(()),
        }
    }

    fn read_error(&self, e: std::io::Error) -> LoadError {
        LoadError::Input {
            line: self.line_no,
            stream: None,
            msg: format!("cannot read the input: {e}"),
        }
    }

    /// Between blocks: finished writes, age-based flushes, progress.
    fn housekeeping(&mut self) -> Result<(), LoadError> {
        self.sinks.poll_done(false)?;
        self.sinks.flush_aged()?;
        // quarantined lines hold back STATE too: write them on the same clock
        if self
            .rejects
            .oldest()
            .is_some_and(|age| age >= self.sinks.shared.limits.max_age)
        {
            self.flush_rejects()?;
        }
        self.sinks.shared.progress.tick();
        Ok(())
    }

    /// The lines of a block, one by one on this thread.
    fn lines(&mut self, block: &Block) -> Result<(), LoadError> {
        let data = block.data();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            self.line_no += 1;
            self.line(block, start, end)?;
            start = end + 1;
        }
        if start < data.len() {
            self.line_no += 1;
            self.line(block, start, data.len())?;
        }
        Ok(())
    }

    /// Applies a block decoded by a decoding thread, in input order; a block
    /// decoded against streams that have changed since is redone here.
    fn apply(&mut self, d: Decoded) -> Result<(), LoadError> {
        if d.epoch != self.snapshot.epoch {
            return self.lines(&d.block);
        }
        let mut parts = Vec::with_capacity(d.chunks.len());
        for c in d.chunks {
            let arrays = c.arrays.map_err(|source| LoadError::Batch {
                stream: c.stream.clone(),
                source,
            })?;
            parts.push(Part {
                stream: c.stream,
                arrays,
                line_bytes: c.line_bytes,
                next: 0,
                taken: 0,
                bytes: 0,
            });
        }
        for ev in d.events {
            match ev {
                Event::Records { chunk, rows } => self.records(&mut parts[chunk], rows)?,
                Event::Line {
                    start,
                    end,
                    touches_buffers,
                } => {
                    // rows decoded before this line go first (a STATE line
                    // needs none: their batches are already open)
                    if touches_buffers {
                        for p in &mut parts {
                            self.hand_over(p)?;
                        }
                    }
                    self.line_no += 1;
                    self.line(&d.block, start, end)?;
                }
            }
        }
        for p in &mut parts {
            self.hand_over(p)?;
        }
        Ok(())
    }

    /// The next `rows` decoded records of a part: the same bookkeeping and
    /// flush points as records decoded one by one.
    fn records(&mut self, p: &mut Part, rows: usize) -> Result<(), LoadError> {
        let end = p.next + rows;
        self.line_no += rows as u64;
        while p.next < end {
            let sh = &mut self.sinks.shared;
            let Some(sink) = self.sinks.map.get_mut(&p.stream) else {
                return Err(LoadError::UnknownStream(p.stream.clone()));
            };
            sink.open_batch(&mut sh.ledger);
            let held_rows = sink.buf.rows() + (p.next - p.taken);
            let held_bytes = sink.buf.bytes() + p.bytes;
            let (mut n, mut bytes, mut full) = (0, 0, false);
            while p.next + n < end && !full {
                bytes += p.line_bytes[p.next + n] as usize;
                n += 1;
                full = held_bytes + bytes >= sh.limits.max_bytes
                    || (sh.limits.max_rows > 0 && held_rows + n >= sh.limits.max_rows);
            }
            sh.progress.records(sink.stat, n, bytes);
            p.next += n;
            p.bytes += bytes;
            if full {
                self.hand_over(p)?;
                self.sinks.flush(&p.stream)?;
            }
        }
        Ok(())
    }

    /// Moves a part's records counted so far into its stream's buffer.
    fn hand_over(&mut self, p: &mut Part) -> Result<(), LoadError> {
        let n = p.next - p.taken;
        if n == 0 {
            return Ok(());
        }
        let whole = p.taken == 0 && n == p.line_bytes.len();
        let arrays = match whole {
            true => std::mem::take(&mut p.arrays),
            false => p.arrays.iter().map(|a| a.slice(p.taken, n)).collect(),
        };
        let sh = &mut self.sinks.shared;
        let Some(sink) = self.sinks.map.get_mut(&p.stream) else {
            return Ok(());
        };
        sink.buf
            .append(arrays, n, p.bytes)
            .map_err(|source| LoadError::Batch {
                stream: p.stream.clone(),
                source,
            })?;
        if sh.traits.rows_early {
            sink.ship(&sh.writer)?;
            if sh.writer.has_failed() {
                self.sinks.poll_done(false)?;
            }
        }
        p.taken = p.next;
        p.bytes = 0;
        Ok(())
    }

    /// One input line; `utf8` says the whole block was already checked.
    fn line(&mut self, block: &Block, start: usize, end: usize) -> Result<(), LoadError> {
        let line = &block.data()[start..end];
        if let Some(text) = block.line_text(start, end)
            && let Some((stream, mut sc)) = singer::record_head(text)
            && let Some(sink) = self.sinks.map.get_mut(stream.as_ref())
        {
            let bytes = line.len() + 1;
            return match sink.buf.push_from(&mut sc, bytes, singer::record_tail) {
                Ok(()) => {
                    if sink.pushed(&mut self.sinks.shared, bytes)? {
                        self.sinks.flush(&stream)?;
                    }
                    Ok(())
                }
                Err(e) => {
                    let stream = stream.into_owned();
                    self.reject(Some(&stream), line, e.to_string())
                }
            };
        }
        let parsed = match singer::parse_line(line) {
            Ok(l) => l,
            Err(e) => return self.reject(None, line, e.to_string()),
        };
        match parsed {
            Line::Record(rec) => {
                let Some(sink) = self.sinks.map.get_mut(rec.stream.as_ref()) else {
                    let msg = format!(
                        "RECORD for stream '{}' arrived before any SCHEMA for it; the tap must send a SCHEMA message first",
                        rec.stream
                    );
                    let stream = rec.stream.into_owned();
                    return self.reject(Some(&stream), line, msg);
                };
                match sink.buf.push(rec.record, rec.meta, line.len() + 1) {
                    Ok(()) => self.accepted(&rec.stream, line.len() + 1),
                    Err(e) => {
                        let stream = rec.stream.into_owned();
                        self.reject(Some(&stream), line, e.to_string())
                    }
                }
            }
            Line::Schema(m) => self.schema(m),
            Line::State(v) => Ok(self.sinks.shared.ledger.state(v)?),
            Line::ActivateVersion { stream, version } => self.activate_version(stream, version),
            Line::Batch(m) => self.batch_message(m),
            Line::Ignored(t) => {
                if !t.is_empty() {
                    tracing::debug!(line = self.line_no, "ignoring a '{t}' message");
                }
                Ok(())
            }
        }
    }

    /// Bookkeeping after a record was buffered (slow path).
    fn accepted(&mut self, stream: &str, bytes: usize) -> Result<(), LoadError> {
        let Some(sink) = self.sinks.map.get_mut(stream) else {
            return Ok(());
        };
        if sink.pushed(&mut self.sinks.shared, bytes)? {
            self.sinks.flush(stream)?;
        }
        Ok(())
    }

    fn schema(&mut self, m: singer::SchemaMessage) -> Result<(), LoadError> {
        if let Some(s) = self.sinks.map.get(&m.stream)
            && s.buf.schema.raw == m.schema
        {
            return Ok(()); // taps repeat SCHEMA messages; nothing changes
        }
        let plan = self.plan;
        let needs_keys = self.sinks.shared.traits.needs_keys;
        let key_list = m.key_properties.clone();
        let compiled = StreamSchema::compile(m.schema, plan.headers, plan.validate)
            .and_then(|mut c| match needs_keys {
                true => c.require_keys(&key_list).map(|()| c),
                false => Ok(c),
            })
            .map_err(|e| match e {
                e @ SchemaError::Collision { .. } => LoadError::Config(ConfigError::Value {
                    key: "column_header_format".into(),
                    msg: format!("stream '{}': {e}", m.stream),
                }),
                e => LoadError::Input {
                    line: self.line_no,
                    stream: Some(m.stream.clone()),
                    msg: format!("unusable SCHEMA: {e}"),
                },
            })?;
        for k in &plan.partitions {
            if !compiled.root.fields.iter().any(|f| f.out_name == k.column) {
                return Err(LoadError::Config(ConfigError::Value {
                    key: "partition_keys".into(),
                    msg: format!(
                        "stream '{}' has no column '{}' (columns: {})",
                        m.stream,
                        k.column,
                        compiled
                            .root
                            .fields
                            .iter()
                            .map(|f| f.out_name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }));
            }
        }
        if let Some(old) = self.sinks.map.get(&m.stream) {
            if !compiled.is_additive_over(&old.buf.schema) {
                tracing::warn!(stream = %m.stream, "the new SCHEMA changes or removes columns; files written from now on have the new columns");
            }
            self.sinks.flush(&m.stream)?;
        }
        let buf = StreamBuffer::new(
            &m.stream,
            Arc::new(compiled),
            &plan.meta,
            plan.headers,
            plan.validate,
        );
        let names = self.layout.names(&m.stream);
        let keys = m
            .key_properties
            .iter()
            .map(|k| plan.headers.apply(k))
            .collect();
        // the old buffer (if any) was flushed above: no batch is open
        self.sinks.map.remove(&m.stream);
        let stat = self.sinks.shared.progress.stream(&m.stream);
        self.sinks
            .map
            .insert(m.stream, Sink::new(buf, names, stat, keys));
        self.snapshot = Arc::new(Snapshot {
            epoch: self.snapshot.epoch + 1,
            streams: self
                .sinks
                .map
                .iter()
                .map(|(s, sink)| (s.clone(), sink.buf.spec().clone()))
                .collect(),
        });
        Ok(())
    }

    /// Full-table replication finished loading `version`: where tables keep
    /// versions, rows of earlier versions are deleted once every record
    /// before this line is committed. Other tables keep every version.
    fn activate_version(&mut self, stream: String, version: i64) -> Result<(), LoadError> {
        if !self.sinks.shared.traits.versions {
            tracing::debug!(stream = %stream, version, "ACTIVATE_VERSION: file destinations keep every version's files");
            return Ok(());
        }
        if self.plan.meta.prefix.is_none() {
            tracing::warn!(stream = %stream, version, "ACTIVATE_VERSION ignored: rows carry no _sdc_table_version with add_metadata_columns off");
            return Ok(());
        }
        let Some(names) = self.sinks.map.get(&stream).map(|s| s.names.clone()) else {
            tracing::debug!(stream = %stream, version, "ACTIVATE_VERSION before any SCHEMA: nothing to do");
            return Ok(());
        };
        self.sinks.flush(&stream)?;
        let column = self.plan.headers.apply("_sdc_table_version");
        self.sinks.send_sealed(|id| Job::Activate {
            id,
            names,
            version,
            column,
        })?;
        self.sinks.poll_done(false)
    }

    fn reject(&mut self, stream: Option<&str>, line: &[u8], msg: String) -> Result<(), LoadError> {
        let line_no = self.line_no;
        let ledger = &mut self.sinks.shared.ledger;
        match self
            .rejects
            .handle(line_no, stream, line, &msg, &mut || ledger.open_batch())
        {
            Some(err) => Err(err),
            None => {
                if let Some(s) = stream {
                    self.sinks.shared.progress.rejected(s);
                }
                if self.rejects.quarantine_bytes() > 8 << 20 {
                    self.flush_rejects()?;
                }
                Ok(())
            }
        }
    }

    fn flush_rejects(&mut self) -> Result<(), LoadError> {
        let sh = &mut self.sinks.shared;
        for (stream, pending) in self.rejects.take_quarantine() {
            sh.ledger.sealed(pending.id);
            let dir = format!("_rejected/{}", crate::layout::safe_segment(&stream));
            sh.writer.send(Job::Raw {
                id: pending.id,
                stream,
                dir,
                bytes: pending.bytes,
            })?;
        }
        Ok(())
    }

    /// Seals what is left and waits for every write (also after a failure:
    /// batches in flight were complete, and their STATE may go out).
    pub fn finish(&mut self, outcome: Result<(), LoadError>) -> Result<(), LoadError> {
        let outcome = outcome.and_then(|()| {
            self.sinks.flush_all_streams()?;
            self.flush_rejects()?;
            self.sinks.flush_final_state()
        });
        self.sinks.shared.writer.close();
        let drained = self.sinks.poll_done(true);
        self.sinks.shared.progress.finish();
        outcome.and(drained)
    }

    /// A BATCH message: its files' records, streamed through the same
    /// decoding, validation and rejection as RECORD lines.
    fn batch_message(&mut self, m: singer::BatchMessage) -> Result<(), LoadError> {
        let line_no = self.line_no;
        let input = |msg: String| LoadError::Input {
            line: line_no,
            stream: Some(m.stream.clone()),
            msg,
        };
        if !self.sinks.map.contains_key(&m.stream) {
            return Err(input(
                "BATCH arrived before any SCHEMA for the stream".into(),
            ));
        }
        let stream = m.stream.as_str();
        let r = batch_files::each_record(&m, |uri, n, rec| {
            // decoded columns rely on checked UTF-8, as for input lines
            if let Err(e) = std::str::from_utf8(rec) {
                return self.reject(
                    Some(stream),
                    rec,
                    format!("{uri} line {n}: invalid UTF-8: {e}"),
                );
            }
            let Some(sink) = self.sinks.map.get_mut(stream) else {
                return Ok(());
            };
            match sink.buf.push(rec, Default::default(), rec.len() + 1) {
                Ok(()) => self.accepted(stream, rec.len() + 1),
                Err(e) => self.reject(Some(stream), rec, format!("{uri} line {n}: {e}")),
            }
        });
        match r {
            Ok(()) => Ok(()),
            Err(batch_files::Step::Record(e)) => Err(e),
            Err(batch_files::Step::File(e)) => Err(input(e.to_string())),
        }
    }
}
