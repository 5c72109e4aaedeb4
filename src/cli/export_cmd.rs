//! `inlet export`: its arguments (with LakeXpress's spellings as aliases)
//! and the summary it prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::{
    CommonArgs, EXIT_CONFIG, EXIT_OK, EXIT_TABLES, LogFormat, export_exit_code as exit_code, fail,
    init_logging,
};
use crate::config::{ConfigError, LoadConfig};
use crate::export::incremental::{KeySpec, Spec};
use crate::export::{self, ExportError, ExportOptions, Pattern};
use crate::source::SnapshotMode;
use crate::source::postgres::decode::Infinity;
use crate::source::postgres::types::{TypeOptions, UnconstrainedNumeric};
use crate::source::postgres::{PgError, Source};

pub(super) const EXPORT_HELP: &str = "\
Examples:
  inlet export --source postgresql://app@127.0.0.1:5432/shop --output-dir ./lake
  inlet export --source postgresql://app@db/shop --destination s3://lake/raw -i 'public.order%' --format parquet
  inlet export -a auth.json --source_db_auth_id pg_01 --target_storage_id s3_01 --sub_path erp --n_jobs 4
  inlet export --source postgresql://app@db/shop --output-dir ./lake --format delta \\
      --incremental 'public.orders:updated_at:lag=900'     # later runs merge what changed
  inlet export --resume                                     # finish the last failed or killed run
  inlet export --source postgresql://app@db/shop --destination s3://lake/raw --shard 2/4 --export-id $RUN_ID

The password comes from the URL, PGPASSWORD, ~/.pgpass (PGPASSFILE) or the auth file; it never
appears in any output. Files go to {destination}/[{sub_path}/]{schema}/{table}/part-NNNNN.{ext}; a
table's folder gets _manifest.json and, last, _SUCCESS once its copy is complete. The keys of
`inlet load`'s config (format, compression, row_group_size, layout, partition_keys, path_template,
column_header_format, storage keys) apply here too. An incremental table keeps its watermark in
the destination (the Delta commit, the manifest); every run is recorded in the run log (`inlet runs`).

