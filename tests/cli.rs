//! The real binary, end to end, without Python: exit codes, STATE ordering,
//! file contents read back with the parquet crate, and `target-inlet`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_inlet");

fn run(bin: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inlet");
    // inlet may exit before reading its input (a config or destination
    // error), so a broken pipe here is expected, not a failure
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn config(dir: &Path, extra: serde_json::Value) -> PathBuf {
    let mut cfg = serde_json::json!({"destination": dir.join("out")});
    cfg.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let p = dir.join("config.json");
    std::fs::write(&p, cfg.to_string()).unwrap();
    p
}

fn parquet_rows(dir: &Path) -> (usize, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let rows = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .map(|p| {
            let f = std::fs::File::open(p).unwrap();
            let r =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
            r.metadata().file_metadata().num_rows() as usize
        })
        .sum();
    (rows, files)
}

const SCHEMA: &str = r#"{"type":"SCHEMA","stream":"s","schema":{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"ok":{"type":"boolean"}}},"key_properties":["id"]}"#;

fn record(id: i64) -> String {
    format!(r#"{{"type":"RECORD","stream":"s","record":{{"id":{id},"ok":false}}}}"#)
}

fn state(n: i64) -> String {
    format!(r#"{{"type":"STATE","value":{{"n":{n}}}}}"#)
}

#[test]
fn states_follow_the_files_and_stop_at_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), serde_json::json!({"batch_max_rows": 2}));
    let mut lines = vec![state(0), SCHEMA.to_string()];
    for i in 1..=4 {
        lines.push(record(i));
        lines.push(state(i));
    }
    lines.push(r#"{"type":"RECORD","stream":"s","record":{"id":"five"}}"#.into());
    lines.push(state(5));
    let out = run(
        Path::new(BIN),
        &["load", "--config", cfg.to_str().unwrap()],
        &(lines.join("\n") + "\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("input line 11")
            && stderr.contains("stream 's'")
            && stderr.contains("field 'id'"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let states: Vec<&str> = stdout.lines().collect();
    // records 1-4 were flushed in two files before the bad line; STATE 5 never goes out
    assert_eq!(states.first(), Some(&r#"{"n":0}"#));
    assert_eq!(states.last(), Some(&r#"{"n":4}"#));
    let (rows, _) = parquet_rows(&dir.path().join("out"));
    assert_eq!(rows, 4);
}

#[test]
fn exit_codes_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    // config error: no destination
    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    let out = run(
        Path::new(BIN),
        &["load", "--config", empty.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("'destination' is required"));
    // destination error: the destination is a file
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        serde_json::json!({"destination": file.join("sub")}).to_string(),
    )
    .unwrap();
    let out = run(
        Path::new(BIN),
        &["load", "--config", cfg.to_str().unwrap()],
        &(SCHEMA.to_string() + "\n"),
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        Path::new(BIN),
        &["check", "--config", cfg.to_str().unwrap()],
        "",
    );
    assert_eq!(out.status.code(), Some(5));
    // usage error
    let out = run(Path::new(BIN), &["load", "--bogus"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn target_inlet_name_means_load() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("target-inlet");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let cfg = config(dir.path(), serde_json::json!({}));
    let input = format!("{SCHEMA}\n{}\n{}\n", record(1), state(1));
    let out = run(&link, &["--config", cfg.to_str().unwrap()], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "{\"n\":1}\n");
    let about = run(&link, &["--about", "--format", "json"], "");
    let v: serde_json::Value = serde_json::from_slice(&about.stdout).unwrap();
    assert!(
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "on_invalid_record")
    );
    assert_eq!(parquet_rows(&dir.path().join("out")).0, 1);
}

#[test]
fn state_after_a_quarantined_line_waits_for_its_file() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        serde_json::json!({"on_invalid_record": "quarantine", "batch_max_age_seconds": 1}),
    );
    let mut child = Command::new(BIN)
        .args(["load", "--config", cfg.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let bad = r#"{"type":"RECORD","stream":"s","record":{"id":"not a number"}}"#;
    writeln!(stdin, "{SCHEMA}\n{bad}\n{}", state(1)).unwrap();
    stdin.flush().unwrap();
    // the tap is now quiet (stdin stays open): the STATE may only come out
    // once the quarantined line is in a complete file
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), r#"{"n":1}"#);
    let rejected: Vec<_> = std::fs::read_dir(dir.path().join("out/_rejected/s"))
        .expect("quarantine folder exists when the STATE is emitted")
        .flatten()
        .collect();
    assert_eq!(rejected.len(), 1);
    let text = std::fs::read_to_string(rejected[0].path()).unwrap();
    assert!(
        text.contains("not a number") && text.contains("\"line\":2"),
        "{text}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
