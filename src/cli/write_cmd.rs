//! `inlet write`: an Arrow IPC stream on stdin (or a file) → one table, with
//! the settings of `inlet load`; a JSON summary on stdout. The Python
//! package's `inlet.write` streams DataFrames into this command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::{CommonArgs, EXIT_CONFIG, EXIT_INPUT, EXIT_OK, exit_code, fail, init_logging};
use crate::config::LoadConfig;
use crate::write;

pub(super) const WRITE_HELP: &str = "\
Reads one table's rows as an Arrow IPC stream (pyarrow.ipc.new_stream, polars write_ipc_stream,
…) and writes them like `inlet load` writes a stream: same settings
(--config, INLET_<KEY>, --set KEY=VALUE), destinations, layouts, formats and Delta modes. Types
come from the stream's schema. A Delta append or overwrite is one commit; a merge commits a
batch at a time. On success one JSON object goes to stdout:
  {\"table\": …, \"rows\": …, \"bytes\": …, \"version\": …, \"files\": [{\"path\", \"rows\", \"bytes\"}]}

Exit codes: 0 ok, 1 internal error, 2 usage, 3 config error, 4 input error (not an Arrow
stream, a column type no table holds), 5 destination error.

  inlet write --table orders --input orders.arrows --set destination=s3://lake/raw --config creds.yaml
  inlet write --table orders --input orders.arrows --set format=delta --set mode=merge --key id";

/// Arguments of `inlet write`.
#[derive(Args, Debug)]
pub struct WriteArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The table to write (a stream name, as in `inlet load`: `schema-table` also names the schema).
    #[arg(long, short = 't', value_name = "NAME")]
    table: String,
    /// Read the stream from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// What the input is.
    #[arg(long, value_enum, default_value = "arrow-ipc")]
    input_format: InputFormat,
    /// Key column(s) for mode merge (repeat it, or separate with commas).
    #[arg(long = "key", value_name = "COLUMN", value_delimiter = ',')]
    keys: Vec<String>,
    /// A setting as KEY=VALUE (repeatable), any key `inlet load --about` lists; wins over
    /// config files and the environment.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InputFormat {
    /// The Arrow IPC streaming format.
    ArrowIpc,
}

/// Runs `inlet write`.
pub fn write(a: WriteArgs) -> ExitCode {
    let cfg = match config(&a) {
        Ok(c) => c,
        Err(e) => {
            init_logging(&a.common, &LoadConfig::default());
            return fail(EXIT_CONFIG, e);
        }
    };
    let InputFormat::ArrowIpc = a.input_format;
    let input: Box<dyn std::io::Read + Send> = match &a.input {
        None => Box::new(std::io::stdin()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(f),
            Err(e) => {
                return fail(
                    EXIT_INPUT,
                    format!("cannot open --input {}: {e}", p.display()),
                );
            }
        },
    };
    let req = write::Request {
        table: a.table.clone(),
        keys: a.keys.iter().filter(|k| !k.is_empty()).cloned().collect(),
    };
    let started = std::time::Instant::now();
    match write::run(&cfg, &req, input) {
        Ok(s) => {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                table = %a.table,
                rows = s.rows,
                seconds = format!("{secs:.2}"),
                "write finished: {} rows ({:.0} rows/s)",
                s.rows,
                s.rows as f64 / secs.max(1e-6)
            );
            println!("{}", summary(&a.table, &s, secs));
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(exit_code(e.failure()), e),
    }
}

fn config(a: &WriteArgs) -> Result<LoadConfig, crate::config::ConfigError> {
    let mut set = serde_json::Map::new();
    for kv in &a.set {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| crate::config::ConfigError::Value {
                key: kv.clone(),
                msg: "--set takes KEY=VALUE".into(),
            })?;
        set.insert(
            k.trim().to_string(),
            crate::config::setting_value(k.trim(), v)?,
        );
    }
    super::load_config_with(&a.common, set)
}

fn summary(table: &str, s: &write::Summary, secs: f64) -> Value {
    let files: Vec<Value> = s
        .written
        .iter()
        .map(|w| json!({"path": w.path, "rows": w.rows, "bytes": w.bytes}))
        .collect();
    json!({
        "table": table,
        "rows": s.rows,
        "bytes": s.bytes,
        "version": s.version,
        "files": files,
        "seconds": (secs * 1000.0).round() / 1000.0,
    })
}
