//! Reads the input on its own thread and hands over blocks of whole lines,
//! so the decoder never waits on a read and can notice idle time (for
//! age-based flushes) while a slow tap is quiet.

use std::io::{self, Read};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread;

/// Target size of one block.
const BLOCK: usize = 1 << 20;
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

/// Starts the reader thread.
pub fn spawn(mut input: Box<dyn Read + Send>) -> Receiver<io::Result<Block>> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    thread::Builder::new()
        .name("inlet-reader".into())
        .spawn(move || read_loop(&mut input, &tx))
        .map_err(|e| tracing::error!("cannot start the reader thread: {e}"))
        .ok();
    rx
}

fn read_loop(input: &mut dyn Read, tx: &SyncSender<io::Result<Block>>) {
    // one zeroed read buffer, reused; blocks are filled by copying out of it
    let mut scratch = vec![0u8; BLOCK / 4];
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK);
    loop {
        let n = match input.read(&mut scratch) {
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
        let had_newline = memchr::memchr(b'\n', &scratch[..n]).is_some();
        buf.extend_from_slice(&scratch[..n]);
        // hand over whole lines when the block is big enough, or when the
        // producer paused (a short read): a quiet tap must not hold back data
        if had_newline && (buf.len() >= BLOCK || n < scratch.len()) {
            let cut = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
            let mut next = Vec::with_capacity(BLOCK.max(buf.len() - cut));
            next.extend_from_slice(&buf[cut..]);
            buf.truncate(cut);
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
        text.extend_from_slice(&vec![b'x'; 3 * BLOCK]); // a long last line without newline
        let rx = spawn(Box::new(std::io::Cursor::new(text.clone())));
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