Exit codes: 0 ok, 1 internal error, 2 usage, 3 config error (or a pattern that matches nothing),
5 destination error, 6 source error (unreachable, login refused, unknown database),
7 some tables failed (the summary says which and why).";

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FormatArg {
    Parquet,
    Csv,
    Jsonl,
    Delta,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum SnapshotArg {
    /// One snapshot for the whole run: every table as of one point in time.
    One,
    /// A snapshot per table: a shorter xmin horizon on a busy primary.
    PerTable,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum NumericArg {
    /// Decimal(38, 18); a value that does not fit exactly is an error.
    Decimal,
    /// The exact text of each value.
    Text,
    /// A double (inexact).
    Float,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum InfinityArg {
    /// An error naming table, column and value.
    Error,
    /// Null.
    Null,
    /// 0001-01-01 / 9999-12-31 23:59:59.999999.
    Clamp,
}

/// `inlet export`'s arguments.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Source database: postgresql://user[:password]@host:port/db[?sslmode=disable|prefer].
    #[arg(
        long,
        value_name = "URL",
        required_unless_present_any = ["source_db_auth_id", "resume"]
    )]
    source: Option<String>,
    /// Entry of --auth describing the source database (ds_type postgres).
    #[arg(
        long,
        visible_alias = "source_db_auth_id",
        value_name = "ID",
        requires = "auth",
        conflicts_with = "source"
    )]
    source_db_auth_id: Option<String>,
    /// LakeXpress-style auth file of named database and storage entries (JSON or YAML).
    #[arg(long, short = 'a', value_name = "FILE")]
    auth: Option<PathBuf>,
    /// Entry of --auth to write to.
    #[arg(
        long,
        visible_alias = "target_storage_id",
        value_name = "ID",
        requires = "auth",
        conflicts_with_all = ["output_dir", "destination"]
    )]
    target_storage_id: Option<String>,
    /// Local folder to write to.
    #[arg(
        long,
        visible_alias = "output_dir",
        value_name = "DIR",
        conflicts_with = "destination"
    )]
    output_dir: Option<String>,
    /// Destination URL (s3://, gs://, az://, abfss://, file:// or a folder).
    #[arg(long, value_name = "URL")]
    destination: Option<String>,
    /// Folders inserted below the destination's base path.
    #[arg(long, visible_alias = "sub_path", value_name = "PATH")]
    sub_path: Option<String>,
    /// Tables to export: schema.table with * or % wildcards; repeat or comma-separate.
    #[arg(long, short = 'i', value_name = "PATTERN")]
    include: Vec<String>,
    /// Tables to leave out (same patterns).
    #[arg(long, short = 'e', value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Also export views, materialized views and foreign tables that match.
    #[arg(long)]
    include_views: bool,
    /// File format (default parquet, or the config's `format`).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Config file (JSON or YAML); repeat it, later files win.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Tables exported at once (default: the number of cores).
    #[arg(long, visible_alias = "n_jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Connections per table: a big table is read in ctid block ranges at once (default: cores).
    #[arg(long, value_name = "K")]
    parallel: Option<usize>,
    /// A big table is read in block ranges of about this size, at once on --parallel connections.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64MB")]
    range_size: u64,
    /// One snapshot for the run, or one per table.
    #[arg(long, value_enum, default_value = "one")]
    snapshot: SnapshotArg,
    /// Read inside this snapshot (pg_export_snapshot() of a session you keep open) instead of
    /// taking one: one point in time for several processes (--shard).
    #[arg(long, value_name = "ID")]
    snapshot_id: Option<String>,
    /// numeric declared without precision.
    #[arg(long, value_enum, default_value = "decimal")]
    numeric: NumericArg,
    /// uuid and time as text (as Delta holds them), for readers without Parquet's UUID and TIME
    /// types: Spark 4.0, Hive.
    #[arg(long)]
    portable_types: bool,
    /// The run log that records every run, table, part file and watermark: a SQLite file, or
    /// postgresql://… for one a team shares; `none` for no log.
    /// Default: $XDG_DATA_HOME/inlet/runs.sqlite, else ~/.local/share/inlet/runs.sqlite.
    #[arg(long, value_name = "FILE|URL", env = "INLET_RUN_LOG")]
    run_log: Option<String>,
    /// Export only what changed since the last run: schema.table:column[:lag=N][:start=VALUE]
    /// (column of type timestamp, timestamptz, date or integer; lag in seconds, days or units,
    /// or 15m / 2h / 1d); repeat per table. LakeXpress's schema.table:column:type[@start][!append|upsert]
    /// works too.
    #[arg(long, visible_alias = "incremental_table", value_name = "SPEC", value_parser = Spec::parse)]
    incremental: Vec<Spec>,
    /// Seconds re-read below each time watermark that sets no lag of its own (rows that
    /// committed late).
    #[arg(long, visible_alias = "incremental_safety_lag", value_name = "SECONDS")]
    incremental_lag: Option<u64>,
    /// The merge key of a table without a primary key: schema.table:column[,column].
    #[arg(long, value_name = "SPEC", value_parser = KeySpec::parse)]
    key: Vec<KeySpec>,
    /// Ignore every watermark: reload the incremental tables whole (new watermarks are recorded).
    #[arg(long)]
    full: bool,
    /// Ignore the watermarks of the tables matching PATTERN (every table without one).
    #[arg(long, value_name = "PATTERN", num_args = 0..=1, default_missing_value = "*.*")]
    reset_watermarks: Vec<String>,
    /// Run again the tables a run did not finish (it failed or was killed), with its arguments
    /// from the run log; default: the newest such run. --source may be given again (a password
    /// in the URL is not kept).
    #[arg(long, value_name = "RUN_ID", num_args = 0..=1, default_missing_value = "")]
    resume: Option<String>,
    /// Do this process's share of an export run by N processes (N machines, Kubernetes Jobs,
    /// Airflow tasks): tables and ranges of big tables are split among them, the same way in
    /// each. K counts from 1. Needs --export-id.
    #[arg(long, value_name = "K/N", value_parser = crate::export::shard::parse, requires = "export_id")]
    shard: Option<(u32, u32)>,
    /// The id the N shards of one export share, new for each export (your orchestrator's run
    /// id: Airflow's {{ run_id }}, the Kubernetes Job's name).
    #[arg(long, value_name = "ID", requires = "shard")]
    export_id: Option<String>,
    /// ±infinity dates and timestamps.
    #[arg(long, value_enum, default_value = "error")]
    infinity: InfinityArg,
    /// Close a part file past this much Arrow data (e.g. 64MB, 1GB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64MB")]
    max_file_size: u64,
    /// … or past this many rows.
    #[arg(long, value_name = "ROWS", default_value_t = 10_000_000)]
    max_file_rows: u64,
    /// Print what would be exported (tables, sizes, ranges, paths); read and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Stop at the first table that fails (default: the others go on).
    #[arg(long)]
    fail_fast: bool,
    /// Log format on stderr (json also prints the summary as JSON).
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Log level on stderr.
    #[arg(long)]
    log_level: Option<String>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (num, mult) = match t.strip_suffix("GB").or_else(|| t.strip_suffix('G')) {
        Some(n) => (n, 1u64 << 30),
        None => match t.strip_suffix("MB").or_else(|| t.strip_suffix('M')) {
            Some(n) => (n, 1 << 20),
            None => match t.strip_suffix("KB").or_else(|| t.strip_suffix('K')) {
                Some(n) => (n, 1 << 10),
                None => (t.strip_suffix('B').unwrap_or(&t), 1),
            },
        },
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n.saturating_mul(mult))
        .map_err(|_| format!("'{s}' is not a size (e.g. 64MB, 1GB, 1048576)"))
}

