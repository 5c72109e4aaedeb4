//! PostgreSQL types → how inlet reads them (binary COPY, or the value's text
//! output) and the Arrow type they land as. Decided from the catalog alone,
//! never from data.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// Scale of a `numeric` column declared without precision, as Spark reads
/// them over JDBC: Decimal(38, 18).
pub const UNCONSTRAINED_SCALE: i8 = 18;

/// The widest Decimal128.
pub const MAX_PRECISION: u8 = 38;

/// How a value is decoded from binary COPY.
#[derive(Debug, Clone, PartialEq)]
pub enum PgType {
    /// boolean
    Bool,
    /// smallint
    Int2,
    /// integer
    Int4,
    /// bigint
    Int8,
    /// oid (unsigned 32-bit, kept as Int64)
    Oid,
    /// real
    Float4,
    /// double precision
    Float8,
    /// numeric → Decimal128(precision, scale)
    Numeric {
        /// Arrow precision.
        precision: u8,
        /// Arrow scale.
        scale: i8,
    },
    /// Anything read as text: text types, enums, and every other type cast
    /// to `::text` in the query.
    Text,
    /// json: its text as PostgreSQL stores it.
    Json,
    /// jsonb: a version byte, then its text.
    Jsonb,
    /// bytea
    Bytea,
    /// uuid → FixedSizeBinary(16)
    Uuid,
    /// date → Date32
    Date,
    /// timestamp → Timestamp(µs)
    Timestamp,
    /// timestamptz → Timestamp(µs, UTC)
    TimestampTz,
    /// time → Time64(µs)
    Time,
    /// interval → Struct{months, days, microseconds}
    Interval,
    /// An array of `dims` dimensions → nested Lists.
    Array {
        /// Element type.
        elem: Box<PgType>,
        /// Dimensions (`attndims`, at least 1).
        dims: usize,
    },
    /// A composite (row) type → Struct.
    Composite(Vec<(String, PgType)>),
}

/// What the query selects for a column: the column itself, or a cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    /// Read as it is.
    None,
    /// `::text`
    Text,
    /// `::text[]`
    TextArray,
    /// `::float8`
    Float8,
}

/// A column to read: its name, the cast in the query, how it decodes.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// The type to decode.
    pub ty: PgType,
    /// The cast in the query.
    pub cast: Cast,
    /// The PostgreSQL type as the catalog names it (for messages and docs).
    pub pg_name: String,
}

/// What to do with a `numeric` declared without precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnconstrainedNumeric {
    /// Decimal(38, 18): a value that does not fit exactly is an error.
    #[default]
    Decimal,
    /// Its exact text.
    Text,
    /// A double (inexact, chosen by the user).
    Float,
}

/// How the catalog's types become Arrow types, where the user has a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeOptions {
    /// `numeric` declared without precision.
    pub numeric: UnconstrainedNumeric,
    /// uuid and time as their text, for readers without Parquet's UUID and
    /// TIME types (Spark 4.0, Hive): what Delta tables hold anyway.
    pub portable: bool,
}

/// Arrow field metadata of the canonical extension types.
const EXTENSION: &str = "ARROW:extension:name";

impl PgType {
    /// The Arrow type the values land as.
    pub fn arrow(&self) -> DataType {
        match self {
            PgType::Bool => DataType::Boolean,
            PgType::Int2 => DataType::Int16,
            PgType::Int4 => DataType::Int32,
            PgType::Int8 | PgType::Oid => DataType::Int64,
            PgType::Float4 => DataType::Float32,
            PgType::Float8 => DataType::Float64,
            PgType::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            PgType::Text | PgType::Json | PgType::Jsonb => DataType::Utf8,
            PgType::Bytea => DataType::Binary,
            PgType::Uuid => DataType::FixedSizeBinary(16),
            PgType::Date => DataType::Date32,
            PgType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            PgType::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
            }
            PgType::Time => DataType::Time64(TimeUnit::Microsecond),
            PgType::Interval => DataType::Struct(interval_fields()),
            PgType::Array { elem, dims } => {
                let mut dt = elem.arrow();
                let mut field = elem.field("item");
                for _ in 0..*dims {
                    dt = DataType::List(Arc::new(field));
                    field = Field::new("item", dt.clone(), true);
                }
                dt
            }
            PgType::Composite(fields) => {
                DataType::Struct(fields.iter().map(|(n, t)| t.field(n)).collect())
            }
        }
    }

    /// A nullable field of this type named `name`, with the metadata that
    /// gives Parquet its UUID and JSON logical types (and JSONL raw JSON).
    pub fn field(&self, name: &str) -> Field {
        let f = Field::new(name, self.arrow(), true);
        match self {
            PgType::Uuid => f.with_metadata([(EXTENSION.to_string(), "arrow.uuid".into())].into()),
            PgType::Json | PgType::Jsonb => {
                let f = crate::format::json_text_field(f);
                let mut meta = f.metadata().clone();
                meta.insert(EXTENSION.to_string(), crate::format::JSON_EXTENSION.into());
                // the canonical JSON type requires its (empty) metadata
                meta.insert("ARROW:extension:metadata".to_string(), String::new());
                f.with_metadata(meta)
            }
            _ => f,
        }
    }
}

