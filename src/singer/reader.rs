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
pub type Block = Vec<u8>;

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
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut buf = Vec::with_capacity(BLOCK + carry.len());
        buf.append(&mut carry);
        // read until at least one whole line is in, or EOF
        let eof = loop {
            let before = buf.len();
            if buf.capacity() - before < BLOCK / 4 {
                buf.reserve(buf.capacity()); // one very long line: grow
            }
            match Read::take(&mut *input, (buf.capacity() - before) as u64).read_to_end(&mut buf) {
                Ok(0) => break true,
                Ok(_) => {
                    if memchr::memchr(b'\n', &buf[before..]).is_some() {
                        break false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        };
        if eof {
            if !buf.is_empty() {
                let _ = tx.send(Ok(buf));
            }
            return;
        }
        let cut = memchr::memrchr(b'\n', &buf).map_or(0, |p| p + 1);
        carry.extend_from_slice(&buf[cut..]);
        buf.truncate(cut);
        if tx.send(Ok(buf)).is_err() {
            return; // the decoder stopped
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
            if all.len() + b.len() < text.len() {
                assert_eq!(b.last(), Some(&b'\n'));
            }
            all.extend_from_slice(&b);
        }
        assert_eq!(all, text);
    }
}