impl ExportArgs {
    fn common(&self) -> CommonArgs {
        CommonArgs {
            config: self.config.clone(),
            log_format: self.log_format,
            log_level: self.log_level.clone(),
            auth: self.target_storage_id.as_ref().and(self.auth.clone()),
            target_storage_id: self.target_storage_id.clone(),
            output_dir: self.output_dir.clone(),
            sub_path: self.sub_path.clone(),
        }
    }

    fn config(&self, env: &[(String, String)]) -> Result<LoadConfig, ConfigError> {
        let mut overlay = self.common().overlay(env)?;
        if let Some(d) = &self.destination {
            overlay
                .values
                .insert("destination".into(), d.clone().into());
        }
        if let Some(f) = self.format {
            let name = format!("{f:?}").to_ascii_lowercase();
            overlay.values.insert("format".into(), Value::String(name));
        }
        // LakeXpress's folders, whatever names the destination
        overlay
            .defaults
            .insert("layout".into(), "lakexpress".into());
        let (mut cfg, mut unknown) = LoadConfig::load_layers(&self.config, env, &overlay)?;
        if cfg.format.table_kind() == crate::table::TableKind::Delta {
            // a full export replaces the table unless the config says otherwise
            overlay.defaults.insert("mode".into(), "overwrite".into());
            (cfg, unknown) = LoadConfig::load_layers(&self.config, env, &overlay)?;
        }
        init_logging(&self.common(), &cfg);
        if !unknown.is_empty() {
            tracing::warn!(
                "ignoring config keys inlet does not know: {}",
                unknown.join(", ")
            );
        }
        Ok(cfg)
    }

