//! Binary COPY values → Arrow builders, one column at a time. Values are
//! decoded from the wire bytes straight into the builders: nothing is
//! allocated per row.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, FixedSizeBinaryBuilder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field};

use super::types::{PgType, interval_fields};

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const EPOCH_DAYS: i32 = 10_957;
/// 0001-01-01 and 9999-12-31 23:59:59.999999 in µs since 1970 (clamped infinities).
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;
const MIN_DAYS: i32 = -719_162;
const MAX_DAYS: i32 = 2_932_896;

/// What a value cannot become.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    /// Fewer or more bytes than the type has.
    #[error("a {ty} value of {len} bytes (expected {expected})")]
    Length {
        /// Type.
        ty: &'static str,
        /// Bytes received.
        len: usize,
        /// Bytes expected.
        expected: &'static str,
    },
    /// A numeric that the column's decimal type cannot hold exactly.
    #[error(
        "numeric value {value} does not fit Decimal({precision}, {scale}) exactly; export the column with --numeric text (exact) or --numeric float"
    )]
    Numeric {
        /// The value, as text.
        value: String,
        /// Arrow precision.
        precision: u8,
        /// Arrow scale.
        scale: i8,
    },
    /// An infinite date or timestamp under `infinity: error`.
    #[error(
        "{value} {ty} has no Parquet value; choose --infinity null or --infinity clamp (0001-01-01 / 9999-12-31)"
    )]
    Infinite {
        /// `infinity` or `-infinity`.
        value: &'static str,
        /// date or timestamp.
        ty: &'static str,
    },
    /// Text that is not UTF-8 (SQL_ASCII databases).
    #[error("text that is not valid UTF-8")]
    Utf8,
    /// An array with another number of dimensions than its column declares.
    #[error(
        "an array of {got} dimensions in a column declared with {want} (PostgreSQL does not enforce declared dimensions, and CREATE TABLE AS drops them); declare the column's dimensions (e.g. ALTER TABLE … ALTER COLUMN … TYPE integer[][]), or export a view that casts the column to text"
    )]
    Dimensions {
        /// Dimensions of the value.
        got: usize,
        /// Dimensions of the column.
        want: usize,
    },
    /// A composite value with the wrong number of fields.
    #[error("a composite value of {got} fields (the type has {want})")]
    Fields {
        /// Fields in the value.
        got: usize,
        /// Fields of the type.
        want: usize,
    },
}

/// What to do with `±infinity` dates and timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Infinity {
    /// Fail, naming table, column and value.
    #[default]
    Error,
    /// Null.
    Null,
    /// 0001-01-01 / 9999-12-31 23:59:59.999999.
    Clamp,
}

/// One column's builder.
pub enum Column {
    /// boolean
    Bool(BooleanBuilder),
    /// smallint
    I16(Int16Builder),
    /// integer
    I32(Int32Builder),
    /// bigint, oid
    I64(Int64Builder, bool),
    /// real
    F32(Float32Builder),
    /// double
    F64(Float64Builder),
    /// numeric
    Decimal(Decimal128Builder, u8, i8),
    /// text and everything read as text; `u8` is the bytes to skip (jsonb's version)
    Text(StringBuilder, usize),
    /// bytea
    Bytes(BinaryBuilder),
    /// uuid
    Uuid(FixedSizeBinaryBuilder),
    /// date
    Date(Date32Builder),
    /// timestamp(tz)
    Timestamp(TimestampMicrosecondBuilder),
    /// time
    Time(Time64MicrosecondBuilder),
    /// interval
    Interval(Box<Interval>),
    /// arrays
    List(Box<List>),
    /// composites
    Struct(Composite),
}

/// An interval column.
pub struct Interval {
    months: Int32Builder,
    days: Int32Builder,
    micros: Int64Builder,
    nulls: NullBufferBuilder,
}

/// One level of an array column.
pub struct List {
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    child: Column,
    item: Arc<Field>,
    /// Levels below this one (0: the child holds the elements).
    depth: usize,
}

/// A composite column.
pub struct Composite {
    fields: arrow_schema::Fields,
    children: Vec<Column>,
    nulls: NullBufferBuilder,
}

