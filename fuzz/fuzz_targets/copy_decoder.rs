//! The PostgreSQL binary COPY decoder on arbitrary bytes, cut into chunks at
//! arbitrary places, against representative column types: no panic, and
//! every batch it builds is valid Arrow.
#![no_main]

use std::sync::Arc;

use arrow_array::Array;
use inlet::source::postgres::copy::{BatchLimits, CopyDecoder};
use inlet::source::postgres::decode::Infinity;
use inlet::source::postgres::types::PgType;
use libfuzzer_sys::fuzz_target;

fn types(pick: u8) -> Vec<PgType> {
    let arr = |elem: PgType, dims| PgType::Array {
        elem: Box::new(elem),
        dims,
    };
    match pick % 4 {
        0 => vec![PgType::Int4, PgType::Text, PgType::Numeric { precision: 12, scale: 2 }],
        1 => vec![PgType::Uuid, PgType::Jsonb, PgType::TimestampTz, PgType::Date, PgType::Interval],
        2 => vec![arr(PgType::Int8, 1), arr(PgType::Text, 2), PgType::Bool, PgType::Float8],
        _ => vec![
            PgType::Composite(vec![
                ("a".into(), PgType::Int2),
                ("b".into(), arr(PgType::Numeric { precision: 38, scale: 18 }, 1)),
            ]),
            PgType::Bytea,
            PgType::Time,
            PgType::Oid,
        ],
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let types = types(head);
    let fields: Vec<_> = types.iter().enumerate().map(|(i, t)| t.field(&format!("c{i}"))).collect();
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    let limits = BatchLimits { rows: 1 + (head as usize >> 4), bytes: 4096 };
    let inf = match head >> 6 {
        0 => Infinity::Error,
        1 => Infinity::Null,
        _ => Infinity::Clamp,
    };
    let mut d = CopyDecoder::new(schema, types, limits, inf);
    let mut out = Vec::new();
    // a stream starts with the signature: give the fuzzer that for free
    let mut stream = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
    stream.extend_from_slice(rest);
    let step = 1 + (head as usize & 0x0f) * 7;
    for chunk in stream.chunks(step) {
        if d.push(chunk, &mut out).is_err() {
            return; // a rejected stream is discarded whole
        }
    }
    if let Ok(Some(b)) = d.finish() {
        out.push(b);
    }
    for b in out {
        for c in b.columns() {
            c.to_data().validate_full().expect("the decoder builds valid Arrow");
        }
    }
});
