//! inlet's statistics against delta-rs' for the same files.

use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int16Array,
    Int32Array, Int64Array, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use deltalake::operations::write::writer::{DeltaWriter, WriterConfig};
use object_store::memory::InMemory;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::*;
use crate::storage::Store;
use crate::table::delta::{open_table, table_url};

/// Eight rows of every kind of column, nulls included, in two row groups
/// (timestamps at whole milliseconds: see the module's note on rounding).
fn every_type() -> RecordBatch {
    let ms = |v: i64| v * 1_000;
    let s_fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ]);
    let mut list = ListBuilder::new(Int64Builder::new());
    for i in 0..8 {
        list.values().append_value(i);
        list.append(i % 3 != 0);
    }
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(Int64Array::from(
                (0..8).map(|i| i * 1_000_003 - 4).collect::<Vec<_>>(),
            )),
        ),
        (
            "small",
            Arc::new(Int16Array::from(vec![
                Some(-3),
                None,
                Some(7),
                Some(1),
                None,
                Some(2),
                Some(0),
                Some(9),
            ])),
        ),
        ("qty", Arc::new(Int32Array::from(vec![None; 8]))),
        (
            "price",
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(-2.25),
                None,
                Some(1e10),
                Some(0.0),
                Some(3.0),
                Some(7.75),
                None,
            ])),
        ),
        (
            "ok",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(true),
                Some(true),
                Some(true),
                Some(true),
                Some(true),
                Some(true),
            ])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![
                Some("zoë"),
                Some("a b"),
                None,
                Some("Ω"),
                Some(""),
                Some("mid"),
                Some("x\"y"),
                Some("b"),
            ])),
        ),
        (
            "day",
            Arc::new(Date32Array::from(vec![
                Some(-400),
                Some(0),
                Some(19_000),
                None,
                Some(20_000),
                Some(1),
                Some(2),
                Some(3),
            ])),
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(ms(1_700_000_000_123)),
                    Some(ms(-86_400_001)),
                    None,
                    Some(ms(1_000)),
                    Some(ms(5)),
                    Some(ms(6)),
                    Some(ms(7)),
                    Some(ms(1_800_000_000_000)),
                ])
                .with_timezone("UTC"),
            ),
        ),
        (
            "local",
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(ms(3_000)),
                Some(ms(1_600_000_000_999)),
                Some(ms(0)),
                None,
                None,
                Some(ms(1)),
                Some(ms(2)),
                Some(ms(3)),
            ])),
        ),
        (
            "amount",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(12_345),
                    Some(-99),
                    None,
                    Some(0),
                    Some(1),
                    Some(2),
                    Some(3),
                    Some(4),
                ])
                .with_precision_and_scale(10, 2)
                .unwrap(),
            ),
        ),
        (
            "big",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(1),
                    Some(-10_000_000),
                    Some(42),
                    Some(0),
                    None,
                    Some(5),
                    Some(6),
                    Some(7),
                ])
                .with_precision_and_scale(38, 6)
                .unwrap(),
            ),
        ),
        (
            "whole",
            Arc::new(
                Decimal128Array::from(vec![
                    Some(7),
                    Some(-3),
                    Some(1),
                    Some(0),
                    None,
                    Some(5),
                    Some(6),
                    Some(9_000_000_000),
                ])
                .with_precision_and_scale(18, 0)
                .unwrap(),
            ),
        ),
        (
            "blob",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\x01"[..]),
                None,
                Some(b"z"),
                Some(b"a"),
                Some(b""),
                Some(b"q"),
                Some(b"r"),
                Some(b"s"),
            ])),
        ),
        ("tags", Arc::new(list.finish())),
        (
            "s",
            Arc::new(StructArray::new(
                s_fields,
                vec![
                    Arc::new(Int32Array::from(vec![
                        Some(5),
                        Some(-5),
                        None,
                        Some(1),
                        Some(2),
                        Some(3),
                        Some(4),
                        Some(0),
                    ])),
                    Arc::new(StringArray::from(vec![
                        Some("k"),
                        None,
                        Some("a"),
                        Some("q"),
                        Some("r"),
                        Some("s"),
                        Some("t"),
                        Some("u"),
                    ])),
                ],
                None,
            )),
        ),
    ];
    let schema = Schema::new(
        cols.iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), cols.into_iter().map(|(_, a)| a).collect()).unwrap()
}

