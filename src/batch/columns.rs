//! Growable column buffers that can be rolled back to a row count.
//!
//! A record is decoded field by field; when it turns out invalid half-way,
//! every column is truncated back to the row count before it. Arrow's own
//! builders cannot do that, so we keep plain vectors and hand them to Arrow
//! (without copying) when a chunk of the batch is cut.

use std::sync::Arc;

use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, Float64Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use arrow_array::{ArrayRef, BooleanArray, ListArray, PrimitiveArray, StringArray, StructArray};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer, i256};
use arrow_schema::{ArrowError, DataType, Field};

use super::bits::Bits;
use crate::schema::{FieldPlan, Kind};

/// Validity bits plus the count of nulls. The bits are only built once the
/// first null arrives: most columns of most batches have none, and then a
/// value costs a counter increment.
#[derive(Debug, Default)]
pub struct Validity {
    bits: Option<Bits>,
    len: usize,
    nulls: usize,
    /// Capacity for the bits of the next batch.
    hint: usize,
}

impl Validity {
    fn new() -> Self {
        Self::default()
    }

    /// Values (valid or not).
    fn len(&self) -> usize {
        self.len
    }

    /// Appends one validity bit.
    #[inline(always)]
    pub fn push(&mut self, valid: bool) {
        match &mut self.bits {
            None if valid => self.len += 1,
            Some(b) => {
                b.push(valid);
                self.len += 1;
                self.nulls += usize::from(!valid);
            }
            None => self.first_null(),
        }
    }

    #[cold]
    fn first_null(&mut self) {
        let mut b = Bits::with_capacity(self.hint.max(self.len + 1024));
        b.push_n(self.len, true);
        b.push(false);
        self.bits = Some(b);
        self.len += 1;
        self.nulls += 1;
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        if let Some(b) = &mut self.bits {
            if self.nulls > 0 {
                let dropped = self.len - len;
                let set = (len..self.len).filter(|i| b.get(*i)).count();
                self.nulls -= dropped - set;
            }
            b.truncate(len);
        }
        self.len = len;
    }

    fn finish(&mut self) -> Option<NullBuffer> {
        self.hint = self.len + self.len / 8;
        self.len = 0;
        let nulls = std::mem::take(&mut self.nulls);
        let bits = self.bits.take()?;
        (nulls > 0).then(|| NullBuffer::new(bits.into_buffer()))
    }
}

/// One column's buffered values.
#[derive(Debug)]
pub enum Column {
    /// Int64, Timestamp(µs), Time64(µs).
    I64(Vec<i64>, Validity),
    /// Date32.
    I32(Vec<i32>, Validity),
    /// Float64.
    F64(Vec<f64>, Validity),
    /// Decimal128.
    D128(Vec<i128>, Validity),
    /// Decimal256.
    D256(Vec<i256>, Validity),
    /// Boolean.
    Bool(Bits, Validity),
    /// Utf8 (strings and JSON text).
    Str {
        /// n+1 offsets into `data`.
        offsets: Vec<i32>,
        /// UTF-8 bytes.
        data: Vec<u8>,
        /// Validity.
        valid: Validity,
    },
    /// Struct: one child per field, all as long as the struct.
    Struct {
        /// Child columns.
        children: Vec<Column>,
        /// Validity.
        valid: Validity,
    },
    /// List: offsets into one child column.
    List {
        /// n+1 offsets into `child`.
        offsets: Vec<i32>,
        /// Item column.
        child: Box<Column>,
        /// Validity.
        valid: Validity,
    },
}

impl Column {
    /// An empty column for a field plan.
    pub fn for_plan(p: &FieldPlan) -> Column {
        Self::for_kind(&p.kind)
    }