fn be<const N: usize>(
    b: &[u8],
    ty: &'static str,
    expected: &'static str,
) -> Result<[u8; N], ValueError> {
    b.try_into().map_err(|_| ValueError::Length {
        ty,
        len: b.len(),
        expected,
    })
}

impl Column {
    /// An empty builder for `ty`, sized for `rows` rows.
    pub fn new(ty: &PgType, rows: usize) -> Column {
        match ty {
            PgType::Bool => Column::Bool(BooleanBuilder::with_capacity(rows)),
            PgType::Int2 => Column::I16(Int16Builder::with_capacity(rows)),
            PgType::Int4 => Column::I32(Int32Builder::with_capacity(rows)),
            PgType::Int8 => Column::I64(Int64Builder::with_capacity(rows), false),
            PgType::Oid => Column::I64(Int64Builder::with_capacity(rows), true),
            PgType::Float4 => Column::F32(Float32Builder::with_capacity(rows)),
            PgType::Float8 => Column::F64(Float64Builder::with_capacity(rows)),
            PgType::Numeric { precision, scale } => Column::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_data_type(DataType::Decimal128(*precision, *scale)),
                *precision,
                *scale,
            ),
            PgType::Text | PgType::Json => {
                Column::Text(StringBuilder::with_capacity(rows, rows * 16), 0)
            }
            PgType::Jsonb => Column::Text(StringBuilder::with_capacity(rows, rows * 16), 1),
            PgType::Bytea => Column::Bytes(BinaryBuilder::with_capacity(rows, rows * 16)),
            PgType::Uuid => Column::Uuid(FixedSizeBinaryBuilder::with_capacity(rows, 16)),
            PgType::Date => Column::Date(Date32Builder::with_capacity(rows)),
            PgType::Timestamp => {
                Column::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            PgType::TimestampTz => Column::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            PgType::Time => Column::Time(Time64MicrosecondBuilder::with_capacity(rows)),
            PgType::Interval => Column::Interval(Box::new(Interval {
                months: Int32Builder::with_capacity(rows),
                days: Int32Builder::with_capacity(rows),
                micros: Int64Builder::with_capacity(rows),
                nulls: NullBufferBuilder::new(rows),
            })),
            PgType::Array { elem, dims } => Column::List(Box::new(List::new(elem, *dims, rows))),
            PgType::Composite(fields) => Column::Struct(Composite {
                fields: fields.iter().map(|(n, t)| t.field(n)).collect(),
                children: fields.iter().map(|(_, t)| Column::new(t, rows)).collect(),
                nulls: NullBufferBuilder::new(rows),
            }),
        }
    }

    /// A NULL.
    pub fn append_null(&mut self) {
        match self {
            Column::Bool(b) => b.append_null(),
            Column::I16(b) => b.append_null(),
            Column::I32(b) => b.append_null(),
            Column::I64(b, _) => b.append_null(),
            Column::F32(b) => b.append_null(),
            Column::F64(b) => b.append_null(),
            Column::Decimal(b, ..) => b.append_null(),
            Column::Text(b, _) => b.append_null(),
            Column::Bytes(b) => b.append_null(),
            Column::Uuid(b) => b.append_null(),
            Column::Date(b) => b.append_null(),
            Column::Timestamp(b) => b.append_null(),
            Column::Time(b) => b.append_null(),
            Column::Interval(i) => {
                i.months.append_value(0);
                i.days.append_value(0);
                i.micros.append_value(0);
                i.nulls.append_null();
            }
            Column::List(l) => {
                l.offsets.push(*l.offsets.last().unwrap_or(&0));
                l.nulls.append_null();
            }
            Column::Struct(s) => {
                for c in &mut s.children {
                    c.append_null();
                }
                s.nulls.append_null();
            }
        }
    }