    fn source(&self, env: &[(String, String)]) -> Result<Source, ExportError> {
        if let (Some(file), Some(id)) = (&self.auth, &self.source_db_auth_id) {
            let (kind, info) =
                crate::storage::auth::entry_info(file, id, env, "ds_type", "postgres")
                    .map_err(ConfigError::from)?;
            if !matches!(kind.as_str(), "postgres" | "postgresql" | "pg") {
                return Err(ExportError::source(PgError::Url(
                    format!("auth entry '{id}'"),
                    format!(
                        "ds_type '{kind}' is not supported; inlet export reads PostgreSQL (ds_type postgres)"
                    ),
                )));
            }
            return Source::from_auth(&info).map_err(ExportError::source);
        }
        let url = self.source.as_deref().unwrap_or_default();
        let pgpass = env
            .iter()
            .find(|(k, _)| k == "PGPASSFILE")
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| {
                env.iter()
                    .find(|(k, _)| k == "HOME")
                    .map(|(_, h)| PathBuf::from(h).join(".pgpass"))
            });
        Source::parse(url, env, pgpass.as_deref()).map_err(ExportError::source)
    }

    fn options(&self, source: Source, env: &[(String, String)]) -> ExportOptions {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ExportOptions {
            source,
            include: Pattern::list(&self.include),
            exclude: Pattern::list(&self.exclude),
            include_views: self.include_views,
            jobs: self.jobs.unwrap_or(cores).max(1),
            parallel: self.parallel.unwrap_or(cores).max(1),
            // pages of 8 KiB, PostgreSQL's default block size
            split_pages: (self.range_size / 8192).max(1),
            snapshot: match self.snapshot {
                SnapshotArg::One => SnapshotMode::One,
                SnapshotArg::PerTable => SnapshotMode::PerTable,
            },
            types: TypeOptions {
                numeric: match self.numeric {
                    NumericArg::Decimal => UnconstrainedNumeric::Decimal,
                    NumericArg::Text => UnconstrainedNumeric::Text,
                    NumericArg::Float => UnconstrainedNumeric::Float,
                },
                portable: self.portable_types,
            },
            infinity: match self.infinity {
                InfinityArg::Error => Infinity::Error,
                InfinityArg::Null => Infinity::Null,
                InfinityArg::Clamp => Infinity::Clamp,
            },
            max_file_bytes: self.max_file_size.max(1),
            max_file_rows: self.max_file_rows.max(1),
            dry_run: self.dry_run,
            fail_fast: self.fail_fast,
            live: std::io::IsTerminal::is_terminal(&std::io::stderr())
                && self.log_format != Some(LogFormat::Json),
            run_log: self.run_log_path(env),
            incremental: self.incremental.clone(),
            keys: self.key.clone(),
            lag: self.incremental_lag,
            reset: match self.full {
                true => vec![Pattern::parse("*.*")],
                false => Pattern::list(&self.reset_watermarks),
            },
            only: None,
            resumes: None,
            argv: Vec::new(),
            shard: None,
            snapshot_id: self.snapshot_id.clone(),
        }
    }

    fn run_log_path(&self, env: &[(String, String)]) -> Option<String> {
        match self.run_log.as_deref() {
            Some("none") => None,
            Some(p) => Some(p.to_string()),
            None => crate::runlog::RunLog::default_path(env).map(|p| p.display().to_string()),
        }
    }
}

/// The stored arguments of a run, parsed again.
#[derive(clap::Parser, Debug)]
#[command(name = "inlet export")]
struct StoredArgs {
    #[command(flatten)]
    args: ExportArgs,
}

/// A run picked up by `--resume`.
struct Resume {
    run_id: String,
    /// Its tables that did not finish.
    remaining: Vec<String>,
    /// Its arguments, as recorded.
    argv: Vec<String>,
}

/// `inlet export …` as given, every PostgreSQL URL (the source, a shared
/// run log) without its password: a resumed run takes it from PGPASSWORD,
/// ~/.pgpass, or --source again.
fn recorded_argv() -> Vec<String> {
    redacted_args(std::env::args().skip_while(|a| a != "export").skip(1))
}

