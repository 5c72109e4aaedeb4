//! The load job: reader → router (per stream) → stream buffers → writer
//! thread, with the ledger deciding when STATE may go out.

mod batch_files;
mod parallel;
mod progress;
mod reject;

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::Duration;

use crate::batch::{Limits, Metadata, StreamBuffer};
use crate::config::{ConfigError, Format, LoadConfig, SchemaMode, WriteMode};
use crate::format::{Codec, Encoder};
use crate::layout::{Layout, PartitionKey, TableNames};
use crate::schema::{SchemaError, StreamSchema};
use crate::singer::reader::Block;
pub use crate::singer::reader::Input;
use crate::singer::{self, Line};
use crate::state::{BatchId, Ledger, StateError};
use crate::storage::{StorageError, Store};
use crate::table::delta::{DeltaMode, DeltaSettings};
use crate::table::{Done, FileWriter, Job, TableError};
use parallel::{Decoded, Event, Pool, Snapshot};
pub use progress::{Progress, StreamStats};
use reject::Rejects;

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad settings (exit 3).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad input (exit 4).
    #[error("input line {line}{}: {msg}", stream.as_ref().map(|s| format!(" (stream '{s}')")).unwrap_or_default())]
    Input {
        /// 1-based line number.
        line: u64,
        /// Stream, when known.
        stream: Option<String>,
        /// What is wrong and what to do.
        msg: String,
    },
    /// The destination failed (exit 5).
    #[error("{0}")]
    Destination(String),
    /// stdout or the state file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Anything else (exit 1).
    #[error("{0}")]
    Internal(String),
}

impl From<StorageError> for LoadError {
    fn from(e: StorageError) -> Self {
        LoadError::Destination(e.to_string())
    }
}

