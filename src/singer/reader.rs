//! Reads the input on its own thread and hands over blocks of whole lines,
//! so the decoder never waits on a read and can notice idle time (for
//! age-based flushes) while a slow tap is quiet.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

/// Bytes asked of the input per read, at least.
const READ: usize = 256 << 10;
/// Blocks queued ahead of the decoder.
const QUEUE: usize = 4;
/// Used block buffers kept for reuse: a reused buffer is already mapped and
/// initialised, so reads go straight into it (no page faults, no copy). A
/// dropped block's buffer is taken again at the next cut, so two suffice.
const SPARE: usize = 2;

/// A chunk of input made of whole lines (the last block may lack a final newline).
pub struct Block {
    data: Vec<u8>,
    /// The whole block is valid UTF-8 (checked here, off the decoding thread).
    utf8: bool,
    /// Where the buffer goes when the block is dropped: back to the reader.
    home: Option<SyncSender<Vec<u8>>>,
}

impl Block {
    /// A block of `data`, checked for UTF-8.
    pub fn new(data: Vec<u8>) -> Self {
        // SIMD validation: std's scalar check took 2 % of a load's CPU
        let utf8 = simdutf8::basic::from_utf8(&data).is_ok();
        Block {
            data,
            utf8,
            home: None,
        }
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The bytes as text, when the whole block is valid UTF-8 (else lines
    /// are checked one by one, and a bad one is rejected alone).
    pub fn text(&self) -> Option<&str> {
        // SAFETY: `utf8` was computed from `data` in `new`; both fields are
        // private and nothing changes them afterwards (`Drop` takes `data`
        // when nothing can read the block any more)
        self.utf8
            .then(|| unsafe { std::str::from_utf8_unchecked(&self.data) })
    }

    /// Line `start..end` of the block as text, if valid UTF-8. Free when the
    /// whole block is; `start..end` must not split a character (lines end
    /// at `\n`).
    pub fn line_text(&self, start: usize, end: usize) -> Option<&str> {
        match self.text() {
            Some(t) => t.get(start..end),
            None => std::str::from_utf8(self.data.get(start..end)?).ok(),
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(home) = &self.home {
            // a full pool or a finished reader: the buffer is simply freed
            let _ = home.try_send(std::mem::take(&mut self.data));
        }
    }
}

/// Where the Singer messages come from.
pub struct Input {
    read: Box<dyn Read + Send>,
    kind: InputKind,
}

enum InputKind {
    /// Reads come back short only at the end (files, decompressed files).
    Steady,
    /// A pipe from a tap: a short read may mean the tap paused, which this
    /// file descriptor tells.
    #[cfg(unix)]
    Pollable(std::os::fd::RawFd),
    /// Anything else: a short read hands over what is there.
    Other,
}

impl Input {
    /// Standard input (usually a pipe from the tap).
    pub fn stdin() -> Input {
        Input {
            read: Box::new(io::stdin()),
            #[cfg(unix)]
            kind: InputKind::Pollable(0),
            #[cfg(not(unix))]
            kind: InputKind::Other,
        }
    }

    /// A file or another source that never waits for a producer.
    pub fn steady(read: Box<dyn Read + Send>) -> Input {
        Input {
            read,
            kind: InputKind::Steady,
        }
    }

    /// Any reader; short reads hand over what was read.
    pub fn other(read: Box<dyn Read + Send>) -> Input {
        Input {
            read,
            kind: InputKind::Other,
        }
    }

    /// After a read (`short`: less than asked): would the next read wait
    /// for the producer? Then what was read is handed over now.
    fn paused(&self, short: bool) -> bool {
        match self.kind {
            InputKind::Steady => false,
            #[cfg(unix)]
            InputKind::Pollable(fd) => {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, zero timeout
                let r = unsafe { libc::poll(&mut p, 1, 0) };
                !(r > 0 && p.revents & (libc::POLLIN | libc::POLLHUP) != 0)
            }
            InputKind::Other => short,
        }
    }
}

/// Starts the reader thread; blocks hold about `block` bytes while the input
/// keeps coming, less when the producer pauses (a quiet tap must not hold
/// back data).
pub fn spawn(input: Input, block: usize) -> Receiver<io::Result<Block>> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    thread::Builder::new()
        .name("inlet-reader".into())
        .spawn(move || read_loop(input, block, &tx))
        .map_err(|e| tracing::error!("cannot start the reader thread: {e}"))
        .ok();
    rx
}

/// Block buffers: reused ones from the pool, else new.
struct Buffers {
    home: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
}

impl Buffers {
    /// A buffer of exactly `len` initialised bytes (reads go there). A
    /// spare grown far beyond that by one long line is freed, not reused:
    /// blocks, and memory, stay the usual size after it.
    fn get(&self, len: usize) -> Vec<u8> {
        let mut b = match self.spare.try_recv() {
            Ok(b) if b.capacity() <= 2 * len => b,
            _ => Vec::new(),
        };
        b.resize(len, 0);
        b
    }

    /// The first `len` bytes of `data` as a block whose buffer comes back
    /// here when it is dropped.
    fn block(&self, mut data: Vec<u8>, len: usize) -> Block {
        data.truncate(len); // keeps the capacity for the next use
        let mut b = Block::new(data);
        b.home = Some(self.home.clone());
        b
    }
}

fn read_loop(mut input: Input, block: usize, tx: &SyncSender<io::Result<Block>>) {
    let (home, spare) = mpsc::sync_channel(SPARE);
    let pool = Buffers { home, spare };
    // `buf[..filled]` is input not yet handed over; `buf` beyond that is
    // initialised room that reads fill directly
    let mut buf = pool.get(block + READ);
    let mut filled = 0;
    let mut cut = 0;
    loop {
        if buf.len() - filled < READ {
            // a line longer than the block: room for the next read
            buf.resize(filled + READ.max(filled / 2), 0);
        }
        let room = buf.len() - filled;
        let n = match input.read.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if n == 0 {
            if filled > 0 {
                let _ = tx.send(Ok(pool.block(buf, filled)));
            }
            return;
        }
        // where the last whole line ends, found in the new bytes only (a
        // 50 MB line arriving through a pipe must not be rescanned per read)
        if let Some(p) = memchr::memrchr(b'\n', &buf[filled..filled + n]) {
            cut = filled + p + 1;
        }
        filled += n;
        if cut > 0 && (filled >= block || input.paused(n < room)) {
            let rest = filled - cut;
            let mut next = pool.get((block + READ).max(rest + READ));
            next[..rest].copy_from_slice(&buf[cut..filled]);
            let full = pool.block(std::mem::replace(&mut buf, next), cut);
            filled = rest;
            cut = 0; // the rest is part of a line
            if tx.send(Ok(full)).is_err() {
                return; // the decoder stopped
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_whole_lines() {
        let mut text = Vec::new();
        for i in 0..50_000 {
            text.extend_from_slice(format!("{{\"n\":{i}}}\n").as_bytes());
            if i == 20_000 {
                // a line longer than a block, between short ones
                text.extend_from_slice(&vec![b'y'; (5 << 20) / 2]);
                text.push(b'\n');
            }
        }
        text.extend_from_slice(&vec![b'x'; 3 << 20]); // a long last line without newline
        let rx = spawn(
            Input::other(Box::new(std::io::Cursor::new(text.clone()))),
            1 << 20,
        );
        let mut all = Vec::new();
        let mut after_long = false;
        for b in rx {
            let b = b.unwrap();
            if after_long && all.len() + b.data().len() < text.len() - (3 << 20) {
                // a buffer grown by the long line is not reused for short ones
                assert!(b.data().len() < (2 << 20), "{}", b.data().len());
            }
            after_long |= b.data().len() > (2 << 20);
            assert!(b.text().is_some());
            if all.len() + b.data().len() < text.len() {
                assert_eq!(b.data().last(), Some(&b'\n'));
            }
            all.extend_from_slice(b.data());
        }
        assert_eq!(all, text);
    }
}
