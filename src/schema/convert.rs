//! JSON Schema (as Singer taps write it) → [`FieldPlan`]s.
//!
//! Real tap schemas are messy: type unions, `anyOf`, `$ref` into
//! `definitions` (sometimes recursive), draft-4 exclusives, `multipleOf`
//! for decimals. Every shape maps to some column; what cannot be typed
//! faithfully becomes a JSON text column rather than an error.

use serde_json::{Map, Value};

use super::SchemaError;
use super::plan::{Bound, Constraints, FieldPlan, Kind, ObjectPlan};

/// The schema that accepts anything (`true`).
static ANY_SCHEMA: Value = Value::Bool(true);

/// Widest decimal we build (Decimal256).
const MAX_DECIMAL_PRECISION: u32 = 76;

/// Walks one stream's schema, resolving `$ref`s against its root.
pub struct Converter<'a> {
    root: &'a Value,
    expanding: Vec<String>,
}

/// The core facts read off one schema node before choosing a column kind.
struct Node<'a> {
    obj: Option<&'a Map<String, Value>>,
    null_ok: bool,
    types: Vec<&'a str>,
}

impl<'a> Converter<'a> {
    /// A converter for the schema `root`.
    pub fn new(root: &'a Value) -> Self {
        Converter {
            root,
            expanding: Vec::new(),
        }
    }

    /// The top-level object plan of a stream's schema.
    pub fn root_object(&mut self) -> Result<ObjectPlan, SchemaError> {
        let root = self.root;
        let (schema, popped) = self.deref(root)?;
        let obj = schema
            .as_object()
            .ok_or_else(|| SchemaError::Invalid("the schema is not a JSON object".into()))?;
        let plan = match obj.get("properties") {
            Some(Value::Object(props)) if !props.is_empty() => self.object(obj, props)?,
            // No declared columns: keep every record whole as JSON text.
            _ => ObjectPlan::new(
                vec![FieldPlan {
                    name: "_record".into(),
                    out_name: "_record".into(),
                    kind: Kind::Json,
                    null_ok: true,
                    nullable: true,
                    required: false,
                    key: false,
                    checks: Constraints::default(),
                }],
                false,
            ),
        };
        self.pop_refs(popped);
        Ok(plan)
    }

    fn object(
        &mut self,
        obj: &'a Map<String, Value>,
        props: &'a Map<String, Value>,
    ) -> Result<ObjectPlan, SchemaError> {
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut fields = Vec::with_capacity(props.len());
        for (name, sub) in props {
            let mut f = self.field(name, sub)?;
            f.required = required.contains(&name.as_str());
            if !f.required {
                f.nullable = true;
            }
            fields.push(f);
        }
        let deny = obj.get("additionalProperties") == Some(&Value::Bool(false));
        Ok(ObjectPlan::new(fields, deny))
    }

    /// Resolves a `$ref` chain. Returns the target and how many refs were
    /// pushed on the expansion stack (the caller pops them when done).
    fn deref(&mut self, mut s: &'a Value) -> Result<(&'a Value, usize), SchemaError> {
        let mut pushed = 0;
        while let Some(r) = s.get("$ref").and_then(Value::as_str) {
            if self.expanding.iter().any(|e| e == r) {
                // Recursive reference: the recursion point is stored as JSON text.
                return Ok((&ANY_SCHEMA, pushed));
            }
            let pointer = r.strip_prefix('#').ok_or_else(|| {
                SchemaError::Invalid(format!(
                    "$ref '{r}' is not local (only '#/...' refs are supported)"
                ))
            })?;
            s = self.root.pointer(pointer).ok_or_else(|| {
                SchemaError::Invalid(format!("$ref '{r}' points to nothing in the schema"))
            })?;
            self.expanding.push(r.to_string());
            pushed += 1;
        }
        Ok((s, pushed))
    }

    fn pop_refs(&mut self, n: usize) {
        let keep = self.expanding.len().saturating_sub(n);
        self.expanding.truncate(keep);
    }

    /// The plan of one property.
    pub fn field(&mut self, name: &str, schema: &'a Value) -> Result<FieldPlan, SchemaError> {
        let (s, pushed) = self.deref(schema)?;
        let r = self.field_inner(name, s);
        self.pop_refs(pushed);
        r.map_err(|e| e.within(name))
    }

