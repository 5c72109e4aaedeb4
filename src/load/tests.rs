//! A whole load on an in-memory store: routing, sinks, STATE after data,
//! key checks, BATCH files and JSON-text columns.

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::{Value, json};

use super::*;
use crate::storage::Store;

/// stdout that notes, for each STATE line, how many objects were stored.
#[derive(Clone)]
struct Probe {
    store: Arc<InMemory>,
    lines: Arc<Mutex<Vec<(Value, usize)>>>,
    buf: Vec<u8>,
}

impl Write for Probe {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        while let Some(i) = self.buf.iter().position(|c| *c == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let objects: Vec<_> =
                futures::executor::block_on(self.store.list(None).try_collect()).unwrap();
            let v = serde_json::from_slice(&line).unwrap();
            self.lines.lock().unwrap().push((v, objects.len()));
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Run {
    result: Result<Summary, LoadError>,
    states: Vec<(Value, usize)>,
    store: Arc<InMemory>,
}

fn load(settings: Value, input: &[String]) -> Run {
    let mut m = settings.as_object().unwrap().clone();
    m.insert("destination".into(), "memory".into());
    let (cfg, _) = LoadConfig::from_map(m).unwrap();
    let plan = Plan::new(&cfg).unwrap();
    let mem = Arc::new(InMemory::new());
    let store = Store::from_object_store(mem.clone()).unwrap();
    let probe = Probe {
        store: mem.clone(),
        lines: Default::default(),
        buf: Vec::new(),
    };
    let lines = probe.lines.clone();
    let text = input.join("\n") + "\n";
    let input = Input::steady(Box::new(std::io::Cursor::new(text.into_bytes())));
    let result = run_plan(plan, store, input, Ledger::new(Box::new(probe), None));
    let states = lines.lock().unwrap().clone();
    Run {
        result,
        states,
        store: mem,
    }
}

fn schema(stream: &str, props: Value, keys: &[&str]) -> String {
    json!({"type": "SCHEMA", "stream": stream, "key_properties": keys,
           "schema": {"type": "object", "properties": props}})
    .to_string()
}

fn record(stream: &str, r: Value) -> String {
    json!({"type": "RECORD", "stream": stream, "record": r}).to_string()
}

fn state(v: Value) -> String {
    json!({"type": "STATE", "value": v}).to_string()
}

fn objects(store: &InMemory) -> Vec<String> {
    let mut v: Vec<String> = futures::executor::block_on(store.list(None).try_collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    v.sort();
    v
}

fn text(store: &InMemory, path: &str) -> String {
    let p = object_store::path::Path::from(path);
    let b = futures::executor::block_on(async { store.get(&p).await?.bytes().await }).unwrap();
    String::from_utf8(b.to_vec()).unwrap()
}

/// An integer property.
fn int() -> Value {
    json!({"type": "integer"})
}

#[test]
fn a_state_goes_out_only_once_the_rows_before_it_are_in_files() {
    let props = json!({"id": int()});
    let mut input = vec![schema("s", props, &["id"])];
    for i in 0..5 {
        input.push(record("s", json!({"id": i})));
        input.push(state(json!({"through": i})));
    }
    // a file every 2 rows: STATE after row 0 waits for the file of rows 0-1
    let run = load(json!({"format": "jsonl", "batch_max_rows": 2}), &input);
    let summary = run.result.unwrap();
    assert_eq!(summary.streams["s"].records, 5);
    let states: Vec<(i64, usize)> = run
        .states
        .iter()
        .map(|(v, n)| (v["through"].as_i64().unwrap(), *n))
        .collect();
    // every STATE emitted saw the files holding its rows
    for (through, files) in &states {
        assert!(*files as i64 > through / 2, "{states:?}");
    }
    assert_eq!(states.last().map(|s| s.0), Some(4));
    assert_eq!(objects(&run.store).len(), 3);
}

#[test]
fn a_failed_flush_holds_back_the_state_after_it() {
    // a partition key the data does not have fails the batch at the writer
    let props = json!({"id": int(), "day": {"type": "string"}});
    let input = vec![
        schema("s", props, &["id"]),
        record("s", json!({"id": 1, "day": "x"})),
        state(json!({"through": 1})),
    ];
    let run = load(
        json!({"format": "jsonl", "partition_keys": ["day:%Y"]}),
        &input,
    );
    let e = run.result.unwrap_err();
    assert_eq!(e.failure(), Failure::Internal, "{e}");
    assert!(run.states.is_empty(), "{:?}", run.states);
    assert!(objects(&run.store).is_empty());
}

#[cfg(feature = "delta")]
#[test]
fn merge_rejects_a_record_without_its_key_naming_stream_line_and_key() {
    let props = json!({"id": {"type": ["null", "integer"]}, "v": {"type": "string"}});
    let input = vec![
        schema("s", props.clone(), &["id"]),
        record("s", json!({"id": 1, "v": "a"})),
        record("s", json!({"v": "no key"})),
    ];
    let run = load(json!({"format": "delta", "mode": "merge"}), &input);
    let e = run.result.unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.failure(), Failure::Input, "{msg}");
    assert!(
        msg.contains("line 3") && msg.contains("stream 's'"),
        "{msg}"
    );
    assert!(
        msg.contains("field 'id'") && msg.contains("key property is missing"),
        "{msg}"
    );
    // null keys too; with skip, the keyed rows land and the others are counted
    let input = vec![
        schema("s", props, &["id"]),
        record("s", json!({"id": 1, "v": "a"})),
        record("s", json!({"id": null, "v": "null key"})),
    ];
    let run = load(
        json!({"format": "delta", "mode": "merge", "on_invalid_record": "skip"}),
        &input,
    );
    let summary = run.result.unwrap();
    assert_eq!((summary.rejected, summary.streams["s"].records), (1, 1));
    // plain files keep records without keys
    let input = vec![
        schema("s", json!({"id": {"type": ["null", "integer"]}}), &["id"]),
        record("s", json!({"id": null})),
    ];
    assert_eq!(
        load(json!({"format": "jsonl"}), &input)
            .result
            .unwrap()
            .rejected,
        0
    );
}

#[test]
fn json_text_columns_are_json_in_jsonl() {
    let props = json!({
        "id": int(),
        "anything": {},
        "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "nested": {"type": "object", "properties": {"free": {}}},
    });
    let input = vec![
        schema("s", props, &["id"]),
        record(
            "s",
            json!({"id": 1, "anything": {"k": [1, 2]}, "mixed": "plain", "nested": {"free": [true]}}),
        ),
        record(
            "s",
            json!({"id": 2, "anything": "s", "mixed": 7, "nested": {"free": null}}),
        ),
    ];
    let run = load(
        json!({"format": "jsonl", "add_metadata_columns": false}),
        &input,
    );
    run.result.unwrap();
    let files = objects(&run.store);
    assert_eq!(files.len(), 1);
    let out: Vec<Value> = text(&run.store, &files[0])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out[0]["anything"], json!({"k": [1, 2]}));
    assert_eq!(out[0]["mixed"], json!("plain"));
    assert_eq!(out[0]["nested"]["free"], json!([true]));
    assert_eq!(out[1]["anything"], json!("s"));
    assert_eq!(out[1]["mixed"], json!(7));
    // CSV keeps JSON text in the cell
    let input2 = &input;
    let run = load(
        json!({"format": "csv", "add_metadata_columns": false}),
        input2,
    );
    run.result.unwrap();
    let csv = text(&run.store, &objects(&run.store)[0]);
    assert!(csv.contains(r#""{""k"":[1,2]}""#), "{csv}");
    assert!(csv.contains(r#""""plain""""#), "{csv}");
}

#[test]
fn batch_files_stream_through_the_record_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("a.jsonl.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..1000 {
        writeln!(gz, "{}", json!({"id": i})).unwrap();
    }
    std::fs::write(&jsonl, gz.finish().unwrap()).unwrap();
    let bad = dir.path().join("b.jsonl");
    std::fs::write(&bad, "{\"id\": 1000}\n\n{\"id\": \"x\"}\n").unwrap();
    let batch = |f: &std::path::Path, c: &str| {
        json!({"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl", "compression": c},
               "manifest": [format!("file://{}", f.display())]})
        .to_string()
    };
    let input = vec![
        schema("s", json!({"id": int()}), &["id"]),
        batch(&jsonl, "gzip"),
        batch(&bad, "none"),
    ];
    let run = load(
        json!({"format": "jsonl", "on_invalid_record": "skip"}),
        &input,
    );
    let summary = run.result.unwrap();
    assert_eq!(summary.streams["s"].records, 1001);
    assert_eq!(summary.rejected, 1);
    // the rejected record is named by its file and line
    let input = vec![
        schema("s", json!({"id": int()}), &["id"]),
        batch(&bad, "none"),
    ];
    let e = load(json!({"format": "jsonl"}), &input).result.unwrap_err();
    assert!(e.to_string().contains("b.jsonl line 3"), "{e}");
}