fn redacted_args(args: impl Iterator<Item = String>) -> Vec<String> {
    use crate::source::postgres::connect::without_password;
    let strip = |a: &str| {
        let (flag, value) = match a.split_once('=').filter(|(f, _)| f.starts_with("--")) {
            Some((f, v)) => (Some(f), v),
            None => (None, a),
        };
        let looks_pg = |v: &str| {
            v.starts_with("postgresql://")
                || v.starts_with("postgres://")
                || v.contains("password=")
        };
        let value = match looks_pg(value) {
            true => without_password(value).0,
            false => value.to_string(),
        };
        flag.map_or(value.clone(), |f| format!("{f}={value}"))
    };
    // a resume records the arguments of the run it resumes instead
    args.filter(|a| a != "--resume" && !a.starts_with("--resume="))
        .map(|a| strip(&a))
        .collect()
}

/// The arguments of the run `a --resume` picks up, with the tables it did
/// not finish; `a`'s --source, --run-log and log flags win.
/// None: nothing to resume (said in the log).
fn resumed(
    a: ExportArgs,
    env: &[(String, String)],
) -> Result<Option<(ExportArgs, Resume)>, String> {
    init_logging(&a.common(), &LoadConfig::default());
    resume_args(a, env)
}

fn resume_args(
    a: ExportArgs,
    env: &[(String, String)],
) -> Result<Option<(ExportArgs, Resume)>, String> {
    let which = a.resume.clone().filter(|r| !r.is_empty());
    let path = a
        .run_log_path(env)
        .ok_or("--resume needs the run log, and --run-log is none (or HOME is not set)")?;
    if !crate::runlog::RunLog::exists(&path) {
        // the run was stopped before it logged anything (or the log is elsewhere)
        tracing::warn!(
            "no run log at {path}, so no run to resume (if the run used another --run-log, pass it)"
        );
        return Ok(None);
    }
    let log = crate::runlog::RunLog::open(&path, env).map_err(|e| e.to_string())?;
    let found = log.resumable(which.as_deref()).map_err(|e| e.to_string())?;
    let run = match (found, &which) {
        (Some(r), _) if r.status != "succeeded" => r,
        (Some(r), _) => {
            tracing::info!("run {} completed; nothing to resume", r.run_id);
            return Ok(None);
        }
        (None, Some(id)) => {
            return Err(format!(
                "--resume: no run {id} in {} (`inlet runs` lists them)",
                log.path()
            ));
        }
        (None, None) => {
            tracing::info!(
                "every run in {} completed (or was resumed to completion); nothing to resume",
                log.path()
            );
            return Ok(None);
        }
    };
    still_running(&run)?;
    let argv = strings(&run.settings["argv"]).ok_or_else(|| {
        format!(
            "--resume: run {} recorded no arguments (an older inlet ran it)",
            run.run_id
        )
    })?;
    let stored = <StoredArgs as clap::Parser>::try_parse_from(
        std::iter::once("inlet export".to_string()).chain(argv.iter().cloned()),
    )
    .map_err(|e| {
        format!(
            "--resume: the arguments of run {} no longer parse: {e}",
            run.run_id
        )
    })?;
    let mut b = stored.args;
    if a.source.is_some() {
        b.source = a.source;
        b.source_db_auth_id = None;
    }
    tracing::info!(
        "resuming run {} with its arguments: {}",
        run.run_id,
        argv.join(" ")
    );
    b.run_log = a.run_log;
    b.log_format = a.log_format.or(b.log_format);
    b.log_level = a.log_level.or(b.log_level);
    let tables = strings(&run.settings["tables"]).unwrap_or_default();
    let remaining = tables
        .into_iter()
        .filter(|t| !run.finished.contains(t))
        .collect();
    Ok(Some((
        b,
        Resume {
            run_id: run.run_id,
            remaining,
            argv,
        },
    )))
}

