//! The binary COPY stream → RecordBatches of bounded size. The stream is a
//! header (`PGCOPY\n\xff\r\n\0`, flags, an extension area), tuples (a field
//! count, then per field a length and its bytes, -1 for NULL) and a trailer
//! (a field count of -1). Chunks may end anywhere: an incomplete tuple waits
//! for the next chunk.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::decode::{Column, Infinity, ValueError};
use super::types::PgType;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Where a batch is cut.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Rows per batch.
    pub rows: usize,
    /// Wire bytes per batch (so wide and TOAST-heavy rows stay bounded).
    pub bytes: usize,
}

/// A COPY stream inlet cannot read.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Not binary COPY.
    #[error("the COPY stream does not start with the binary COPY signature")]
    Signature,
    /// A tuple with another number of fields than the query selects.
    #[error("a row of {got} fields where the query selects {want}")]
    FieldCount {
        /// Fields in the row.
        got: usize,
        /// Columns selected.
        want: usize,
    },
    /// A value that cannot become its Arrow type.
    #[error("column '{column}': {source}")]
    Value {
        /// The column.
        column: String,
        /// Why.
        #[source]
        source: ValueError,
    },
    /// The stream ended inside a tuple or without its trailer.
    #[error("the COPY stream ended before its end marker ({0} bytes left over)")]
    Truncated(usize),
    /// Arrow refused the columns (a bug if it happens).
    #[error("building the batch: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Decodes one COPY stream.
pub struct CopyDecoder {
    schema: SchemaRef,
    types: Vec<PgType>,
    columns: Vec<Column>,
    carry: Vec<u8>,
    header: bool,
    ended: bool,
    rows: usize,
    bytes: usize,
    limits: BatchLimits,
    infinity: Infinity,
}

impl CopyDecoder {
    /// A decoder for rows of `types` (in `schema`'s order).
    pub fn new(
        schema: SchemaRef,
        types: Vec<PgType>,
        limits: BatchLimits,
        infinity: Infinity,
    ) -> Self {
        let columns = types
            .iter()
            .map(|t| Column::new(t, limits.rows.min(8192)))
            .collect();
        CopyDecoder {
            schema,
            types,
            columns,
            carry: Vec::new(),
            header: false,
            ended: false,
            rows: 0,
            bytes: 0,
            limits,
            infinity,
        }
    }

    /// Decodes a chunk; full batches are pushed to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<RecordBatch>) -> Result<(), CopyError> {
        if self.carry.is_empty() {
            let used = self.parse(chunk, out)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            self.carry.extend_from_slice(chunk);
            let carry = std::mem::take(&mut self.carry);
            let used = self.parse(&carry, out);
            self.carry = carry;
            self.carry.drain(..used?);
        }
        Ok(())
    }

    /// The end of the stream: the last batch, if it has rows.
    pub fn finish(&mut self) -> Result<Option<RecordBatch>, CopyError> {
        if !self.ended || !self.carry.is_empty() {
            return Err(CopyError::Truncated(self.carry.len()));
        }
        match self.rows {
            0 => Ok(None),
            _ => self.cut().map(Some),
        }
    }

    /// Rows decoded into the open batch.
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    fn cut(&mut self) -> Result<RecordBatch, CopyError> {
        let arrays = self.columns.iter_mut().map(Column::finish).collect();
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), arrays)?)
    }

    /// Decodes whole tuples from `buf`; returns the bytes used.
    fn parse(&mut self, buf: &[u8], out: &mut Vec<RecordBatch>) -> Result<usize, CopyError> {
        let mut at = 0;
        if !self.header {
            // signature, flags, extension length, extension
            if buf.len() < SIGNATURE.len() + 8 {
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(CopyError::Signature);
            }
            let p = SIGNATURE.len() + 4;
            let ext = u32::from_be_bytes([buf[p], buf[p + 1], buf[p + 2], buf[p + 3]]) as usize;
            if buf.len() < p + 4 + ext {
                return Ok(0);
            }
            at = p + 4 + ext;
            self.header = true;
        }
        while !self.ended {
            let Some(end) = tuple_end(&buf[at..]) else {
                break;
            };
            let count = i16::from_be_bytes([buf[at], buf[at + 1]]);
            if count == -1 {
                self.ended = true;
                at += 2;
                break;
            }
            self.row(&buf[at + 2..at + end], count as usize)?;
            self.bytes += end;
            at += end;
            if self.rows >= self.limits.rows || self.bytes >= self.limits.bytes {
                out.push(self.cut()?);
            }
        }
        if self.ended && at < buf.len() {
            return Err(CopyError::Truncated(buf.len() - at));
        }
        Ok(at)
    }

    fn row(&mut self, mut t: &[u8], count: usize) -> Result<(), CopyError> {
        if count != self.columns.len() {
            return Err(CopyError::FieldCount {
                got: count,
                want: self.columns.len(),
            });
        }
        for (i, col) in self.columns.iter_mut().enumerate() {
            // tuple_end checked every length against the tuple
            let len = i32::from_be_bytes([t[0], t[1], t[2], t[3]]);
            t = &t[4..];
            if len < 0 {
                col.append_null();
                continue;
            }
            let (v, rest) = t.split_at(len as usize);
            t = rest;
            col.append(v, self.infinity)
                .map_err(|source| CopyError::Value {
                    column: self.schema.field(i).name().clone(),
                    source,
                })?;
        }
        self.rows += 1;
        Ok(())
    }

    /// The PostgreSQL types of the columns.
    pub fn types(&self) -> &[PgType] {
        &self.types
    }
}

