//! The record decoder on arbitrary records against representative schemas:
//! no panic, a rejected record leaves nothing behind, and every batch it
//! builds is valid Arrow (checked in full: string columns are built without
//! a second UTF-8 check, so this is where a wrong offset would show).
#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use arrow_array::Array;
use inlet::batch::{Metadata, StreamBuffer};
use inlet::schema::{HeaderFormat, StreamSchema};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// The schemas, compiled once (a validator takes longer to build than a run).
fn schemas() -> &'static Vec<(Arc<StreamSchema>, bool)> {
    static S: OnceLock<Vec<(Arc<StreamSchema>, bool)>> = OnceLock::new();
    S.get_or_init(|| {
        let flat = json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "integer"},
            "amount": {"type": ["null", "number"]},
            "price": {"type": ["null", "number"], "multipleOf": 0.01, "maximum": 1e12},
            "ok": {"type": ["null", "boolean"]},
            "name": {"type": ["null", "string"], "maxLength": 40},
            "at": {"type": ["null", "string"], "format": "date-time"},
            "day": {"type": ["null", "string"], "format": "date"},
            "time": {"type": ["null", "string"], "format": "time"},
            "kind": {"enum": ["a", "b", null]}}});
        let nested = json!({"type": "object", "properties": {
            "user": {"type": ["null", "object"], "properties": {
                "id": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "geo": {"type": "object", "properties": {"lat": {"type": "number"}}}}},
            "lines": {"type": ["null", "array"], "items": {"type": "object", "properties": {
                "sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 0}}}},
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}}}});
        let loose = json!({"type": "object", "additionalProperties": false, "properties": {
            "anything": {},
            "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            "free": {"type": "object"},
            "code": {"type": "string", "pattern": "^[A-Z]{2,3}$"},
            "big": {"type": "number", "multipleOf": 1e-38}}});
        let all: Vec<(Value, bool)> = vec![
            (flat.clone(), true),
            (flat, false),
            (nested.clone(), true),
            (nested, false),
            (loose, true),
            (json!({}), true),
        ];
        all.into_iter()
            .map(|(raw, validate)| {
                let s = StreamSchema::compile(raw, HeaderFormat::None, validate);
                (Arc::new(s.expect("the fuzz schemas compile")), validate)
            })
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (schema, validate) = &schemas()[pick as usize % schemas().len()];
    // a buffer per schema and metadata choice, reused: sealing empties it
    static BUFFERS: OnceLock<Mutex<HashMap<u8, StreamBuffer>>> = OnceLock::new();
    let mut buffers = BUFFERS.get_or_init(Default::default).lock().unwrap();
    let key = pick % schemas().len() as u8 | (pick & 0xc0);
    let buf = buffers.entry(key).or_insert_with(|| {
        let meta = Metadata {
            prefix: (pick & 0x80 != 0).then(|| "_inlet".to_string()),
            table_version: pick & 0x40 != 0,
        };
        StreamBuffer::new("s", schema.clone(), &meta, HeaderFormat::None, *validate)
    });
    let mut accepted = 0;
    for record in text.split('\n') {
        let before = buf.rows();
        match buf.push_record(record) {
            Ok(()) => accepted += 1,
            Err(_) => assert_eq!(buf.rows(), before, "a rejected record left rows behind"),
        }
        buf.cut_chunk_if_full().expect("chunking a valid buffer");
    }
    let batches = buf.seal(0).expect("sealing a valid buffer");
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, accepted);
    for b in &batches {
        for c in b.columns() {
            c.to_data().validate_full().expect("valid Arrow data");
        }
    }
});