    /// A value in PostgreSQL's binary format.
    pub fn append(&mut self, v: &[u8], inf: Infinity) -> Result<(), ValueError> {
        match self {
            Column::Bool(b) => b.append_value(be::<1>(v, "boolean", "1")?[0] != 0),
            Column::I16(b) => b.append_value(i16::from_be_bytes(be(v, "smallint", "2")?)),
            Column::I32(b) => b.append_value(i32::from_be_bytes(be(v, "integer", "4")?)),
            Column::I64(b, true) => b.append_value(u32::from_be_bytes(be(v, "oid", "4")?).into()),
            Column::I64(b, false) => b.append_value(i64::from_be_bytes(be(v, "bigint", "8")?)),
            Column::F32(b) => b.append_value(f32::from_be_bytes(be(v, "real", "4")?)),
            Column::F64(b) => b.append_value(f64::from_be_bytes(be(v, "double", "8")?)),
            Column::Decimal(b, p, s) => b.append_value(super::numeric::to_i128(v, *p, *s)?),
            Column::Text(b, skip) => {
                let t = v.get(*skip..).unwrap_or_default();
                b.append_value(simdutf8::basic::from_utf8(t).map_err(|_| ValueError::Utf8)?)
            }
            Column::Bytes(b) => b.append_value(v),
            Column::Uuid(b) => {
                b.append_value(be::<16>(v, "uuid", "16")?)
                    .map_err(|_| ValueError::Length {
                        ty: "uuid",
                        len: v.len(),
                        expected: "16",
                    })?
            }
            Column::Date(b) => match i32::from_be_bytes(be(v, "date", "4")?) {
                i32::MAX => infinite(b, inf, "infinity", "date", MAX_DAYS)?,
                i32::MIN => infinite(b, inf, "-infinity", "date", MIN_DAYS)?,
                d => b.append_value(d + EPOCH_DAYS),
            },
            Column::Timestamp(b) => match i64::from_be_bytes(be(v, "timestamp", "8")?) {
                i64::MAX => infinite(b, inf, "infinity", "timestamp", MAX_MICROS)?,
                i64::MIN => infinite(b, inf, "-infinity", "timestamp", MIN_MICROS)?,
                t => b.append_value(t.saturating_add(EPOCH_MICROS)),
            },
            Column::Time(b) => b.append_value(i64::from_be_bytes(be(v, "time", "8")?)),
            Column::Interval(i) => {
                let raw: [u8; 16] = be(v, "interval", "16")?;
                let (us, rest) = raw.split_at(8);
                let (days, months) = rest.split_at(4);
                i.micros
                    .append_value(i64::from_be_bytes(be(us, "interval", "16")?));
                i.days
                    .append_value(i32::from_be_bytes(be(days, "interval", "16")?));
                i.months
                    .append_value(i32::from_be_bytes(be(months, "interval", "16")?));
                i.nulls.append_non_null();
            }
            Column::List(l) => l.append(v, inf)?,
            Column::Struct(s) => s.append(v, inf)?,
        }
        Ok(())
    }

    /// The finished column.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Bool(b) => Arc::new(b.finish()),
            Column::I16(b) => Arc::new(b.finish()),
            Column::I32(b) => Arc::new(b.finish()),
            Column::I64(b, _) => Arc::new(b.finish()),
            Column::F32(b) => Arc::new(b.finish()),
            Column::F64(b) => Arc::new(b.finish()),
            Column::Decimal(b, ..) => Arc::new(b.finish()),
            Column::Text(b, _) => Arc::new(b.finish()),
            Column::Bytes(b) => Arc::new(b.finish()),
            Column::Uuid(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Timestamp(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
            Column::Interval(i) => Arc::new(StructArray::new(
                interval_fields(),
                vec![
                    Arc::new(i.months.finish()),
                    Arc::new(i.days.finish()),
                    Arc::new(i.micros.finish()),
                ],
                i.nulls.finish(),
            )),
            Column::List(l) => l.finish(),
            Column::Struct(s) => Arc::new(StructArray::new(
                s.fields.clone(),
                s.children.iter_mut().map(Column::finish).collect(),
                s.nulls.finish(),
            )),
        }
    }
}