    fn for_kind(k: &Kind) -> Column {
        let v = Validity::new;
        match k {
            Kind::Int64 | Kind::Timestamp | Kind::Time => Column::I64(Vec::new(), v()),
            Kind::Date => Column::I32(Vec::new(), v()),
            Kind::Float64 => Column::F64(Vec::new(), v()),
            Kind::Decimal { precision, .. } if *precision <= 38 => Column::D128(Vec::new(), v()),
            Kind::Decimal { .. } => Column::D256(Vec::new(), v()),
            Kind::Bool => Column::Bool(Bits::with_capacity(1024), v()),
            Kind::Utf8 | Kind::Json => Column::Str {
                offsets: vec![0],
                data: Vec::new(),
                valid: v(),
            },
            Kind::Struct(obj) => Column::Struct {
                children: obj.fields.iter().map(Column::for_plan).collect(),
                valid: v(),
            },
            Kind::List(item) => Column::List {
                offsets: vec![0],
                child: Box::new(Column::for_plan(item)),
                valid: v(),
            },
        }
    }

    /// Number of rows.
    #[inline]
    pub fn len(&self) -> usize {
        self.validity().len()
    }

    /// True when no rows are buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn validity(&self) -> &Validity {
        match self {
            Column::I64(_, v)
            | Column::I32(_, v)
            | Column::F64(_, v)
            | Column::D128(_, v)
            | Column::D256(_, v)
            | Column::Bool(_, v) => v,
            Column::Str { valid, .. }
            | Column::Struct { valid, .. }
            | Column::List { valid, .. } => valid,
        }
    }

    /// Appends a null (children of a struct get nulls too, to stay aligned).
    pub fn push_null(&mut self) {
        match self {
            Column::I64(d, v) => {
                d.push(0);
                v.push(false)
            }
            Column::I32(d, v) => {
                d.push(0);
                v.push(false)
            }
            Column::F64(d, v) => {
                d.push(0.0);
                v.push(false)
            }
            Column::D128(d, v) => {
                d.push(0);
                v.push(false)
            }
            Column::D256(d, v) => {
                d.push(i256::ZERO);
                v.push(false)
            }
            Column::Bool(d, v) => {
                d.push(false);
                v.push(false)
            }
            Column::Str { offsets, valid, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                valid.push(false)
            }
            Column::Struct { children, valid } => {
                children.iter_mut().for_each(Column::push_null);
                valid.push(false)
            }
            Column::List { offsets, valid, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                valid.push(false)
            }
        }
    }

    /// Marks a value just appended to the data of a struct or list as valid.
    pub fn push_valid(&mut self) {
        match self {
            Column::Struct { valid, .. } => valid.push(true),
            Column::List { valid, .. } => valid.push(true),
            _ => unreachable!("push_valid is only for nested columns"),
        }
    }

    /// Rolls back to `len` rows. Nested columns always recurse: a record
    /// that failed half-way through a struct or list has appended to the
    /// children without appending to the parent.
    pub fn truncate(&mut self, len: usize) {
        match self {
            Column::Struct { children, valid } => {
                children.iter_mut().for_each(|c| c.truncate(len));
                valid.truncate(len);
                return;
            }
            Column::List {
                offsets,
                child,
                valid,
            } => {
                offsets.truncate(len + 1);
                let end = offsets.last().copied().unwrap_or(0) as usize;
                child.truncate(end);
                valid.truncate(len);
                return;
            }
            _ => {}
        }
        if len >= self.len() {
            return;
        }
        match self {
            Column::I64(d, v) => {
                d.truncate(len);
                v.truncate(len)
            }
            Column::I32(d, v) => {
                d.truncate(len);
                v.truncate(len)
            }
            Column::F64(d, v) => {
                d.truncate(len);
                v.truncate(len)
            }
            Column::D128(d, v) => {
                d.truncate(len);
                v.truncate(len)
            }
            Column::D256(d, v) => {
                d.truncate(len);
                v.truncate(len)
            }
            Column::Bool(d, v) => {
                d.truncate(len);
                v.truncate(len)
            }
            Column::Str {
                offsets,
                data,
                valid,
            } => {
                offsets.truncate(len + 1);
                data.truncate(offsets[len] as usize);
                valid.truncate(len)
            }
            Column::Struct { .. } | Column::List { .. } => {}
        }
    }

    /// Bytes held (roughly), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Column::I64(d, _) => d.len() * 8,
            Column::I32(d, _) => d.len() * 4,
            Column::F64(d, _) => d.len() * 8,
            Column::D128(d, _) => d.len() * 16,
            Column::D256(d, _) => d.len() * 32,
            Column::Bool(d, _) => d.len() / 8,
            Column::Str { offsets, data, .. } => offsets.len() * 4 + data.len(),
            Column::Struct { children, .. } => children.iter().map(Column::heap_bytes).sum(),
            Column::List { offsets, child, .. } => offsets.len() * 4 + child.heap_bytes(),
        }
    }

    /// Hands the buffered values to Arrow as an array of `field`'s type and
    /// leaves the column empty.
    pub(crate) fn finish(&mut self, field: &Field) -> Result<ArrayRef, ArrowError> {
        let dt = field.data_type();
        Ok(match (self, dt) {
            (Column::I64(d, v), DataType::Int64) => {
                Arc::new(PrimitiveArray::<Int64Type>::new(take(d).into(), v.finish()))
            }
            (Column::I64(d, v), DataType::Timestamp(_, tz)) => Arc::new(
                PrimitiveArray::<TimestampMicrosecondType>::new(take(d).into(), v.finish())
                    .with_timezone_opt(tz.clone()),
            ),
            (Column::I64(d, v), DataType::Time64(_)) => Arc::new(PrimitiveArray::<
                Time64MicrosecondType,
            >::new(
                take(d).into(), v.finish()
            )),
            (Column::I32(d, v), _) => Arc::new(PrimitiveArray::<Date32Type>::new(
                take(d).into(),
                v.finish(),
            )),
            (Column::F64(d, v), _) => Arc::new(PrimitiveArray::<Float64Type>::new(
                take(d).into(),
                v.finish(),
            )),
            (Column::D128(d, v), DataType::Decimal128(p, s)) => Arc::new(
                PrimitiveArray::<Decimal128Type>::new(take(d).into(), v.finish())
                    .with_precision_and_scale(*p, *s)?,
            ),
            (Column::D256(d, v), DataType::Decimal256(p, s)) => Arc::new(
                PrimitiveArray::<Decimal256Type>::new(take(d).into(), v.finish())
                    .with_precision_and_scale(*p, *s)?,
            ),
            (Column::Bool(d, v), _) => Arc::new(BooleanArray::new(d.finish(), v.finish())),
            (
                Column::Str {
                    offsets,
                    data,
                    valid,
                },
                _,
            ) => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(take_offsets(offsets)));
                let data = Buffer::from_vec(take(data));
                debug_assert!(std::str::from_utf8(&data).is_ok());
                // SAFETY: only the crate's decoders fill a column that reaches
                // this (crate-private) method, through the crate-private
                // `push`/`push_from` entry points, whose callers pass input
                // lines already checked as UTF-8 (`load::Router::line`, the
                // decoding threads, BATCH files). Every value appended to
                // `data` is then valid UTF-8 on its own: a slice between ASCII
                // delimiters of such a line, or the output of
                // `scan::unescape_into`, which writes whole chars. Each offset
                // is `data.len()` right after a value was appended (values of
                // a failed record are truncated away with their offsets), so
                // offsets grow, end at `data.len()` and fall on char
                // boundaries. Checking again here cost ~8 % of decoding.
                Arc::new(unsafe { StringArray::new_unchecked(offsets, data, valid.finish()) })
            }
            (Column::Struct { children, valid }, DataType::Struct(fields)) => {
                let arrays = children
                    .iter_mut()
                    .zip(fields.iter())
                    .map(|(c, f)| c.finish(f))
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(
                    fields.clone(),
                    arrays,
                    valid.finish(),
                )?)
            }
            (
                Column::List {
                    offsets,
                    child,
                    valid,
                },
                DataType::List(item),
            ) => {
                let offs = take_offsets(offsets);
                let values = child.finish(item)?;
                Arc::new(ListArray::try_new(
                    item.clone(),
                    OffsetBuffer::new(ScalarBuffer::from(offs)),
                    values,
                    valid.finish(),
                )?)
            }
            (_, dt) => {
                return Err(ArrowError::SchemaError(format!(
                    "internal: column buffer does not match type {dt} of '{}'",
                    field.name()
                )));
            }
        })
    }
}

