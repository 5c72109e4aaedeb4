//! A growable bitmap for validity and boolean columns.

use arrow_buffer::{BooleanBuffer, Buffer};

/// A growable bitmap in Arrow's bit order. Appending a bit is an OR into the
/// last word (Arrow's builder makes a call to grow its buffer for every bit,
/// which showed up at several per cent of decoding).
#[derive(Debug, Default)]
pub struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    pub(crate) fn with_capacity(bits: usize) -> Self {
        Bits {
            words: Vec::with_capacity(bits.div_ceil(64)),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends one bit.
    #[inline(always)]
    pub(crate) fn push(&mut self, bit: bool) {
        let (word, at) = (self.len / 64, self.len % 64);
        if at == 0 {
            self.words.push(0);
        }
        self.words[word] |= u64::from(bit) << at;
        self.len += 1;
    }

    pub(crate) fn push_n(&mut self, mut n: usize, bit: bool) {
        while n > 0 && !self.len.is_multiple_of(64) {
            self.push(bit);
            n -= 1;
        }
        let whole = n / 64;
        let fill = if bit { u64::MAX } else { 0 };
        self.words.extend(std::iter::repeat_n(fill, whole));
        self.len += whole * 64;
        for _ in 0..n % 64 {
            self.push(bit);
        }
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.words.truncate(len.div_ceil(64));
        if let Some(last) = self.words.last_mut().filter(|_| !len.is_multiple_of(64)) {
            *last &= (1 << (len % 64)) - 1;
        }
        self.len = len;
    }

    /// The bits as an Arrow buffer; leaves the bitmap empty, sized for as
    /// many bits again.
    pub(crate) fn finish(&mut self) -> BooleanBuffer {
        let next = Bits::with_capacity(self.len + self.len / 8);
        std::mem::replace(self, next).into_buffer()
    }

    /// The bits as an Arrow buffer.
    pub(crate) fn into_buffer(self) -> BooleanBuffer {
        let mut words = self.words;
        // Arrow's bitmaps are little-endian bytes, bit 0 first
        words.iter_mut().for_each(|w| *w = w.to_le());
        BooleanBuffer::new(Buffer::from_vec(words), 0, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_follow_a_list_of_booleans() {
        // pushes, runs and rollbacks across word boundaries, checked against
        // a Vec<bool> and against what Arrow reads from the finished buffer
        let mut bits = Bits::default();
        let mut model: Vec<bool> = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for step in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0 => {
                    let n = (x >> 8) as usize % 150;
                    let bit = x & 1 << 20 != 0;
                    bits.push_n(n, bit);
                    model.extend(std::iter::repeat_n(bit, n));
                }
                1 => {
                    let len = model.len().saturating_sub((x >> 8) as usize % 70);
                    bits.truncate(len);
                    model.truncate(len);
                }
                _ => {
                    let bit = x & 1 << 30 != 0;
                    bits.push(bit);
                    model.push(bit);
                }
            }
            assert_eq!(bits.len(), model.len(), "step {step}");
            if let Some(i) = model.len().checked_sub(1) {
                assert_eq!(bits.get(i), model[i], "step {step}");
            }
        }
        let out = bits.finish();
        assert_eq!(out.iter().collect::<Vec<_>>(), model);
        assert_eq!(bits.len(), 0);
        bits.push(true);
        assert_eq!(bits.finish().iter().collect::<Vec<_>>(), vec![true]);
    }
}