fn infinite<T: arrow_array::ArrowPrimitiveType>(
    b: &mut arrow_array::builder::PrimitiveBuilder<T>,
    inf: Infinity,
    value: &'static str,
    ty: &'static str,
    clamp: T::Native,
) -> Result<(), ValueError> {
    match inf {
        Infinity::Error => return Err(ValueError::Infinite { value, ty }),
        Infinity::Null => b.append_null(),
        Infinity::Clamp => b.append_value(clamp),
    }
    Ok(())
}

/// Reads `n` big-endian bytes at `*at`, moving on.
fn take<'a>(
    v: &'a [u8],
    at: &mut usize,
    n: usize,
    ty: &'static str,
) -> Result<&'a [u8], ValueError> {
    let s = v.get(*at..*at + n).ok_or(ValueError::Length {
        ty,
        len: v.len(),
        expected: "more",
    })?;
    *at += n;
    Ok(s)
}

fn int32(v: &[u8], at: &mut usize, ty: &'static str) -> Result<i32, ValueError> {
    Ok(i32::from_be_bytes(be(take(v, at, 4, ty)?, ty, "4")?))
}

impl List {
    fn new(elem: &PgType, dims: usize, rows: usize) -> List {
        let depth = dims.max(1) - 1;
        let (child, item) = match depth {
            0 => (Column::new(elem, rows), elem.field("item")),
            _ => {
                let inner = List::new(elem, depth, rows);
                let dt = DataType::List(inner.item.clone());
                (Column::List(Box::new(inner)), Field::new("item", dt, true))
            }
        };
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        List {
            offsets,
            nulls: NullBufferBuilder::new(rows),
            child,
            item: Arc::new(item),
            depth,
        }
    }

    /// An array value: `ndim`, has-null flag, element oid, then per dimension
    /// its size and lower bound, then the elements in row-major order.
    fn append(&mut self, v: &[u8], inf: Infinity) -> Result<(), ValueError> {
        let mut at = 0;
        let ndim = int32(v, &mut at, "array")?.max(0) as usize;
        let _flags = int32(v, &mut at, "array")?;
        let _oid = int32(v, &mut at, "array")?;
        if ndim == 0 {
            // '{}' has no dimensions at all
            self.offsets.push(*self.offsets.last().unwrap_or(&0));
            self.nulls.append_non_null();
            return Ok(());
        }
        if ndim != self.depth + 1 {
            return Err(ValueError::Dimensions {
                got: ndim,
                want: self.depth + 1,
            });
        }
        let mut sizes = [0usize; 6];
        let mut elements = 1usize;
        for s in sizes.iter_mut().take(ndim) {
            *s = int32(v, &mut at, "array")?.max(0) as usize;
            let _lower = int32(v, &mut at, "array")?;
            elements = elements.saturating_mul(*s);
        }
        // every element takes at least its 4-byte length: a header that
        // promises more (or a zero-sized dimension, which PostgreSQL never
        // sends) is malformed, and must not make us build that many lists
        if sizes[..ndim].contains(&0) || elements > (v.len() - at) / 4 {
            return Err(ValueError::Length {
                ty: "array",
                len: v.len(),
                expected: "4 bytes or more per element its dimensions promise",
            });
        }
        self.fill(&sizes[..ndim], v, &mut at, inf)
    }

    fn fill(
        &mut self,
        sizes: &[usize],
        v: &[u8],
        at: &mut usize,
        inf: Infinity,
    ) -> Result<(), ValueError> {
        for _ in 0..sizes[0] {
            match &mut self.child {
                Column::List(inner) if sizes.len() > 1 => inner.fill(&sizes[1..], v, at, inf)?,
                child => match int32(v, at, "array")? {
                    -1 => child.append_null(),
                    n => child.append(take(v, at, n.max(0) as usize, "array")?, inf)?,
                },
            }
        }
        let len = match &self.child {
            Column::List(inner) => inner.offsets.len() - 1,
            c => c.len(),
        };
        self.offsets.push(len as i32);
        self.nulls.append_non_null();
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let values = self.child.finish();
        Arc::new(ListArray::new(
            self.item.clone(),
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            values,
            self.nulls.finish(),
        ))
    }
}