/// Takes the values and leaves an empty vector sized like this batch: the
/// next batch of a stream is about as large (flushes are size-bounded), so
/// it fills without repeated doubling and copying.
fn take<T>(v: &mut Vec<T>) -> Vec<T> {
    let hint = v.len() + v.len() / 8;
    std::mem::replace(v, Vec::with_capacity(hint))
}

/// [`take`] for offsets: the next batch starts with its leading 0.
fn take_offsets(v: &mut Vec<i32>) -> Vec<i32> {
    let offsets = take(v);
    v.push(0);
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;

    #[test]
    fn validity_bits_appear_with_the_first_null_and_go_with_a_rollback() {
        let mut v = Validity::new();
        for _ in 0..3 {
            v.push(true);
        }
        assert!(v.bits.is_none(), "no bits while every value is valid");
        v.push(false);
        v.push(true);
        v.truncate(3);
        assert_eq!((v.len(), v.nulls), (3, 0));
        assert!(v.finish().is_none(), "the null was rolled back");
        for i in 0..10 {
            v.push(i % 4 != 1);
        }
        let n = v.finish().unwrap();
        assert_eq!(n.len(), 10, "the next batch starts from zero");
        let valid: Vec<bool> = (0..10).map(|i| n.is_valid(i)).collect();
        assert_eq!(valid, (0..10).map(|i| i % 4 != 1).collect::<Vec<_>>());
    }

    #[test]
    fn truncate_rolls_back_children_of_a_half_decoded_struct() {
        let child = |name: &str| FieldPlan {
            name: name.into(),
            out_name: name.into(),
            kind: Kind::Utf8,
            null_ok: true,
            nullable: true,
            required: false,
            key: false,
            checks: Default::default(),
        };
        let plan = FieldPlan {
            kind: Kind::Struct(crate::schema::ObjectPlan::new(
                vec![child("a"), child("b")],
                false,
            )),
            ..child("s")
        };
        let mut col = Column::for_plan(&plan);
        // the first child got a value, then the record failed: the struct itself has no row
        let Column::Struct { children, .. } = &mut col else {
            panic!()
        };
        children[0].push_null();
        col.truncate(0);
        let Column::Struct { children, .. } = &col else {
            panic!()
        };
        assert!(children.iter().all(|c| c.is_empty()));
    }

    #[test]
    fn truncate_rolls_back_strings_and_lists() {
        let item = FieldPlan {
            name: "item".into(),
            out_name: "item".into(),
            kind: Kind::Utf8,
            null_ok: false,
            nullable: false,
            required: false,
            key: false,
            checks: Default::default(),
        };
        let plan = FieldPlan {
            kind: Kind::List(Box::new(item)),
            name: "tags".into(),
            out_name: "tags".into(),
            null_ok: true,
            nullable: true,
            required: false,
            key: false,
            checks: Default::default(),
        };
        let mut col = Column::for_plan(&plan);
        let Column::List {
            offsets,
            child,
            valid,
        } = &mut col
        else {
            panic!()
        };
        let Column::Str {
            offsets: so,
            data,
            valid: sv,
        } = child.as_mut()
        else {
            panic!()
        };
        data.extend_from_slice(b"ab");
        so.push(2);
        sv.push(true);
        offsets.push(1);
        valid.push(true);
        col.push_null();
        assert_eq!(col.len(), 2);
        col.truncate(1);
        assert_eq!(col.len(), 1);
        let arr = col.finish(&plan.arrow_field()).unwrap();
        assert_eq!(arr.len(), 1);
        assert_eq!(arr.null_count(), 0);
    }
}