/// The length of the complete tuple (or trailer) at the start of `b`, or
/// `None` when it continues in the next chunk.
fn tuple_end(b: &[u8]) -> Option<usize> {
    let count = i16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let mut at = 2;
    for _ in 0..count.max(0) {
        let l = b.get(at..at + 4)?;
        let len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        at += 4 + len.max(0) as usize;
        if at > b.len() {
            return None;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;
    use arrow_schema::Schema;

    use super::*;

    fn stream(rows: &[(Option<i32>, Option<&str>)]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend(0u32.to_be_bytes());
        v.extend(0u32.to_be_bytes());
        for (a, b) in rows {
            v.extend(2i16.to_be_bytes());
            match a {
                Some(a) => {
                    v.extend(4i32.to_be_bytes());
                    v.extend(a.to_be_bytes());
                }
                None => v.extend((-1i32).to_be_bytes()),
            }
            match b {
                Some(b) => {
                    v.extend((b.len() as i32).to_be_bytes());
                    v.extend(b.as_bytes());
                }
                None => v.extend((-1i32).to_be_bytes()),
            }
        }
        v.extend((-1i16).to_be_bytes());
        v
    }

    fn decoder(rows: usize) -> CopyDecoder {
        let types = vec![PgType::Int4, PgType::Text];
        let schema = Arc::new(Schema::new(vec![types[0].field("a"), types[1].field("b")]));
        CopyDecoder::new(
            schema,
            types,
            BatchLimits {
                rows,
                bytes: 1 << 20,
            },
            Infinity::Error,
        )
    }

    #[test]
    fn chunks_may_end_anywhere() {
        let rows: Vec<(Option<i32>, Option<&str>)> = (0..50)
            .map(|i| (if i % 7 == 0 { None } else { Some(i) }, Some("héllo")))
            .collect();
        let s = stream(&rows);
        for step in [1, 3, 7, 64, s.len()] {
            let mut d = decoder(16);
            let mut out = Vec::new();
            for c in s.chunks(step) {
                d.push(c, &mut out).unwrap();
            }
            out.extend(d.finish().unwrap());
            assert_eq!(
                out.iter().map(|b| b.num_rows()).collect::<Vec<_>>(),
                [16, 16, 16, 2]
            );
            let first = out[0].column(0).as_primitive::<Int32Type>();
            assert!(first.is_null(0));
            assert_eq!(first.value(1), 1);
            assert_eq!(out[3].column(1).as_string::<i32>().value(1), "héllo");
        }
    }

    #[test]
    fn a_stream_cut_short_is_an_error() {
        let s = stream(&[(Some(1), Some("x"))]);
        let mut d = decoder(16);
        let mut out = Vec::new();
        d.push(&s[..s.len() - 3], &mut out).unwrap();
        assert!(matches!(d.finish(), Err(CopyError::Truncated(_))));
        let mut d = decoder(16);
        assert!(matches!(
            d.push(b"not a copy stream at all", &mut out),
            Err(CopyError::Signature)
        ));
    }

    #[test]
    fn bad_values_name_their_column() {
        let mut s = stream(&[]);
        s.truncate(s.len() - 2);
        s.extend(2i16.to_be_bytes());
        s.extend(2i32.to_be_bytes()); // an integer of 2 bytes
        s.extend([0, 1]);
        s.extend((-1i32).to_be_bytes());
        let mut d = decoder(16);
        let e = d.push(&s, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("column 'a'"), "{e}");
    }
}