/// A JSON array of strings (None: not an array).
fn strings(v: &Value) -> Option<Vec<String>> {
    let items = v.as_array()?.iter();
    Some(items.filter_map(|x| x.as_str().map(String::from)).collect())
}

/// A run that is still running on this machine is not resumed.
fn still_running(run: &crate::runlog::Resumable) -> Result<(), String> {
    let pid = run.settings["pid"].as_u64();
    let same_host = run.settings["host"].as_str() == Some(crate::runlog::host().as_str());
    match pid {
        Some(p)
            if run.status == "running"
                && same_host
                && p != u64::from(std::process::id())
                && std::path::Path::new(&format!("/proc/{p}")).exists() =>
        {
            Err(format!(
                "--resume: run {} is still running (pid {p}); wait for it, or stop it first",
                run.run_id
            ))
        }
        _ => Ok(()),
    }
}

/// Runs `inlet export`.
pub fn export(a: ExportArgs) -> ExitCode {
    let env = super::env_pairs();
    let (a, resume) = match a.resume.is_some() {
        false => (a, None),
        true => match resumed(a, &env) {
            Ok(Some((b, r))) => (b, Some(r)),
            Ok(None) => return ExitCode::from(EXIT_OK),
            Err(e) => return fail(EXIT_CONFIG, e),
        },
    };
    let cfg = match a.config(&env) {
        Ok(c) => c,
        Err(e) => {
            init_logging(&a.common(), &LoadConfig::default());
            return fail(EXIT_CONFIG, e);
        }
    };
    let source = match a.source(&env) {
        Ok(s) => s,
        Err(e) => return fail(exit_code(e.failure()), e),
    };
    let json = a.log_format == Some(LogFormat::Json);
    let argv = recorded_argv();
    let mut opts = a.options(source, &env);
    opts.shard = a
        .shard
        .zip(a.export_id.clone())
        .map(|((k, n), id)| crate::export::shard::Shard { k, n, id });
    opts.argv = argv;
    if let Some(r) = resume {
        if r.remaining.is_empty() {
            tracing::info!(
                "run {}: every table finished before it stopped; nothing to resume",
                r.run_id
            );
            return ExitCode::from(EXIT_OK);
        }
        tracing::info!(
            "resuming run {}: {} tables it did not finish ({})",
            r.run_id,
            r.remaining.len(),
            r.remaining.join(", ")
        );
        opts.argv = r.argv;
        opts.only = Some(r.remaining);
        opts.resumes = Some(r.run_id);
    }
    match export::run(&cfg, &opts) {
        Ok(summary) => {
            if !opts.dry_run {
                print_summary(&summary, json);
            }
            ExitCode::from(EXIT_OK)
        }
        Err(ExportError::Failed {
            failed,
            total,
            summary,
        }) => {
            print_summary(&summary, json);
            fail(
                EXIT_TABLES,
                format!(
                    "{} of {total} tables failed: {}",
                    failed.len(),
                    failed.join(", ")
                ),
            )
        }
        Err(e) => fail(exit_code(e.failure()), e),
    }
}

fn print_summary(s: &export::Summary, json: bool) {
    match json {
        true => println!("{}", serde_json::to_string(s).unwrap_or_default()),
        false => print!("{}", s.render()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_arguments_keep_no_password() {
        let args = [
            "--source",
            "postgresql://u:s3cret@h/db?sslmode=require",
            "--run-log=postgres://v:hunter2@h/log",
            "-i",
            "public.*",
            "--resume",
        ];
        let got = redacted_args(args.iter().map(|s| s.to_string()));
        assert_eq!(
            got,
            [
                "--source",
                "postgresql://u@h/db?sslmode=require",
                "--run-log=postgres://v@h/log",
                "-i",
                "public.*"
            ]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
    }
}
