//! Which fields of a JSON object the decoder has seen: duplicate keys are
//! errors, and missing fields get nulls (or fail when required).

/// Which fields of an object were decoded: bits for up to 64 fields, else
/// the columns' lengths tell.
pub(crate) enum Seen {
    Bits { seen: u64, all: u64 },
    Columns { n: usize },
}

impl Seen {
    /// Nothing seen yet, of `n` fields.
    pub(crate) fn new(n: usize) -> Self {
        match n {
            0..64 => Seen::Bits {
                seen: 0,
                all: (1 << n) - 1,
            },
            64 => Seen::Bits {
                seen: 0,
                all: u64::MAX,
            },
            _ => Seen::Columns { n },
        }
    }

    /// Marks field `i`; false if it was already seen. `unseen`: whether its
    /// column has no value for this row yet (asked beyond 64 fields).
    #[inline]
    pub(crate) fn insert(&mut self, i: usize, unseen: impl FnOnce() -> bool) -> bool {
        match self {
            Seen::Bits { seen, .. } => {
                let bit = 1 << i;
                let new = *seen & bit == 0;
                *seen |= bit;
                new
            }
            Seen::Columns { .. } => unseen(),
        }
    }

    /// The fields that may lack a value, in order: exactly the unseen ones
    /// with bits, every field beyond 64.
    pub(crate) fn maybe_missing(&self) -> impl Iterator<Item = usize> + use<> {
        let (mut bits, n) = match *self {
            Seen::Bits { seen, all } => (all & !seen, 0),
            Seen::Columns { n } => (0, n),
        };
        let from_bits = std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                i
            })
        });
        from_bits.chain(0..n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_and_missing_fields_at_every_width() {
        for n in [1, 2, 63, 64, 65, 130] {
            let mut lens = vec![0usize; n];
            let mut seen = Seen::new(n);
            for i in (0..n).step_by(2) {
                assert!(seen.insert(i, || lens[i] == 0), "{n}: first {i}");
                lens[i] = 1;
            }
            assert!(!seen.insert(0, || lens[0] == 0), "{n}: twice");
            let missing: Vec<usize> = seen.maybe_missing().filter(|i| lens[*i] == 0).collect();
            assert_eq!(missing, (1..n).step_by(2).collect::<Vec<_>>(), "{n}");
            if n <= 64 {
                // bits name exactly the unseen fields, in order
                assert_eq!(seen.maybe_missing().collect::<Vec<_>>(), missing, "{n}");
            }
        }
    }
}
