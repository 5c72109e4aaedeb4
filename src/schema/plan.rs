//! The compiled form of a stream's JSON Schema: one [`FieldPlan`] per column,
//! carrying the Arrow type to build and the checks to run while decoding.

use std::collections::HashMap;

use arrow_schema::{DataType, Field, Fields, TimeUnit};
use serde_json::Value;

/// What a column holds, and so which Arrow type it becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// JSON integer → Int64.
    Int64,
    /// JSON number → Float64.
    Float64,
    /// JSON number with a power-of-ten `multipleOf` → exact decimal.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: i8,
    },
    /// JSON boolean.
    Bool,
    /// JSON string.
    Utf8,
    /// Any JSON value, stored as its JSON text.
    Json,
    /// `format: date-time` → Timestamp(µs, UTC).
    Timestamp,
    /// `format: date` → Date32.
    Date,
    /// `format: time` → Time64(µs).
    Time,
    /// Object with properties → Struct.
    Struct(ObjectPlan),
    /// Array with items → List.
    List(Box<FieldPlan>),
}

impl Kind {
    /// Short human name used in error messages.
    pub fn describe(&self) -> String {
        match self {
            Kind::Int64 => "integer".into(),
            Kind::Float64 => "number".into(),
            Kind::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            Kind::Bool => "boolean".into(),
            Kind::Utf8 => "string".into(),
            Kind::Json => "any JSON value".into(),
            Kind::Timestamp => "date-time string".into(),
            Kind::Date => "date string".into(),
            Kind::Time => "time string".into(),
            Kind::Struct(_) => "object".into(),
            Kind::List(_) => "array".into(),
        }
    }
}

/// A numeric bound from `minimum`/`maximum` (draft-4 boolean or draft-6 numeric exclusives).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The limit.
    pub value: f64,
    /// True when the limit itself is not allowed.
    pub exclusive: bool,
}

/// The validation keywords the fast path checks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraints {
    /// `maxLength` in characters.
    pub max_length: Option<usize>,
    /// `minLength` in characters.
    pub min_length: Option<usize>,
    /// `minimum` / `exclusiveMinimum`.
    pub minimum: Option<Bound>,
    /// `maximum` / `exclusiveMaximum`.
    pub maximum: Option<Bound>,
    /// `multipleOf` on a non-decimal number.
    pub multiple_of: Option<f64>,
    /// `enum` values.
    pub enum_values: Option<Vec<Value>>,
    /// `minItems`.
    pub min_items: Option<usize>,
    /// `maxItems`.
    pub max_items: Option<usize>,
}

impl Constraints {
    /// True when no keyword needs checking.
    pub fn is_empty(&self) -> bool {
        *self == Constraints::default()
    }
}

/// One column (or nested field).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPlan {
    /// Property name as it appears in records.
    pub name: String,
    /// Column name in the output (after `column_header_format`).
    pub out_name: String,
    /// Type of the values.
    pub kind: Kind,
    /// Whether a JSON `null` value is allowed by the schema.
    pub null_ok: bool,
    /// Whether the Arrow column is nullable (null allowed, or the property may be absent).
    pub nullable: bool,
    /// Listed in the parent's `required`: absence is invalid.
    pub required: bool,
    /// A key property of a table that upserts on it: absence and null are
    /// invalid whatever the schema allows (the column stays nullable).
    pub key: bool,
    /// Keywords checked when validation is on.
    pub checks: Constraints,
}

impl FieldPlan {
    /// The Arrow field for this column.
    pub fn arrow_field(&self) -> Field {
        let f = Field::new(&self.out_name, self.arrow_type(), self.nullable);
        match self.kind {
            Kind::Json => crate::format::json_text_field(f),
            _ => f,
        }
    }

    /// The Arrow data type for this column.
    pub fn arrow_type(&self) -> DataType {
        match &self.kind {
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Decimal { precision, scale } if *precision <= 38 => {
                DataType::Decimal128(*precision, *scale)
            }
            Kind::Decimal { precision, scale } => DataType::Decimal256(*precision, *scale),
            Kind::Bool => DataType::Boolean,
            Kind::Utf8 | Kind::Json => DataType::Utf8,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Struct(obj) => DataType::Struct(obj.arrow_fields()),
            Kind::List(item) => DataType::List(std::sync::Arc::new(item.arrow_field())),
        }
    }
}

/// An object's properties, in schema order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObjectPlan {
    /// Properties in schema order.
    pub fields: Vec<FieldPlan>,
    /// Index by property name.
    pub by_name: HashMap<Box<[u8]>, usize>,
    /// Each name with its JSON quotes, when it needs no escaping (fast key match).
    pub quoted: Vec<Option<Box<[u8]>>>,
    /// `additionalProperties: false`: unknown keys are invalid.
    pub deny_unknown: bool,
}

impl ObjectPlan {
    /// Builds the name index.
    pub fn new(fields: Vec<FieldPlan>, deny_unknown: bool) -> Self {
        let by_name = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_bytes().into(), i))
            .collect();
        let quoted = fields
            .iter()
            .map(|f| {
                let plain = !f.name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
                plain.then(|| format!("\"{}\"", f.name).into_bytes().into_boxed_slice())
            })
            .collect();
        ObjectPlan {
            fields,
            by_name,
            quoted,
            deny_unknown,
        }
    }

    /// Finds a property, trying the expected position first (records usually
    /// list keys in schema order).
    #[inline]
    pub fn lookup(&self, key: &[u8], hint: usize) -> Option<usize> {
        if let Some(f) = self.fields.get(hint)
            && f.name.as_bytes() == key
        {
            return Some(hint);
        }
        self.by_name.get(key).copied()
    }

    /// Arrow fields of the properties.
    pub fn arrow_fields(&self) -> Fields {
        self.fields.iter().map(|f| f.arrow_field()).collect()
    }
}