impl Composite {
    /// A record value: the field count, then per field its type oid, length
    /// and bytes.
    fn append(&mut self, v: &[u8], inf: Infinity) -> Result<(), ValueError> {
        let mut at = 0;
        let n = int32(v, &mut at, "record")?.max(0) as usize;
        if n != self.children.len() {
            return Err(ValueError::Fields {
                got: n,
                want: self.children.len(),
            });
        }
        for c in &mut self.children {
            let _oid = int32(v, &mut at, "record")?;
            match int32(v, &mut at, "record")? {
                -1 => c.append_null(),
                len => c.append(take(v, &mut at, len.max(0) as usize, "record")?, inf)?,
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }
}

impl Column {
    /// Values so far.
    pub fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Column::Bool(b) => b.len(),
            Column::I16(b) => b.len(),
            Column::I32(b) => b.len(),
            Column::I64(b, _) => b.len(),
            Column::F32(b) => b.len(),
            Column::F64(b) => b.len(),
            Column::Decimal(b, ..) => b.len(),
            Column::Text(b, _) => b.len(),
            Column::Bytes(b) => b.len(),
            Column::Uuid(b) => b.len(),
            Column::Date(b) => b.len(),
            Column::Timestamp(b) => b.len(),
            Column::Time(b) => b.len(),
            Column::Interval(i) => i.nulls.len(),
            Column::List(l) => l.offsets.len() - 1,
            Column::Struct(s) => s.nulls.len(),
        }
    }

    /// True before the first value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Int32Type, TimestampMicrosecondType};

    use super::*;

    fn array_1d(elems: &[Option<i32>]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(1i32.to_be_bytes()); // ndim
        v.extend(1i32.to_be_bytes()); // has nulls
        v.extend(23i32.to_be_bytes()); // int4
        v.extend((elems.len() as i32).to_be_bytes());
        v.extend(1i32.to_be_bytes()); // lower bound
        for e in elems {
            match e {
                None => v.extend((-1i32).to_be_bytes()),
                Some(x) => {
                    v.extend(4i32.to_be_bytes());
                    v.extend(x.to_be_bytes());
                }
            }
        }
        v
    }

