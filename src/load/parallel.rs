//! Decoding input blocks on several threads.
//!
//! The router hands each block of whole lines to a decoding thread, in
//! turn, with a [`Snapshot`] of the streams it knows. A thread decodes the
//! RECORD lines of known streams into Arrow arrays and lists every other
//! line (STATE, SCHEMA, records it could not decode, …) as a [`Event::Line`]
//! for the router, which applies the results strictly in input order — so
//! batching, STATE and errors behave exactly as with one thread. A SCHEMA
//! line ends a thread's fast path for the rest of its block, and a block
//! decoded against an older snapshot than the router's is redone line by
//! line on the router's thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use arrow_array::ArrayRef;
use arrow_schema::ArrowError;
use rustc_hash::FxHashMap;

use crate::batch::{RowDecoder, RowSpec};
use crate::singer::reader::Block;
use crate::singer::{self, Line};

/// The streams the router knew when a block was handed out.
#[derive(Default)]
pub struct Snapshot {
    /// Bumped by the router whenever a SCHEMA changes its streams.
    pub epoch: u64,
    /// Decoding spec per stream.
    pub streams: HashMap<String, Arc<RowSpec>>,
}

/// One step of a decoded block, in input order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `rows` consecutive decoded records of chunk `chunk` (one line each).
    Records {
        /// Index into [`Decoded::chunks`].
        chunk: usize,
        /// How many.
        rows: usize,
    },
    /// A line for the router to handle itself (byte range in the block).
    Line {
        /// Start offset.
        start: usize,
        /// End offset (exclusive, without the newline).
        end: usize,
        /// It may add to a stream's buffer (anything but STATE and ignored
        /// or unparsable lines), so earlier decoded rows must be there first.
        touches_buffers: bool,
    },
}

/// Records of one stream decoded from one block.
pub struct Chunk {
    /// Stream name.
    pub stream: String,
    /// Arrays as [`RowDecoder::finish`] returns them.
    pub arrays: Result<Vec<ArrayRef>, ArrowError>,
    /// Input bytes of each row's line (newline included).
    pub line_bytes: Vec<u32>,
}

/// A block and what a decoding thread made of it.
pub struct Decoded {
    /// Epoch of the snapshot it was decoded against.
    pub epoch: u64,
    /// The block itself (lines of [`Event::Line`] point into it).
    pub block: Block,
    /// Steps in input order.
    pub events: Vec<Event>,
    /// Decoded records per stream.
    pub chunks: Vec<Chunk>,
}

type Job = (Block, Arc<Snapshot>);