impl From<TableError> for LoadError {
    fn from(e: TableError) -> Self {
        if e.is_destination() {
            LoadError::Destination(e.to_string())
        } else {
            LoadError::Internal(e.to_string())
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

struct Sink {
    buf: StreamBuffer,
    names: TableNames,
    batch: Option<BatchId>,
    /// Slot in [`Progress`].
    stat: usize,
    /// key_properties of the stream's SCHEMA (renamed like the columns).
    keys: Vec<String>,
}

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

/// Bookkeeping after a record was buffered: ledger id, progress, chunking.
/// Returns whether the stream must be flushed now. (A function of the parts,
/// not of the router, so the hot path looks the stream up only once.)
fn after_push(
    sink: &mut Sink,
    ledger: &mut Ledger,
    progress: &mut Progress,
    limits: &Limits,
    writer: Option<&FileWriter>,
    bytes: usize,
) -> Result<bool, LoadError> {
    if sink.batch.is_none() {
        sink.batch = Some(ledger.open_batch());
    }
    progress.record(sink.stat, bytes);
    sink.buf.cut_chunk_if_full().map_err(|e| {
        LoadError::Internal(format!(
            "stream '{}': building the batch: {e}",
            sink.names.stream
        ))
    })?;
    if let Some(w) = writer {
        ship(sink, w)?;
        if w.has_failed() {
            return Ok(true); // the flush reports the writer's failure now
        }
    }
    Ok(sink.buf.is_over_size(limits))
}

/// Hands a stream's finished chunks to the writer, which encodes them while
/// the batch fills: memory holds a chunk or two, not the whole batch, and
/// little encoding is left when the batch is sealed.
fn ship(sink: &mut Sink, writer: &FileWriter) -> Result<(), LoadError> {
    let Some(id) = sink.batch.filter(|_| sink.buf.ready_rows() > 0) else {
        return Ok(());
    };
    let now_us = chrono::Utc::now().timestamp_micros();
    let batches = sink.buf.take_ready(now_us).map_err(|e| {
        LoadError::Internal(format!(
            "stream '{}': building the batch: {e}",
            sink.names.stream
        ))
    })?;
    Ok(writer.send(Job::Rows {
        id,
        stream: sink.names.stream.clone(),
        batches,
    })?)
}

/// Runs `inlet load` on `input`, writing STATE values to `stdout`.
pub fn run(
    cfg: &LoadConfig,
    input: Input,
    stdout: Box<dyn Write + Send>,
) -> Result<Summary, LoadError> {
    let dest = cfg.destination()?;
    let store = Store::open_with(&dest, &cfg.storage).map_err(|e| match e.is_config() {
        true => LoadError::Config(ConfigError::Storage(e.to_string())),
        false => e.into(),
    })?;
    let codec =
        Codec::parse(cfg.format, cfg.compression.as_deref()).map_err(|msg| ConfigError::Value {
            key: "compression".into(),
            msg,
        })?;
    let encoder = Encoder {
        format: cfg.format,
        codec,
        row_group_size: cfg.row_group_size,
        delimiter: cfg
            .csv_delimiter
            .as_bytes()
            .first()
            .copied()
            .unwrap_or(b','),
    };
    let layout = Layout::new(cfg, encoder.extension());
    let partitions = cfg
        .partition_keys
        .iter()
        .map(|p| {
            PartitionKey::parse(p).map(|mut k| {
                k.column = cfg.column_header_format.apply(&k.column);
                k
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|msg| ConfigError::Value {
            key: "partition_keys".into(),
            msg,
        })?;
    let delta = (cfg.format == Format::Delta).then(|| DeltaSettings {
        mode: match cfg.mode {
            WriteMode::Append => DeltaMode::Append,
            WriteMode::Overwrite => DeltaMode::Overwrite,
            WriteMode::Merge => DeltaMode::Merge,
        },
        partition_columns: partitions.iter().map(|k| k.column.clone()).collect(),
        overwrite_partitions: cfg.overwrite_partitions,
        hard_delete: cfg.hard_delete,
        schema_overwrite: cfg.schema_mode == SchemaMode::Overwrite,
        target_file_size: cfg.target_file_size,
        // Mage's table_uri without a destination names the one table itself
        single_table: cfg.destination.as_deref().is_none_or(str::is_empty)
            && cfg.storage.table_uri.is_some(),
        deleted_at_column: cfg.column_header_format.apply("_sdc_deleted_at"),
        writer_properties: Some(encoder.parquet_properties()),
    });
    let writer = FileWriter::start(
        store.clone(),
        encoder,
        layout.clone(),
        partitions.clone(),
        delta,
    )
    .map_err(|e| LoadError::Internal(format!("cannot start the writer thread: {e}")))?;
    let mut r = Router {
        cfg,
        limits: Limits {
            max_bytes: cfg.batch_max_bytes() as usize,
            max_rows: cfg.batch_max_rows as usize,
            max_age: cfg.batch_max_age(),
        },
        meta: Metadata {
            prefix: cfg
                .add_metadata_columns
                .then(|| cfg.metadata_column_prefix.clone()),
            table_version: cfg.format == Format::Delta,
        },
        layout,
        partitions,
        sinks: FxHashMap::default(),
        ledger: Ledger::new(stdout, cfg.state_file.clone()),
        writer,
        rejects: Rejects::new(cfg.on_invalid_record),
        progress: Progress::new(),
        failure: None,
        line_no: 0,
        streaming: cfg.format != Format::Delta,
        snapshot: Arc::new(Snapshot::default()),
    };
    let outcome = r.read_all(input);
    r.finish(outcome)
}

struct Router<'c> {
    cfg: &'c LoadConfig,
    limits: Limits,
    meta: Metadata,
    layout: Layout,
    partitions: Vec<PartitionKey>,
    /// Fx hash: looked up once per record, keys are the tap's stream names.
    sinks: FxHashMap<String, Sink>,
    ledger: Ledger,
    writer: FileWriter,
    rejects: Rejects,
    progress: Progress,
    failure: Option<LoadError>,
    line_no: u64,
    /// Rows go to the writer while their batch fills (plain files; a Delta
    /// commit takes the whole batch at once).
    streaming: bool,
    /// The streams as decoding threads see them.
    snapshot: Arc<Snapshot>,
}

impl Router<'_> {
    fn read_all(&mut self, input: Input) -> Result<(), LoadError> {
        let threads = self.cfg.decode_thread_count();
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
                            return Err(LoadError::Internal("a decoding thread stopped".into()));
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
                    None => return Err(LoadError::Internal("a decoding thread stopped".into())),
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
        self.poll_done(false)?;
        self.flush_aged()?;
        self.progress.tick();
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
            let arrays = c.arrays.map_err(|e| {
                LoadError::Internal(format!("stream '{}': building the batch: {e}", c.stream))
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
            let Some(sink) = self.sinks.get_mut(&p.stream) else {
                return Err(LoadError::Internal(format!(
                    "decoded records for unknown stream '{}'",
                    p.stream
                )));
            };
            if sink.batch.is_none() {
                sink.batch = Some(self.ledger.open_batch());
            }
            let held_rows = sink.buf.rows() + (p.next - p.taken);
            let held_bytes = sink.buf.bytes() + p.bytes;
            let (mut n, mut bytes, mut full) = (0, 0, false);
            while p.next + n < end && !full {
                bytes += p.line_bytes[p.next + n] as usize;
                n += 1;
                full = held_bytes + bytes >= self.limits.max_bytes
                    || (self.limits.max_rows > 0 && held_rows + n >= self.limits.max_rows);
            }
            self.progress.records(sink.stat, n, bytes);
            p.next += n;
            p.bytes += bytes;
            if full {
                self.hand_over(p)?;
                self.flush(&p.stream)?;
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
        let Some(sink) = self.sinks.get_mut(&p.stream) else {
            return Ok(());
        };
        sink.buf.append(arrays, n, p.bytes).map_err(|e| {
            LoadError::Internal(format!("stream '{}': building the batch: {e}", p.stream))
        })?;
        if self.streaming {
            ship(sink, &self.writer)?;
            if self.writer.has_failed() {
                self.poll_done(false)?;
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
            && let Some(sink) = self.sinks.get_mut(stream.as_ref())
        {
            let bytes = line.len() + 1;
            return match sink.buf.push_from(&mut sc, bytes, singer::record_tail) {
                Ok(()) => {
                    if after_push(
                        sink,
                        &mut self.ledger,
                        &mut self.progress,
                        &self.limits,
                        self.streaming.then_some(&self.writer),
                        bytes,
                    )? {
                        self.flush(&stream)?;
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
                let Some(sink) = self.sinks.get_mut(rec.stream.as_ref()) else {
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
            Line::State(v) => Ok(self.ledger.state(v)?),
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
        let Some(sink) = self.sinks.get_mut(stream) else {
            return Ok(());
        };
        if after_push(
            sink,
            &mut self.ledger,
            &mut self.progress,
            &self.limits,
            self.streaming.then_some(&self.writer),
            bytes,
        )? {
            self.flush(stream)?;
        }
        Ok(())
    }

    fn schema(&mut self, m: singer::SchemaMessage) -> Result<(), LoadError> {
        if let Some(s) = self.sinks.get(&m.stream)
            && s.buf.schema.raw == m.schema
        {
            return Ok(()); // taps repeat SCHEMA messages; nothing changes
        }
        let compiled = StreamSchema::compile(
            m.schema,
            self.cfg.column_header_format,
            self.cfg.validate_records,
        )
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
        for k in &self.partitions {
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
        if let Some(old) = self.sinks.get(&m.stream) {
            if !compiled.is_additive_over(&old.buf.schema) {
                tracing::warn!(stream = %m.stream, "the new SCHEMA changes or removes columns; files written from now on have the new columns");
            }
            self.flush(&m.stream)?;
        }
        let buf = StreamBuffer::new(
            &m.stream,
            Arc::new(compiled),
            &self.meta,
            self.cfg.column_header_format,
            self.cfg.validate_records,
        );
        let names = self.layout.names(&m.stream);
        let keys = m
            .key_properties
            .iter()
            .map(|k| self.cfg.column_header_format.apply(k))
            .collect();
        // the old buffer (if any) was flushed above: no batch is open
        self.sinks.remove(&m.stream);
        let stat = self.progress.stream(&m.stream);
        self.sinks.insert(
            m.stream,
            Sink {
                buf,
                names,
                batch: None,
                stat,
                keys,
            },
        );
        self.snapshot = Arc::new(Snapshot {
            epoch: self.snapshot.epoch + 1,
            streams: self
                .sinks
                .iter()
                .map(|(s, sink)| (s.clone(), sink.buf.spec().clone()))
                .collect(),
        });
        Ok(())
    }

    /// Full-table replication finished loading `version`: on Delta, rows of
    /// earlier versions are deleted once every record before this line is
    /// committed. File destinations keep every version's files.
    fn activate_version(&mut self, stream: String, version: i64) -> Result<(), LoadError> {
        if self.cfg.format != Format::Delta {
            tracing::debug!(stream = %stream, version, "ACTIVATE_VERSION: file destinations keep every version's files");
            return Ok(());
        }
        if !self.cfg.add_metadata_columns {
            tracing::warn!(stream = %stream, version, "ACTIVATE_VERSION ignored: rows carry no _sdc_table_version with add_metadata_columns off");
            return Ok(());
        }
        let Some(names) = self.sinks.get(&stream).map(|s| s.names.clone()) else {
            tracing::debug!(stream = %stream, version, "ACTIVATE_VERSION before any SCHEMA: nothing to do");
            return Ok(());
        };
        self.flush(&stream)?;
        let id = self.ledger.open_batch();
        self.ledger.sealed(id);
        let column = self.cfg.column_header_format.apply("_sdc_table_version");
        self.writer.send(Job::Activate {
            id,
            names,
            version,
            column,
        })?;
        self.poll_done(false)
    }

    fn reject(&mut self, stream: Option<&str>, line: &[u8], msg: String) -> Result<(), LoadError> {
        let line_no = self.line_no;
        let ledger = &mut self.ledger;
        match self
            .rejects
            .handle(line_no, stream, line, &msg, &mut || ledger.open_batch())
        {
            Some(err) => Err(err),
            None => {
                if let Some(s) = stream {
                    self.progress.rejected(s);
                }
                if self.rejects.quarantine_bytes() > 8 << 20 {
                    self.flush_rejects()?;
                }
                Ok(())
            }
        }
    }

    /// Seals a stream's buffer and hands it to the writer.
    fn flush(&mut self, stream: &str) -> Result<(), LoadError> {
        let Some(sink) = self.sinks.get_mut(stream) else {
            return Ok(());
        };
        let now_us = chrono::Utc::now().timestamp_micros();
        let rows = sink.buf.rows();
        let batch = sink.buf.seal(now_us).map_err(|e| {
            LoadError::Internal(format!("stream '{stream}': building the batch: {e}"))
        })?;
        let Some(id) = sink.batch.take() else {
            return Ok(());
        };
        match rows == 0 {
            false => {
                self.ledger.sealed(id);
                let state = (self.cfg.format == Format::Delta)
                    .then(|| self.ledger.state_through_sealed())
                    .flatten();
                self.writer.send(Job::Batch {
                    id,
                    names: sink.names.clone(),
                    batches: batch,
                    keys: sink.keys.clone(),
                    state,
                })?
            }
            true => self.ledger.abandoned(id)?,
        }
        self.poll_done(false)
    }

    fn flush_rejects(&mut self) -> Result<(), LoadError> {
        for (stream, pending) in self.rejects.take_quarantine() {
            self.ledger.sealed(pending.id);
            let dir = format!("_rejected/{}", crate::layout::safe_segment(&stream));
            self.writer.send(Job::Raw {
                id: pending.id,
                stream,
                dir,
                bytes: pending.bytes,
            })?;
        }
        Ok(())
    }

    fn flush_aged(&mut self) -> Result<(), LoadError> {
        let aged: Vec<String> = self
            .sinks
            .iter()
            .filter(|(_, s)| s.buf.is_full(&self.limits))
            .map(|(k, _)| k.clone())
            .collect();
        for s in aged {
            self.flush(&s)?;
        }
        // quarantined lines hold back STATE too: write them on the same clock
        if self
            .rejects
            .oldest()
            .is_some_and(|age| age >= self.limits.max_age)
        {
            self.flush_rejects()?;
        }
        Ok(())
    }

    /// Applies finished writes to the ledger; `wait` blocks for all of them.
    fn poll_done(&mut self, wait: bool) -> Result<(), LoadError> {
        loop {
            let d: Done = if wait {
                match self.writer.done.recv() {
                    Ok(d) => d,
                    Err(_) => return Ok(()),
                }
            } else {
                match self.writer.done.try_recv() {
                    Ok(d) => d,
                    Err(_) => return Ok(()),
                }
            };
            match d.result {
                Ok(files) => {
                    if !d.stream.is_empty() {
                        self.progress.files(&d.stream, &files);
                    }
                    self.ledger.committed(d.id)?;
                }
                Err(e) => {
                    if self.failure.is_none() {
                        self.failure = Some(e.into());
                    }
                }
            }
            if let Some(f) = self.failure.take() {
                return Err(f);
            }
        }
    }

    fn finish(mut self, outcome: Result<(), LoadError>) -> Result<Summary, LoadError> {
        let outcome = outcome.and_then(|_| {
            let streams: Vec<String> = self.sinks.keys().cloned().collect();
            for s in streams {
                self.flush(&s)?;
            }
            self.flush_rejects()?;
            // Delta: the final STATE also goes into every table of the run
            if self.cfg.format == Format::Delta
                && let Some(state) = self.ledger.state_through_sealed()
            {
                let id = self.ledger.open_batch();
                self.ledger.sealed(id);
                self.writer.send(Job::State { id, state })?;
            }
            Ok(())
        });
        // whether we stop cleanly or not, finish what is in flight: those
        // batches were complete, and their STATE may go out
        self.writer.close();
        let drained = self.poll_done(true);
        self.progress.finish();
        let outcome = outcome.and(drained);
        let summary = Summary {
            streams: self.progress.take(),
            states_emitted: self.ledger.emitted_count,
            rejected: self.rejects.count(),
        };
        for (name, s) in &summary.streams {
            tracing::info!(stream = %name, records = s.records, files = s.files, rejected = s.rejected, bytes_in = s.bytes, bytes_out = s.bytes_out, "stream done");
        }
        if self.ledger.pending() > 0 && outcome.is_ok() {
            tracing::warn!(
                "{} STATE message(s) could not be emitted",
                self.ledger.pending()
            );
        }
        outcome.map(|_| summary)
    }

    fn batch_message(&mut self, m: singer::BatchMessage) -> Result<(), LoadError> {
        let line_no = self.line_no;
        let files = batch_files::read_manifest(&m).map_err(|msg| LoadError::Input {
            line: line_no,
            stream: Some(m.stream.clone()),
            msg,
        })?;
        for (uri, lines) in files {
            for (i, rec) in lines.split(|b| *b == b'\n').enumerate() {
                if rec.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let Some(sink) = self.sinks.get_mut(&m.stream) else {
                    return Err(LoadError::Input {
                        line: line_no,
                        stream: Some(m.stream.clone()),
                        msg: "BATCH arrived before any SCHEMA for the stream".into(),
                    });
                };
                // decoded columns rely on checked UTF-8, as for input lines
                if let Err(e) = std::str::from_utf8(rec) {
                    let msg = format!("{uri} line {}: invalid UTF-8: {e}", i + 1);
                    self.reject(Some(&m.stream.clone()), rec, msg)?;
                    continue;
                }
                if let Err(e) = sink.buf.push(rec, Default::default(), rec.len() + 1) {
                    let msg = format!("{uri} line {}: {e}", i + 1);
                    self.reject(Some(&m.stream.clone()), rec, msg)?;
                    continue;
                }
                self.accepted(&m.stream, rec.len() + 1)?;
            }
        }
        Ok(())
    }
}