/// delta-rs' writer writes `batch` into a table: its stats and the file's footer.
fn delta_rs(batch: &RecordBatch, columns: &StatsColumns) -> (Value, ParquetMetaData) {
    use delta_kernel::table_properties::DataSkippingNumIndexedCols as N;
    let store = Store::from_object_store(Arc::new(InMemory::new())).unwrap();
    let url = table_url(&store, "t").unwrap();
    let table = store.block_on(open_table(&store, &url)).unwrap();
    let (indexed, named) = match columns {
        StatsColumns::First(Some(n)) => (N::NumColumns(*n as u64), None),
        StatsColumns::First(None) => (N::AllColumns, None),
        StatsColumns::Named(c) => (N::NumColumns(32), Some(c.clone())),
    };
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(5))
        .build();
    let config = WriterConfig::new(
        batch.schema(),
        vec![],
        Some(props),
        None,
        None,
        indexed,
        named,
    );
    let mut w = DeltaWriter::new(table.object_store(), config);
    let adds = store.block_on(async {
        w.write(batch).await.unwrap();
        w.close().await.unwrap()
    });
    assert_eq!(adds.len(), 1);
    let bytes = store
        .block_on(store.get(&format!("t/{}", adds[0].path)))
        .unwrap();
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .unwrap();
    assert_eq!(
        meta.num_row_groups(),
        2,
        "the aggregation over row groups is tested"
    );
    let stats = serde_json::from_str(adds[0].stats.as_deref().unwrap()).unwrap();
    (stats, meta)
}

/// Decimals are exact in inlet's stats and `f64` in delta-rs': compare numbers as numbers.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn stats_equal_delta_rs_for_every_type() {
    let batch = every_type();
    for columns in [
        StatsColumns::default(),
        StatsColumns::First(Some(3)),
        StatsColumns::First(None),
        StatsColumns::Named(vec!["name".into(), "small".into(), "at".into()]),
    ] {
        let (theirs, meta) = delta_rs(&batch, &columns);
        let ours: Value = serde_json::from_str(&stats_json(&meta, &columns)).unwrap();
        assert!(
            same(&ours, &theirs),
            "{columns:?}\n ours   {ours}\n theirs {theirs}"
        );
    }
}

#[test]
fn the_expected_values_for_one_file() {
    let (_, meta) = delta_rs(&every_type(), &StatsColumns::default());
    let s: Value = serde_json::from_str(&stats_json(&meta, &StatsColumns::default())).unwrap();
    assert_eq!(s["numRecords"], 8);
    assert_eq!(s["minValues"]["at"], "1969-12-30T23:59:59.999Z");
    assert_eq!(s["maxValues"]["at"], "2027-01-15T08:00:00Z");
    assert_eq!(s["maxValues"]["local"], "2020-09-13 12:26:40.999");
    assert_eq!(s["minValues"]["day"], "1968-11-27");
    assert_eq!(s["nullCount"]["qty"], 8);
    assert!(s["minValues"].get("qty").is_none(), "all null: no bounds");
    assert_eq!(s["nullCount"]["s"]["b"], 1);
    assert_eq!(s["minValues"]["s"]["a"], -5);
    for skipped in ["blob", "tags"] {
        assert!(
            s["nullCount"].get(skipped).is_none(),
            "{skipped} has no stats"
        );
    }
}

#[test]
fn a_max_timestamp_rounds_up_and_decimals_are_exact() {
    let schema = Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("d", DataType::Decimal128(38, 10), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![1_001, 2_000_001]).with_timezone("UTC")),
            Arc::new(
                Decimal128Array::from(vec![12_345_678_901_234_567_890_123_456_789i128, -1])
                    .with_precision_and_scale(38, 10)
                    .unwrap(),
            ),
        ],
    )
    .unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(Vec::new(), batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    let meta = w.finish().unwrap();
    let s = stats_json(&meta, &StatsColumns::default());
    // 2.000001 s is below 2.001 s: a reader looking for it must not skip the file
    assert!(
        s.contains(r#""maxValues":{"at":"1970-01-01T00:00:02.001Z""#),
        "{s}"
    );
    assert!(
        s.contains(r#""minValues":{"at":"1970-01-01T00:00:00.001Z""#),
        "{s}"
    );
    assert!(s.contains(r#""d":1234567890123456789.0123456789"#), "{s}");
    assert!(s.contains(r#""d":-0.0000000001"#), "{s}");
}

#[test]
fn table_properties_choose_the_columns() {
    assert_eq!(
        StatsColumns::from_properties(None, None),
        StatsColumns::First(Some(32))
    );
    assert_eq!(
        StatsColumns::from_properties(Some("-1"), None),
        StatsColumns::First(None)
    );
    assert_eq!(
        StatsColumns::from_properties(Some("5"), None),
        StatsColumns::First(Some(5))
    );
    assert_eq!(
        StatsColumns::from_properties(Some("5"), Some("a, b.c")),
        StatsColumns::Named(vec!["a".into(), "b.c".into()])
    );
}