/// The fields of an interval: exact, as PostgreSQL keeps it.
pub fn interval_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, false),
        Field::new("days", DataType::Int32, false),
        Field::new("microseconds", DataType::Int64, false),
    ])
}

/// Precision and scale of a `numeric` type modifier (`None`: declared
/// without precision). PostgreSQL 15 allows negative scales.
pub fn numeric_typmod(typmod: i32) -> Option<(u32, i32)> {
    if typmod < 4 {
        return None;
    }
    let t = typmod - 4;
    let precision = ((t >> 16) & 0xffff) as u32;
    let scale = ((t & 0x7ff) ^ 1024) - 1024;
    Some((precision, scale))
}

/// The column type of a built-in scalar type by name, `None` for a type read
/// as text. `typmod` matters for numeric only.
pub fn scalar(name: &str, typmod: i32, opts: TypeOptions) -> Option<ColumnType> {
    let ty = match name {
        "bool" => PgType::Bool,
        "int2" => PgType::Int2,
        "int4" => PgType::Int4,
        "int8" => PgType::Int8,
        "oid" => PgType::Oid,
        "float4" => PgType::Float4,
        "float8" => PgType::Float8,
        "text" | "varchar" | "bpchar" | "name" => PgType::Text,
        "json" => PgType::Json,
        "jsonb" => PgType::Jsonb,
        "bytea" => PgType::Bytea,
        "uuid" if !opts.portable => PgType::Uuid,
        "date" => PgType::Date,
        "timestamp" => PgType::Timestamp,
        "timestamptz" => PgType::TimestampTz,
        "time" if !opts.portable => PgType::Time,
        "interval" => PgType::Interval,
        "numeric" => return Some(numeric(typmod, opts.numeric)),
        _ => return None,
    };
    Some(ColumnType {
        ty,
        cast: Cast::None,
        pg_name: name.to_string(),
    })
}

fn numeric(typmod: i32, unconstrained: UnconstrainedNumeric) -> ColumnType {
    let col = |ty, cast| ColumnType {
        ty,
        cast,
        pg_name: "numeric".into(),
    };
    match numeric_typmod(typmod) {
        // numeric(p, s) with p > 38: exact as text, never rounded
        Some((p, _)) if p > MAX_PRECISION as u32 => col(PgType::Text, Cast::Text),
        Some((p, s)) if s < 0 => {
            // numeric(5, -2) holds integers of up to 7 digits
            let digits = p + s.unsigned_abs();
            match digits <= MAX_PRECISION as u32 {
                true => col(
                    PgType::Numeric {
                        precision: digits as u8,
                        scale: 0,
                    },
                    Cast::None,
                ),
                false => col(PgType::Text, Cast::Text),
            }
        }
        Some((p, s)) => col(
            PgType::Numeric {
                precision: p.max(1) as u8,
                scale: s as i8,
            },
            Cast::None,
        ),
        None => match unconstrained {
            UnconstrainedNumeric::Decimal => col(
                PgType::Numeric {
                    precision: MAX_PRECISION,
                    scale: UNCONSTRAINED_SCALE,
                },
                Cast::None,
            ),
            UnconstrainedNumeric::Text => col(PgType::Text, Cast::Text),
            UnconstrainedNumeric::Float => col(PgType::Float8, Cast::Float8),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_modifiers() {
        // numeric(10, 2): typmod = ((10 << 16) | 2) + 4
        assert_eq!(numeric_typmod((10 << 16 | 2) + 4), Some((10, 2)));
        assert_eq!(numeric_typmod(-1), None);
        // numeric(5, -2): the scale is 11 bits, two's complement
        assert_eq!(
            numeric_typmod((5 << 16 | (0x7ff & -2i32)) + 4),
            Some((5, -2))
        );
        let exact = TypeOptions::default();
        let float = TypeOptions {
            numeric: UnconstrainedNumeric::Float,
            portable: false,
        };
        let numeric = |typmod, o| scalar("numeric", typmod, o).unwrap();
        let (precision, scale) = (38, 18);
        assert_eq!(numeric(-1, exact).ty, PgType::Numeric { precision, scale });
        assert_eq!(numeric((50 << 16) + 4, exact).cast, Cast::Text);
        assert_eq!(numeric(-1, float).cast, Cast::Float8);
        assert!(scalar("inet", -1, exact).is_none());
        // portable: uuid and time are read as text
        assert_eq!(scalar("uuid", -1, exact).unwrap().ty, PgType::Uuid);
        let portable = TypeOptions {
            portable: true,
            ..exact
        };
        assert!(scalar("uuid", -1, portable).is_none() && scalar("time", -1, portable).is_none());
    }

    #[test]
    fn arrow_types() {
        let a = PgType::Array {
            elem: Box::new(PgType::Int4),
            dims: 2,
        };
        assert_eq!(a.arrow().to_string(), "List(List(Int32))");
        let u = PgType::Uuid.field("id");
        assert_eq!(
            u.metadata().get(EXTENSION).map(String::as_str),
            Some("arrow.uuid")
        );
        assert!(crate::format::is_json_text(&PgType::Jsonb.field("doc")));
    }
}
