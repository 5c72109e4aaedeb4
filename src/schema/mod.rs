//! JSON Schema → Arrow types, and the record checks that go with them.
//!
//! Types come from the SCHEMA message, never from data. The fast path
//! ([`plan`]) checks the common Draft 4 keywords while decoding; a schema that
//! uses keywords it does not know (`pattern`, `allOf`, `not`, …) also gets a
//! full [`jsonschema`] validator, run on each record of that stream.

mod convert;
pub mod plan;
pub mod values;

use serde_json::Value;

pub use plan::{FieldPlan, Kind, ObjectPlan};

/// Errors in a SCHEMA message.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema cannot be turned into columns.
    #[error("{0}")]
    Invalid(String),
    /// The error is inside a property.
    #[error("property '{path}': {source}")]
    Within {
        /// Dotted path of the property.
        path: String,
        /// The underlying error.
        #[source]
        source: Box<SchemaError>,
    },
    /// Two columns end up with one name after `column_header_format`.
    #[error(
        "columns '{a}' and '{b}' both become '{out}' with column_header_format={format}; rename one in the tap (or a stream map) or drop column_header_format"
    )]
    Collision {
        /// First original name.
        a: String,
        /// Second original name.
        b: String,
        /// The shared output name.
        out: String,
        /// The configured format.
        format: String,
    },
    /// A key property that the schema does not have.
    #[error(
        "key property '{0}' is not a property of the stream; the table upserts on key_properties (mode merge), which must name top-level properties"
    )]
    UnknownKey(String),
}

impl SchemaError {
    fn within(self, name: &str) -> SchemaError {
        match self {
            SchemaError::Within { path, source } => SchemaError::Within {
                path: format!("{name}.{path}"),
                source,
            },
            other => SchemaError::Within {
                path: name.to_string(),
                source: Box::new(other),
            },
        }
    }
}

/// How column names are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderFormat {
    /// Names as the tap sends them.
    #[default]
    None,
    /// Lower-case every column name.
    Lower,
    /// Upper-case every column name.
    Upper,
}

impl HeaderFormat {
    /// Applies the format to one name.
    pub fn apply(self, name: &str) -> String {
        match self {
            HeaderFormat::None => name.to_string(),
            HeaderFormat::Lower => name.to_lowercase(),
            HeaderFormat::Upper => name.to_uppercase(),
        }
    }
}

/// Keywords the fast path does not check; their presence adds a full validator.
const SLOW_KEYWORDS: &[&str] = &[
    "pattern",
    "patternProperties",
    "allOf",
    "not",
    "if",
    "dependencies",
    "dependentRequired",
    "uniqueItems",
    "const",
    "contains",
    "propertyNames",
    "minProperties",
    "maxProperties",
];

/// A stream's compiled schema.
pub struct StreamSchema {
    /// Top-level columns.
    pub root: ObjectPlan,
    /// Full validator for keywords the fast path does not check.
    pub fallback: Option<jsonschema::Validator>,
    /// The SCHEMA message's schema, as sent.
    pub raw: Value,
}

impl std::fmt::Debug for StreamSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSchema")
            .field("root", &self.root)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl StreamSchema {
    /// Compiles a SCHEMA message's schema.
    pub fn compile(raw: Value, headers: HeaderFormat, validate: bool) -> Result<Self, SchemaError> {
        let mut root = convert::Converter::new(&raw).root_object()?;
        let mut seen: std::collections::HashMap<String, String> = Default::default();
        for f in &mut root.fields {
            f.out_name = headers.apply(&f.name);
            if let Some(prev) = seen.insert(f.out_name.clone(), f.name.clone()) {
                return Err(SchemaError::Collision {
                    a: prev,
                    b: f.name.clone(),
                    out: f.out_name.clone(),
                    format: format!("{headers:?}").to_lowercase(),
                });
            }
        }
        let fallback = if validate && uses_slow_keywords(&raw) {
            match jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(false)
                .build(&raw)
            {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(
                        "schema keywords beyond the fast checks cannot be compiled ({e}); only types, required, enum, lengths and bounds are validated"
                    );
                    None
                }
            }
        } else {
            None
        };
        Ok(StreamSchema {
            root,
            fallback,
            raw,
        })
    }

    /// Marks the top-level `keys` as key properties: records must carry
    /// them, non-null. A key that is not a property is an error.
    pub fn require_keys(&mut self, keys: &[String]) -> Result<(), SchemaError> {
        for k in keys {
            let f = self
                .root
                .fields
                .iter_mut()
                .find(|f| &f.name == k)
                .ok_or_else(|| SchemaError::UnknownKey(k.clone()))?;
            f.key = true;
        }
        Ok(())
    }

    /// Whether the new schema keeps every existing column with the same type
    /// (new columns may be added).
    pub fn is_additive_over(&self, old: &StreamSchema) -> bool {
        old.root.fields.iter().all(|o| {
            self.root
                .fields
                .iter()
                .any(|n| n.out_name == o.out_name && n.arrow_type() == o.arrow_type())
        })
    }
}

fn uses_slow_keywords(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, sub)| {
            // property names are data, not keywords
            if k == "properties" || k == "definitions" || k == "$defs" {
                sub.as_object()
                    .is_some_and(|props| props.values().any(uses_slow_keywords))
            } else {
                SLOW_KEYWORDS.contains(&k.as_str()) || uses_slow_keywords(sub)
            }
        }),
        Value::Array(a) => a.iter().any(uses_slow_keywords),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_collisions_are_config_errors() {
        let s = json!({"type": "object", "properties": {"Id": {"type": "integer"}, "id": {"type": "integer"}}});
        let err = StreamSchema::compile(s.clone(), HeaderFormat::Lower, true).unwrap_err();
        assert!(
            err.to_string().contains("'Id' and 'id' both become 'id'"),
            "{err}"
        );
        assert!(StreamSchema::compile(s, HeaderFormat::None, true).is_ok());
    }

    #[test]
    fn slow_keywords_get_a_full_validator() {
        let fast = json!({"type": "object", "properties": {"pattern": {"type": "string"}}});
        assert!(
            StreamSchema::compile(fast, HeaderFormat::None, true)
                .unwrap()
                .fallback
                .is_none()
        );
        let slow = json!({"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}});
        assert!(
            StreamSchema::compile(slow, HeaderFormat::None, true)
                .unwrap()
                .fallback
                .is_some()
        );
    }
}