    fn field_inner(&mut self, name: &str, s: &'a Value) -> Result<FieldPlan, SchemaError> {
        let node = self.node(s);
        let mut checks = Constraints::default();
        let kind = match (node.obj, node.types.as_slice()) {
            (None, _) => Kind::Json,
            (Some(obj), _) if obj.contains_key("anyOf") || obj.contains_key("oneOf") => {
                let key = if obj.contains_key("anyOf") {
                    "anyOf"
                } else {
                    "oneOf"
                };
                return self.union(name, obj, key, node.null_ok);
            }
            (Some(obj), [t]) => self.single(obj, t, &mut checks)?,
            // "T or array of T" through a recursive $ref (pipelinewise arrays):
            // an array of such items is a list of T
            (Some(obj), [a, b])
                if (*a == "array") != (*b == "array") && self.items_recurse(obj) =>
            {
                let t = if *a == "array" { b } else { a };
                self.single(obj, t, &mut checks)?
            }
            (Some(obj), ts)
                if ts.len() == 2 && ts.contains(&"integer") && ts.contains(&"number") =>
            {
                self.single(obj, "number", &mut checks)?
            }
            (Some(obj), []) if obj.contains_key("properties") => {
                self.single(obj, "object", &mut checks)?
            }
            (Some(obj), []) if obj.contains_key("items") => {
                self.single(obj, "array", &mut checks)?
            }
            _ => Kind::Json,
        };
        let mut null_ok = node.null_ok;
        if node.types.is_empty() && node.obj.is_some_and(|o| !o.contains_key("type")) {
            // an untyped schema accepts null too
            null_ok = true;
        }
        if let Some(vals) = node
            .obj
            .and_then(|o| o.get("enum"))
            .and_then(Value::as_array)
        {
            if vals.iter().any(Value::is_null) {
                null_ok = true;
            }
            checks.enum_values = Some(vals.clone());
        }
        Ok(FieldPlan {
            name: name.to_string(),
            out_name: name.to_string(),
            kind,
            null_ok,
            nullable: null_ok,
            required: false,
            key: false,
            checks,
        })
    }

    /// True when `items` is a `$ref` already being expanded (a self-nesting array type).
    fn items_recurse(&self, obj: &Map<String, Value>) -> bool {
        obj.get("items")
            .and_then(|i| i.get("$ref"))
            .and_then(Value::as_str)
            .is_some_and(|r| self.expanding.iter().any(|e| e == r))
    }