    #[test]
    fn arrays_keep_null_elements_and_empty_arrays() {
        let ty = PgType::Array {
            elem: Box::new(PgType::Int4),
            dims: 1,
        };
        let mut c = Column::new(&ty, 4);
        c.append(&array_1d(&[Some(1), None, Some(3)]), Infinity::Error)
            .unwrap();
        c.append_null();
        // '{}': no dimensions
        let mut empty = Vec::new();
        for x in [0i32, 0, 23] {
            empty.extend(x.to_be_bytes());
        }
        c.append(&empty, Infinity::Error).unwrap();
        let a = c.finish();
        let l = a.as_list::<i32>();
        assert_eq!(l.len(), 3);
        let first = l.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            vec![Some(1), None, Some(3)]
        );
        assert!(l.is_null(1));
        assert!(l.is_valid(2) && l.value(2).is_empty());
        assert_eq!(a.data_type(), &ty.arrow());
    }

    #[test]
    fn two_dimensional_arrays_become_lists_of_lists() {
        let ty = PgType::Array {
            elem: Box::new(PgType::Int4),
            dims: 2,
        };
        let mut v = Vec::new();
        for x in [2i32, 0, 23, 2, 1, 3, 1] {
            v.extend(x.to_be_bytes());
        }
        for x in 1..=6i32 {
            v.extend(4i32.to_be_bytes());
            v.extend(x.to_be_bytes());
        }
        let mut c = Column::new(&ty, 1);
        c.append(&v, Infinity::Error).unwrap();
        // a 1-D value in a 2-D column is refused, not flattened
        let e = c
            .append(&array_1d(&[Some(1)]), Infinity::Error)
            .unwrap_err();
        assert_eq!(e, ValueError::Dimensions { got: 1, want: 2 });
        let a = c.finish();
        let outer = a.as_list::<i32>();
        let rows = outer.value(0);
        let rows = rows.as_list::<i32>();
        assert_eq!(rows.len(), 2);
        let second = rows.value(1);
        assert_eq!(
            second.as_primitive::<Int32Type>().values().to_vec(),
            vec![4, 5, 6]
        );
    }

    #[test]
    fn dates_and_timestamps_move_to_the_unix_epoch_and_infinity_is_a_choice() {
        let mut d = Column::new(&PgType::Date, 2);
        d.append(&0i32.to_be_bytes(), Infinity::Error).unwrap();
        let e = d
            .append(&i32::MAX.to_be_bytes(), Infinity::Error)
            .unwrap_err();
        assert!(e.to_string().contains("infinity date"), "{e}");
        d.append(&i32::MIN.to_be_bytes(), Infinity::Clamp).unwrap();
        d.append(&i32::MAX.to_be_bytes(), Infinity::Null).unwrap();
        let a = d.finish();
        let a = a.as_primitive::<Date32Type>();
        assert_eq!(a.value(0), 10_957);
        assert_eq!(a.value(1), MIN_DAYS);
        assert!(a.is_null(2));
        let mut t = Column::new(&PgType::TimestampTz, 1);
        t.append(&1i64.to_be_bytes(), Infinity::Error).unwrap();
        let a = t.finish();
        assert_eq!(
            a.as_primitive::<TimestampMicrosecondType>().value(0),
            EPOCH_MICROS + 1
        );
        assert_eq!(a.data_type(), &PgType::TimestampTz.arrow());
    }

    #[test]
    fn composites_and_intervals() {
        let ty = PgType::Composite(vec![("a".into(), PgType::Int4), ("b".into(), PgType::Text)]);
        let mut v = Vec::new();
        v.extend(2i32.to_be_bytes());
        v.extend(23i32.to_be_bytes());
        v.extend(4i32.to_be_bytes());
        v.extend(7i32.to_be_bytes());
        v.extend(25i32.to_be_bytes());
        v.extend((-1i32).to_be_bytes());
        let mut c = Column::new(&ty, 1);
        c.append(&v, Infinity::Error).unwrap();
        let a = c.finish();
        let s = a.as_struct();
        assert_eq!(s.column(0).as_primitive::<Int32Type>().value(0), 7);
        assert!(s.column(1).is_null(0));

        let mut i = Column::new(&PgType::Interval, 1);
        let mut v = Vec::new();
        v.extend(1_500_000i64.to_be_bytes());
        v.extend(3i32.to_be_bytes());
        v.extend(14i32.to_be_bytes());
        i.append(&v, Infinity::Error).unwrap();
        let a = i.finish();
        let s = a.as_struct();
        assert_eq!(s.column(0).as_primitive::<Int32Type>().value(0), 14);
        assert_eq!(s.column(1).as_primitive::<Int32Type>().value(0), 3);
    }

    #[test]
    fn array_headers_that_promise_more_than_they_hold_are_refused() {
        // found by the copy_decoder fuzz target: dimensions [2^31 - 1, 0] made the decoder
        // build two billion empty lists from a 28-byte value
        let ty = PgType::Array {
            elem: Box::new(PgType::Int4),
            dims: 2,
        };
        let mut v = Vec::new();
        for x in [2i32, 0, 23, i32::MAX, 1, 0, 1] {
            v.extend(x.to_be_bytes());
        }
        let mut c = Column::new(&ty, 1);
        assert!(c.append(&v, Infinity::Error).is_err());
        let mut v = Vec::new();
        for x in [1i32, 0, 23, 1000, 1] {
            v.extend(x.to_be_bytes());
        }
        assert!(c.append(&v, Infinity::Error).is_err());
    }

    #[test]
    fn short_values_are_errors_not_panics() {
        for ty in [PgType::Int8, PgType::Uuid, PgType::Interval, PgType::Date] {
            let mut c = Column::new(&ty, 1);
            assert!(c.append(&[1, 2], Infinity::Error).is_err(), "{ty:?}");
        }
        let mut c = Column::new(
            &PgType::Array {
                elem: Box::new(PgType::Int4),
                dims: 1,
            },
            1,
        );
        let mut v = array_1d(&[Some(1)]);
        v.truncate(v.len() - 2);
        assert!(c.append(&v, Infinity::Error).is_err());
    }
}
