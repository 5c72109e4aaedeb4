//! Reads the input on its own thread and hands over blocks of whole lines,
//! so the decoder never waits on a read and can notice idle time (for
//! age-based flushes) while a slow tap is quiet.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

/// Bytes asked of the input per read.
const READ: usize = 256 << 10;
/// Blocks queued ahead of the decoder.
const QUEUE: usize = 4;

/// A chunk of input made of whole lines (the last block may lack a final newline).
pub struct Block {
    /// The bytes.
    pub data: Vec<u8>,
    /// The whole block is valid UTF-8 (checked here, off the decoding thread).
    pub utf8: bool,
}

impl Block {
    fn new(data: Vec<u8>) -> Self {
        let utf8 = std::str::from_utf8(&data).is_ok();
        Block { data, utf8 }
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

fn read_loop(mut input: Input, block: usize, tx: &SyncSender<io::Result<Block>>) {
    // one zeroed read buffer, reused; blocks are filled by copying out of it
    let mut scratch = vec![0u8; READ];
    let mut buf: Vec<u8> = Vec::with_capacity(block);
    let mut cut = 0;
    loop {
        let n = match input.read.read(&mut scratch) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if n == 0 {
            if !buf.is_empty() {
                let _ = tx.send(Ok(Block::new(buf)));
            }
            return;
        }
        // where the last whole line ends, found in the new bytes only (a
        // 50 MB line arriving through a pipe must not be rescanned per read)
        if let Some(p) = memchr::memrchr(b'\n', &scratch[..n]) {
            cut = buf.len() + p + 1;
        }
        buf.extend_from_slice(&scratch[..n]);
        if cut > 0 && (buf.len() >= block || input.paused(n < scratch.len())) {
            let mut next = Vec::with_capacity(block.max(buf.len() - cut));
            next.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
            cut = 0; // the rest is part of a line
            if tx
                .send(Ok(Block::new(std::mem::replace(&mut buf, next))))
                .is_err()
            {
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
        }
        text.extend_from_slice(&vec![b'x'; 3 << 20]); // a long last line without newline
        let rx = spawn(
            Input::other(Box::new(std::io::Cursor::new(text.clone()))),
            1 << 20,
        );
        let mut all = Vec::new();
        for b in rx {
            let b = b.unwrap();
            assert!(b.utf8);
            if all.len() + b.data.len() < text.len() {
                assert_eq!(b.data.last(), Some(&b'\n'));
            }
            all.extend_from_slice(&b.data);
        }
        assert_eq!(all, text);
    }
}