/// Decoding threads, fed in turn; results come back in submission order.
pub struct Pool {
    txs: Vec<SyncSender<Job>>,
    rxs: Vec<Receiver<Decoded>>,
    sent: usize,
    received: usize,
    handles: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` decoding threads.
    pub fn start(threads: usize) -> std::io::Result<Pool> {
        let mut pool = Pool {
            txs: Vec::new(),
            rxs: Vec::new(),
            sent: 0,
            received: 0,
            handles: Vec::new(),
        };
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::sync_channel::<Job>(1);
            let (done_tx, done_rx) = mpsc::sync_channel::<Decoded>(1);
            let handle = std::thread::Builder::new()
                .name(format!("inlet-decode-{i}"))
                .spawn(move || {
                    let mut decoders = Decoders::default();
                    for (block, snap) in rx {
                        if done_tx
                            .send(decode_block(block, &snap, &mut decoders))
                            .is_err()
                        {
                            return;
                        }
                    }
                })?;
            pool.txs.push(tx);
            pool.rxs.push(done_rx);
            pool.handles.push(handle);
        }
        Ok(pool)
    }

    /// Blocks handed out and not yet taken back.
    pub fn in_flight(&self) -> usize {
        self.sent - self.received
    }

    /// Most blocks worth keeping in flight: two per thread.
    pub fn capacity(&self) -> usize {
        2 * self.txs.len()
    }

    /// Hands a block to the next thread in turn. Returns the block if that
    /// thread is gone (it can only stop by panicking).
    pub fn submit(&mut self, block: Block, snap: Arc<Snapshot>) -> Result<(), Block> {
        let i = self.sent % self.txs.len();
        match self.txs[i].send((block, snap)) {
            Ok(()) => {
                self.sent += 1;
                Ok(())
            }
            Err(mpsc::SendError((block, _))) => Err(block),
        }
    }

    /// The oldest block's result (waits for it); None when nothing is in
    /// flight or its thread died.
    pub fn next(&mut self) -> Option<Decoded> {
        if self.in_flight() == 0 {
            return None;
        }
        let i = self.received % self.rxs.len();
        let d = self.rxs[i].recv().ok()?;
        self.received += 1;
        Some(d)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.txs.clear(); // the threads' loops end
        self.rxs.clear(); // and a thread blocked on sending a result wakes up
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A decoding thread's builders, kept from block to block so that each
/// stream's decoder keeps what it learned (key order).
#[derive(Default)]
struct Decoders {
    epoch: Option<u64>,
    by_stream: FxHashMap<String, RowDecoder>,
}

impl Decoders {
    /// Follows the snapshot: drops streams it lacks, renews changed specs.
    fn sync(&mut self, snap: &Snapshot) {
        if self.epoch == Some(snap.epoch) {
            return;
        }
        self.by_stream.retain(|s, d| {
            snap.streams
                .get(s)
                .is_some_and(|spec| Arc::ptr_eq(spec, d.spec()))
        });
        for (s, spec) in &snap.streams {
            if !self.by_stream.contains_key(s) {
                self.by_stream
                    .insert(s.clone(), RowDecoder::new(spec.clone()));
            }
        }
        self.epoch = Some(snap.epoch);
    }
}

fn decode_block(block: Block, snap: &Snapshot, decoders: &mut Decoders) -> Decoded {
    decoders.sync(snap);
    let mut events: Vec<Event> = Vec::new();
    // (stream, line bytes) per chunk, in order of first appearance
    let mut chunks: Vec<(String, Vec<u32>)> = Vec::new();
    let mut barrier = false;
    let data = block.data();
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', data);
    loop {
        let end = match ends.next() {
            Some(e) => e,
            None if start < data.len() => data.len(),
            None => break,
        };
        let line = &data[start..end];
        // after a SCHEMA the router decodes the rest itself (and checks it)
        let text = if barrier {
            None
        } else {
            block.line_text(start, end)
        };
        let outcome = match text {
            Some(text) => decode_record(text, decoders, &mut chunks, &mut events),
            None => Outcome::Left,
        };
        if outcome != Outcome::Decoded {
            let mut touches_buffers = true;
            if outcome == Outcome::NotRecord {
                match singer::parse_line(line) {
                    // later lines may depend on this SCHEMA
                    Ok(Line::Schema(_)) => barrier = true,
                    Ok(Line::State(_) | Line::Ignored(_)) | Err(_) => touches_buffers = false,
                    Ok(_) => {}
                }
            }
            events.push(Event::Line {
                start,
                end,
                touches_buffers,
            });
        }
        start = end + 1;
    }
    let chunks = chunks
        .into_iter()
        .map(|(stream, line_bytes)| {
            let arrays = match decoders.by_stream.get_mut(&stream) {
                Some(d) => d.finish(),
                None => Ok(Vec::new()),
            };
            Chunk {
                stream,
                arrays,
                line_bytes,
            }
        })
        .collect();
    Decoded {
        epoch: snap.epoch,
        block,
        events,
        chunks,
    }
}

/// What became of a line on a decoding thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Decoded into its stream's builders.
    Decoded,
    /// A RECORD the router must handle (unknown stream, invalid record).
    Left,
    /// Not a RECORD in the usual key order: may be a SCHEMA.
    NotRecord,
}

/// Decodes one RECORD line of a known stream.
fn decode_record(
    line: &str,
    decoders: &mut Decoders,
    chunks: &mut Vec<(String, Vec<u32>)>,
    events: &mut Vec<Event>,
) -> Outcome {
    let Some((stream, mut sc)) = singer::record_head(line) else {
        return Outcome::NotRecord;
    };
    let Some(dec) = decoders.by_stream.get_mut(stream.as_ref()) else {
        return Outcome::Left;
    };
    if dec.push_from(&mut sc, singer::record_tail).is_err() {
        return Outcome::Left; // the router decodes it again and reports the error
    }
    let chunk = match chunks.iter().position(|(s, _)| *s == stream) {
        Some(i) => i,
        None => {
            chunks.push((stream.into_owned(), Vec::new()));
            chunks.len() - 1
        }
    };
    chunks[chunk].1.push(line.len() as u32 + 1);
    match events.last_mut() {
        Some(Event::Records { chunk: c, rows }) if *c == chunk => *rows += 1,
        _ => events.push(Event::Records { chunk, rows: 1 }),
    }
    Outcome::Decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(epoch: u64) -> Snapshot {
        let buf = crate::batch::id_buffer("a", None);
        Snapshot {
            epoch,
            streams: [("a".to_string(), buf.spec().clone())].into(),
        }
    }

    fn block(text: &str) -> Block {
        Block::new(text.as_bytes().to_vec())
    }

    #[test]
    fn records_are_decoded_and_everything_else_is_handed_back_in_order() {
        let text = concat!(
            r#"{"type":"RECORD","stream":"a","record":{"id":1}}"#,
            "\n",
            r#"{"type":"RECORD","stream":"a","record":{"id":2}}"#,
            "\n",
            r#"{"type":"STATE","value":{"n":2}}"#,
            "\n",
            r#"{"type":"RECORD","stream":"a","record":{"id":"bad"}}"#,
            "\n",
            r#"{"type":"RECORD","stream":"b","record":{"id":4}}"#,
            "\n",
            r#"{"type":"RECORD","stream":"a","record":{"id":5}}"#,
        );
        let mut pool = Pool::start(2).unwrap();
        pool.submit(block(text), Arc::new(snapshot(7)))
            .ok()
            .unwrap();
        let d = pool.next().unwrap();
        assert_eq!(d.epoch, 7);
        let lines: Vec<&str> = d
            .events
            .iter()
            .filter_map(|e| match *e {
                Event::Line { start, end, .. } => {
                    Some(std::str::from_utf8(&d.block.data()[start..end]).unwrap())
                }
                _ => None,
            })
            .collect();
        assert_eq!(lines.len(), 3, "STATE, the bad record, the unknown stream");
        assert!(
            lines[0].contains("STATE") && lines[1].contains("bad") && lines[2].contains("\"b\"")
        );
        assert_eq!(d.events[0], Event::Records { chunk: 0, rows: 2 });
        let touches: Vec<bool> = d
            .events
            .iter()
            .filter_map(|e| match *e {
                Event::Line {
                    touches_buffers, ..
                } => Some(touches_buffers),
                _ => None,
            })
            .collect();
        assert_eq!(touches, [false, true, true], "a STATE needs no hand-over");
        assert_eq!(d.events[4], Event::Records { chunk: 0, rows: 1 });
        let chunk = &d.chunks[0];
        assert_eq!(chunk.arrays.as_ref().unwrap()[0].len(), 3);
        assert_eq!(chunk.line_bytes.len(), 3);
        assert!(pool.next().is_none());
    }

    #[test]
    fn a_schema_line_hands_the_rest_of_the_block_back_undecoded() {
        let text = concat!(
            r#"{"type":"RECORD","stream":"a","record":{"id":1}}"#,
            "\n",
            r#"{"type":"SCHEMA","stream":"a","schema":{"type":"object","properties":{"id":{"type":"string"}}},"key_properties":[]}"#,
            "\n",
            r#"{"type":"RECORD","stream":"a","record":{"id":"x"}}"#,
            "\n",
        );
        let mut pool = Pool::start(1).unwrap();
        pool.submit(block(text), Arc::new(snapshot(1)))
            .ok()
            .unwrap();
        let d = pool.next().unwrap();
        assert_eq!(d.events.len(), 3);
        assert_eq!(d.events[0], Event::Records { chunk: 0, rows: 1 });
        assert!(matches!(d.events[1], Event::Line { .. }));
        assert!(matches!(d.events[2], Event::Line { .. }));
    }
}