    fn node(&self, s: &'a Value) -> Node<'a> {
        let obj = match s {
            Value::Object(o) => Some(o),
            _ => None, // `true`/`false` schemas: anything
        };
        let mut null_ok = obj.is_none();
        let mut types = Vec::new();
        if let Some(o) = obj {
            match o.get("type") {
                Some(Value::String(t)) => types.push(t.as_str()),
                Some(Value::Array(ts)) => types.extend(ts.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
        types.retain(|t| {
            if *t == "null" {
                null_ok = true;
                false
            } else {
                true
            }
        });
        types.dedup();
        Node {
            obj,
            null_ok,
            types,
        }
    }

    /// `anyOf` / `oneOf`: nulls make it nullable; one remaining variant is used
    /// as is; variants of one family widen (integer+number → number, string
    /// formats → string); anything else is JSON text.
    fn union(
        &mut self,
        name: &str,
        obj: &'a Map<String, Value>,
        key: &str,
        outer_null: bool,
    ) -> Result<FieldPlan, SchemaError> {
        let mut null_ok = outer_null;
        let mut plans = Vec::new();
        for v in obj.get(key).and_then(Value::as_array).into_iter().flatten() {
            let (vs, pushed) = self.deref(v)?;
            let node = self.node(vs);
            let is_null_only = node.obj.is_some()
                && node.types.is_empty()
                && node.null_ok
                && vs.get("anyOf").is_none()
                && vs.get("properties").is_none();
            if is_null_only {
                null_ok = true;
            } else {
                let p = self.field_inner(name, vs)?;
                null_ok |= p.null_ok;
                plans.push(p);
            }
            self.pop_refs(pushed);
        }
        let mut plan = match plans.len() {
            0 => json_plan(name),
            1 => plans.remove(0),
            _ => {
                let all = |f: &dyn Fn(&Kind) -> bool| plans.iter().all(|p| f(&p.kind));
                let kind = if all(&|k| *k == plans[0].kind) {
                    plans[0].kind.clone()
                } else if all(&|k| matches!(k, Kind::Int64 | Kind::Float64)) {
                    Kind::Float64
                } else if all(&|k| {
                    matches!(k, Kind::Utf8 | Kind::Timestamp | Kind::Date | Kind::Time)
                }) {
                    Kind::Utf8
                } else {
                    Kind::Json
                };
                FieldPlan {
                    kind,
                    ..json_plan(name)
                }
            }
        };
        plan.null_ok = null_ok;
        plan.nullable = null_ok;
        Ok(plan)
    }

    fn single(
        &mut self,
        obj: &'a Map<String, Value>,
        t: &str,
        c: &mut Constraints,
    ) -> Result<Kind, SchemaError> {
        let num = |k: &str| obj.get(k).and_then(Value::as_f64);
        let usize_of = |k: &str| obj.get(k).and_then(Value::as_u64).map(|v| v as usize);
        Ok(match t {
            "string" => {
                c.max_length = usize_of("maxLength");
                c.min_length = usize_of("minLength");
                match obj.get("format").and_then(Value::as_str) {
                    Some("date-time") => Kind::Timestamp,
                    Some("date") => Kind::Date,
                    Some("time") => Kind::Time,
                    _ => Kind::Utf8,
                }
            }
            "integer" | "number" => {
                c.minimum = bound(obj, "minimum", "exclusiveMinimum");
                c.maximum = bound(obj, "maximum", "exclusiveMaximum");
                let mult = num("multipleOf");
                if t == "integer" {
                    c.multiple_of = mult.filter(|m| *m != 1.0);
                    Kind::Int64
                } else if let Some(k) = mult.and_then(|m| decimal_kind(m, c.minimum, c.maximum)) {
                    k
                } else {
                    c.multiple_of = mult;
                    Kind::Float64
                }
            }
            "boolean" => Kind::Bool,
            "object" => match (obj.get("properties"), obj.get("additionalProperties")) {
                (Some(Value::Object(p)), None | Some(Value::Bool(false))) if !p.is_empty() => {
                    if obj.contains_key("patternProperties") {
                        Kind::Json
                    } else {
                        Kind::Struct(self.object(obj, p)?)
                    }
                }
                _ => Kind::Json,
            },
            "array" => {
                c.min_items = usize_of("minItems");
                c.max_items = usize_of("maxItems");
                match obj.get("items") {
                    Some(items @ Value::Object(_)) => {
                        // items are always nullable: taps declare non-null
                        // items and still send [1, null, 3]
                        let item = self.field("item", items)?;
                        Kind::List(Box::new(FieldPlan {
                            nullable: true,
                            null_ok: true,
                            ..item
                        }))
                    }
                    _ => Kind::Json,
                }
            }
            _ => Kind::Json,
        })
    }
}

fn json_plan(name: &str) -> FieldPlan {
    FieldPlan {
        name: name.to_string(),
        out_name: name.to_string(),
        kind: Kind::Json,
        null_ok: true,
        nullable: true,
        required: false,
        key: false,
        checks: Constraints::default(),
    }
}

fn bound(obj: &Map<String, Value>, key: &str, excl_key: &str) -> Option<Bound> {
    match (obj.get(key).and_then(Value::as_f64), obj.get(excl_key)) {
        // draft 6+: exclusiveMaximum is the number itself
        (_, Some(Value::Number(n))) => n.as_f64().map(|value| Bound {
            value,
            exclusive: true,
        }),
        (Some(value), excl) => Some(Bound {
            value,
            exclusive: excl == Some(&Value::Bool(true)),
        }),
        (None, _) => None,
    }
}

/// A power-of-ten `multipleOf` (0.01, 1e-38, 1) means an exact decimal with
/// that scale; the precision comes from the bounds when the tap gives them.
fn decimal_kind(mult: f64, min: Option<Bound>, max: Option<Bound>) -> Option<Kind> {
    if !(mult > 0.0 && mult <= 1.0) {
        return None;
    }
    let scale = (-mult.log10()).round();
    if (10f64.powf(-scale) - mult).abs() > mult * 1e-9 || scale > MAX_DECIMAL_PRECISION as f64 {
        return None;
    }
    let scale = scale as u32;
    let limit = [min, max]
        .iter()
        .flatten()
        .map(|b| b.value.abs())
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        });
    let precision = match limit {
        // digits needed left of the point for the largest bound
        Some(l) if l >= 1.0 => (l.log10().floor() as u32 + 1).max(1) + scale,
        Some(_) => scale.max(1),
        None => 38.max(scale + 1),
    };
    // an exclusive power-of-ten bound (1e38, exclusive) needs one digit less
    let precision = match max {
        Some(b) if b.exclusive && b.value >= 1.0 && b.value.log10().fract() == 0.0 => precision - 1,
        _ => precision,
    }
    .max(scale.max(1));
    if precision > MAX_DECIMAL_PRECISION {
        return None;
    }
    Some(Kind::Decimal {
        precision: precision as u8,
        scale: scale as i8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(schema: Value) -> ObjectPlan {
        Converter::new(&schema).root_object().unwrap()
    }

    fn kind_of(p: &ObjectPlan, name: &str) -> Kind {
        p.fields
            .iter()
            .find(|f| f.name == name)
            .unwrap()
            .kind
            .clone()
    }

    #[test]
    fn maps_basic_types_and_nullability() {
        let p = plan(json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "amount": {"type": ["null", "number"]},
            "ok": {"type": "boolean"},
            "ts": {"type": "string", "format": "date-time"},
            "d": {"type": ["string", "null"], "format": "date"},
            "t": {"type": "string", "format": "time"}
        }}));
        let f = |n: &str| p.fields.iter().find(|f| f.name == n).unwrap();
        assert_eq!(f("id").kind, Kind::Int64);
        assert!(!f("id").nullable);
        assert!(f("name").nullable && !f("name").null_ok);
        assert_eq!(f("amount").kind, Kind::Float64);
        assert!(f("amount").null_ok);
        assert_eq!(f("ok").kind, Kind::Bool);
        assert_eq!(f("ts").kind, Kind::Timestamp);
        assert_eq!(f("d").kind, Kind::Date);
        assert_eq!(f("t").kind, Kind::Time);
    }

    #[test]
    fn unions_refs_and_objects() {
        let p = plan(json!({"type": "object", "definitions": {
                "node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/definitions/node"}}}
            }, "properties": {
            "mixed": {"type": ["null", "string", "integer", "object", "array"]},
            "any": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "strs": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string"}]},
            "nums": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
            "free": {"type": "object"},
            "extra": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": true},
            "list": {"type": "array", "items": {"type": "integer"}},
            "tree": {"$ref": "#/definitions/node"},
            "empty": {}
        }}));
        assert_eq!(kind_of(&p, "mixed"), Kind::Json);
        assert_eq!(kind_of(&p, "any"), Kind::Timestamp);
        assert_eq!(kind_of(&p, "strs"), Kind::Utf8);
        assert_eq!(kind_of(&p, "nums"), Kind::Float64);
        assert_eq!(kind_of(&p, "free"), Kind::Json);
        assert_eq!(kind_of(&p, "extra"), Kind::Json);
        assert!(matches!(kind_of(&p, "list"), Kind::List(i) if i.kind == Kind::Int64));
        let Kind::Struct(tree) = kind_of(&p, "tree") else {
            panic!()
        };
        assert_eq!(kind_of(&tree, "v"), Kind::Int64);
        assert_eq!(
            kind_of(&tree, "next"),
            Kind::Json,
            "recursion ends in JSON text"
        );
        assert_eq!(kind_of(&p, "empty"), Kind::Json);
    }

    #[test]
    fn pipelinewise_recursive_arrays_are_lists_of_the_scalar() {
        let p = plan(json!({"type": "object", "definitions": {
            "sdc_recursive_integer_array": {"type": ["null", "integer", "array"], "items": {"$ref": "#/definitions/sdc_recursive_integer_array"}}
        }, "properties": {
            "ints": {"type": ["null", "array"], "items": {"$ref": "#/definitions/sdc_recursive_integer_array"}}
        }}));
        assert!(
            matches!(kind_of(&p, "ints"), Kind::List(i) if i.kind == Kind::Int64 && i.nullable)
        );
    }

    #[test]
    fn decimals_from_multiple_of() {
        let p = plan(json!({"type": "object", "properties": {
            "price": {"type": ["null", "number"], "multipleOf": 0.01},
            "pg10_2": {"type": "number", "multipleOf": 0.01, "maximum": 100000000, "exclusiveMaximum": true,
                       "minimum": -100000000, "exclusiveMinimum": true},
            "pg_any": {"type": "number", "multipleOf": 1e-38, "maximum": 1e38, "exclusiveMaximum": true},
            "odd": {"type": "number", "multipleOf": 0.5}
        }}));
        assert_eq!(
            kind_of(&p, "price"),
            Kind::Decimal {
                precision: 38,
                scale: 2
            }
        );
        assert_eq!(
            kind_of(&p, "pg10_2"),
            Kind::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(
            kind_of(&p, "pg_any"),
            Kind::Decimal {
                precision: 76,
                scale: 38
            }
        );
        assert_eq!(kind_of(&p, "odd"), Kind::Float64);
    }
}
