//! `inlet runs`: what the run log says of earlier exports.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::{EXIT_CONFIG, EXIT_OK};
use crate::runlog::{RunDetail, RunLog, RunRow};

/// Arguments of `inlet runs`.
#[derive(Args, Debug)]
pub struct RunsArgs {
    /// The run log: a file or a postgresql:// URL (default: $XDG_DATA_HOME/inlet/runs.sqlite,
    /// else ~/.local/share/inlet/runs.sqlite).
    #[arg(long, value_name = "FILE|URL", env = "INLET_RUN_LOG", global = true)]
    run_log: Option<String>,
    /// Output: a table (text) or JSON.
    #[arg(long, value_enum, default_value = "text", global = true)]
    format: OutputFormat,
    /// How many runs to list, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(subcommand)]
    what: Option<RunsCommand>,
}

#[derive(Subcommand, Debug)]
enum RunsCommand {
    /// One run: its settings, tables (rows, files, bytes, seconds, errors) and part files.
    Show {
        /// The run's id (as `inlet runs` lists it).
        run_id: String,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Text,
    Json,
}

/// Runs `inlet runs`.
pub fn runs(a: RunsArgs) -> ExitCode {
    let env = super::env_pairs();
    let path = a
        .run_log
        .clone()
        .or_else(|| RunLog::default_path(&env).map(|p| p.display().to_string()));
    let Some(path) = path else {
        return die("no run log: set --run-log FILE (HOME is not set)");
    };
    if !RunLog::exists(&path) {
        return die(format!(
            "no run log at {path}: no export has run with it yet (inlet export writes it; --run-log FILE names another)"
        ));
    }
    let log = match RunLog::open(&path, &env) {
        Ok(l) => l,
        Err(e) => return die(e),
    };
    let json = a.format == OutputFormat::Json;
    match a.what {
        None => match log.runs(a.limit) {
            Ok(runs) if json => print_json(&runs),
            Ok(runs) => print!("{}", render_runs(&runs)),
            Err(e) => return die(e),
        },
        Some(RunsCommand::Show { run_id }) => match log.show(&run_id) {
            Ok(Some(d)) if json => print_json(&d),
            Ok(Some(d)) => print!("{}", render_detail(&d)),
            Ok(None) => {
                return die(format!(
                    "no run {run_id} in {} (`inlet runs` lists them)",
                    log.path()
                ));
            }
            Err(e) => return die(e),
        },
    }
    ExitCode::from(EXIT_OK)
}

/// `inlet runs` logs nothing: its errors go straight to stderr.
fn die(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("inlet runs: {msg}");
    ExitCode::from(EXIT_CONFIG)
}

fn print_json<T: serde::Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("inlet runs: {e}"),
    }
}

fn status(r: &RunRow) -> &str {
    match (r.status.as_str(), &r.finished_at) {
        ("running", _) => "running or killed",
        (s, _) => s,
    }
}

fn render_runs(runs: &[RunRow]) -> String {
    let mut out = format!(
        "{:<24} {:<21} {:<17} {:>6} {:>12} {:>10}  source → destination\n",
        "run", "started", "status", "tables", "rows", "MB"
    );
    for r in runs {
        out += &format!(
            "{:<24} {:<21} {:<17} {:>6} {:>12} {:>10.1}  {} → {}\n",
            r.run_id,
            r.started_at
                .get(..19)
                .map_or(r.started_at.clone(), |s| format!("{s}Z")),
            status(r),
            r.tables.map_or("-".into(), |n| n.to_string()),
            r.rows.map_or("-".into(), |n| n.to_string()),
            r.bytes.unwrap_or(0) as f64 / 1e6,
            r.source,
            r.destination
        );
    }
    out
}

fn render_detail(d: &RunDetail) -> String {
    let r = &d.run;
    let mut out = format!(
        "run {}\n  status    {}\n  started   {}\n  finished  {}\n  source    {}\n  to        {} ({})\n",
        r.run_id,
        status(r),
        r.started_at,
        r.finished_at.as_deref().unwrap_or("-"),
        r.source,
        r.destination,
        r.format
    );
    if let Some(e) = &r.error {
        out += &format!("  error     {e}\n");
    }
    if let Some(x) = &r.resumes {
        out += &format!("  resumes   {x}\n");
    }
    out += &format!(
        "\n{:<40} {:<10} {:>12} {:>6} {:>12} {:>8}\n",
        "table", "status", "rows", "files", "bytes", "seconds"
    );
    for t in &d.table_list {
        out += &format!(
            "{:<40} {:<10} {:>12} {:>6} {:>12} {:>8.2}\n",
            t.table, t.status, t.rows, t.files, t.bytes, t.seconds
        );
        if let Some(w) = &t.watermark {
            let lag = match w.lag {
                0 => String::new(),
                n => format!(" − lag {n}"),
            };
            out += &format!(
                "    {} {}: {}{lag} → {}\n",
                w.kind,
                w.column,
                w.low.as_deref().unwrap_or("first row"),
                w.high.as_deref().unwrap_or("no value yet")
            );
        }
        if let Some(e) = &t.error {
            out += &format!("    {e}\n");
        }
    }
    out += &format!("\n{} part files\n", d.files.len());
    for f in &d.files {
        out += &format!("  {}  {} rows, {} bytes\n", f.path, f.rows, f.bytes);
    }
    out
}
