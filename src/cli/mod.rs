//! Command-line parsing and the subcommands. Thin: it builds a config and
//! calls the library; errors become exit codes here.

mod about;
#[cfg(feature = "delta")]
mod delta_cmds;
mod export_cmd;
mod runs_cmd;
mod write_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{ConfigError, LoadConfig, Overlay};
use crate::load;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: unexpected internal error.
pub const EXIT_INTERNAL: u8 = 1;
/// Exit code: bad command-line usage (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: bad configuration.
pub const EXIT_CONFIG: u8 = 3;
/// Exit code: bad input (malformed line, invalid record under `fail`).
pub const EXIT_INPUT: u8 = 4;
/// Exit code: destination error (unreachable, refused, write failed).
pub const EXIT_DESTINATION: u8 = 5;
/// Exit code: the source database cannot be reached or read (`inlet export`).
pub const EXIT_SOURCE: u8 = 6;
/// Exit code: some tables failed, the others were exported (`inlet export`).
pub const EXIT_TABLES: u8 = 7;

const LOAD_HELP: &str = "\
Every setting can also be given as INLET_<KEY> or TARGET_INLET_<KEY> (the environment wins over
files); `inlet load --about` lists them all. The same binary named `target-inlet` runs `inlet load`.

Exit codes: 0 ok, 1 internal error, 2 usage, 3 config error, 4 input error (bad line, invalid
record under on_invalid_record=fail), 5 destination error.";

/// inlet: land Singer streams in a data lake.
#[derive(Parser, Debug)]
#[command(name = "inlet", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Singer target: read Singer messages on stdin, write files, print STATE on stdout.
    #[command(after_help = LOAD_HELP)]
    Load(LoadArgs),
    /// Export database tables (PostgreSQL) into files: one snapshot, binary COPY, exact types.
    #[command(after_help = export_cmd::EXPORT_HELP)]
    Export(Box<export_cmd::ExportArgs>),
    /// Write one table from an Arrow IPC stream (what `inlet.write` in Python uses).
    #[command(after_help = write_cmd::WRITE_HELP)]
    Write(Box<write_cmd::WriteArgs>),
    /// List earlier exports from the run log, or show one (`inlet runs show RUN_ID`).
    Runs(runs_cmd::RunsArgs),
    /// Write, read back, list and delete a probe object at the destination.
    Check(CommonArgs),
    /// Print the Singer STATE stored in a Delta table's newest commit that has one.
    #[cfg(feature = "delta")]
    State(delta_cmds::TableArgs),
    /// Print a Delta table's newest commits, one JSON object per line.
    #[cfg(feature = "delta")]
    History(delta_cmds::HistoryArgs),
    /// Compact a Delta table's small files (bin-packing, or --zorder).
    #[cfg(feature = "delta")]
    Optimize(delta_cmds::OptimizeArgs),
    /// Delete data files a Delta table no longer uses (--dry-run lists them).
    #[cfg(feature = "delta")]
    Vacuum(delta_cmds::VacuumArgs),
}

#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Config file (JSON or YAML); repeat it, later files win.
    #[arg(long = "config", short = 'c', value_name = "FILE")]
    config: Vec<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Log level on stderr (error, warn, info, debug, trace).
    #[arg(long)]
    log_level: Option<String>,
    /// LakeXpress-style auth file of named storage entries (JSON or YAML).
    #[arg(long, value_name = "FILE", requires = "target_storage_id")]
    auth: Option<PathBuf>,
    /// Entry of --auth to write to (LakeXpress layout by default).
    #[arg(
        long,
        value_name = "ID",
        requires = "auth",
        conflicts_with = "output_dir"
    )]
    target_storage_id: Option<String>,
    /// Local folder to write to (LakeXpress layout by default); the local
    /// alternative to --auth/--target-storage-id.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<String>,
    /// Folders inserted below the destination's base path (LakeXpress layout).
    #[arg(long, value_name = "PATH")]
    sub_path: Option<String>,
}

impl CommonArgs {
    /// Command-line values layered over files and environment.
    fn overlay(&self, env: &[(String, String)]) -> Result<Overlay, ConfigError> {
        let mut o = Overlay::default();
        let mut chosen = false;
        if let (Some(file), Some(id)) = (&self.auth, &self.target_storage_id) {
            o.values = crate::storage::auth::entry_config(file, id, env)?;
            chosen = true;
        }
        if let Some(dir) = &self.output_dir {
            o.values.insert("destination".into(), dir.clone().into());
            chosen = true;
        }
        if let Some(p) = &self.sub_path {
            o.values.insert("sub_path".into(), p.clone().into());
        }
        if chosen {
            o.defaults.insert("layout".into(), "lakexpress".into());
        }
        Ok(o)
    }
}

#[derive(Args, Debug)]
struct LoadArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Read Singer messages from this file instead of stdin (`.gz` is gunzipped).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Print the target's capabilities and settings, then exit.
    #[arg(long)]
    about: bool,
    /// Format of --about.
    #[arg(long, value_enum, default_value = "markdown", requires = "about")]
    format: AboutFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum AboutFormat {
    Json,
    Markdown,
}

/// Runs the CLI with `args` (argv0 `target-inlet` means `inlet load`).
pub fn main_with(mut args: Vec<std::ffi::OsString>) -> ExitCode {
    let invoked_as_target = args
        .first()
        .and_then(|a| {
            std::path::Path::new(a)
                .file_name()
                .map(|f| f.to_string_lossy().starts_with("target-inlet"))
        })
        .unwrap_or(false);
    if invoked_as_target {
        let wants_version = args.iter().skip(1).any(|a| a == "--version" || a == "-V");
        if !wants_version {
            args.insert(1, "load".into());
        }
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    match cli.command {
        Command::Load(a) => load_cmd(a),
        Command::Export(a) => export_cmd::export(*a),
        Command::Runs(a) => runs_cmd::runs(a),
        Command::Write(a) => write_cmd::write(*a),
        Command::Check(a) => check_cmd(a),
        #[cfg(feature = "delta")]
        Command::State(a) => delta_cmds::state(a),
        #[cfg(feature = "delta")]
        Command::History(a) => delta_cmds::history(a),
        #[cfg(feature = "delta")]
        Command::Optimize(a) => delta_cmds::optimize(a),
        #[cfg(feature = "delta")]
        Command::Vacuum(a) => delta_cmds::vacuum(a),
    }
}

/// The process environment, as config layers read it.
pub(crate) fn env_pairs() -> Vec<(String, String)> {
    std::env::vars().collect()
}

fn load_config(common: &CommonArgs) -> Result<LoadConfig, ConfigError> {
    load_config_with(common, serde_json::Map::new())
}

/// The config of `common`'s layers, with `set` (command-line settings) over them.
fn load_config_with(
    common: &CommonArgs,
    set: serde_json::Map<String, serde_json::Value>,
) -> Result<LoadConfig, ConfigError> {
    let env = env_pairs();
    let mut overlay = common.overlay(&env)?;
    overlay.values.extend(set);
    let (cfg, unknown) = LoadConfig::load_layers(&common.config, &env, &overlay)?;
    init_logging(common, &cfg);
    if !unknown.is_empty() {
        tracing::warn!(
            "ignoring config keys inlet does not know: {}",
            unknown.join(", ")
        );
    }
    Ok(cfg)
}

fn init_logging(common: &CommonArgs, cfg: &LoadConfig) {
    let level = common
        .log_level
        .clone()
        .unwrap_or_else(|| cfg.log_level.clone());
    let filter = tracing_subscriber::EnvFilter::try_from_env("INLET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!(
            // the AWS SDK logs raw responses (tokens) in its warnings; inlet's own errors say
            // what failed
            "inlet={level},warn,aws_config=error,aws_runtime=error,aws_smithy_runtime=error,aws_sdk_sts=error,deltalake_core=off,delta_kernel=off,buoyant_kernel=off"
        )));
    let json = common
        .log_format
        .map(|f| f == LogFormat::Json)
        .unwrap_or(cfg.log_format == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{msg}");
    ExitCode::from(code)
}

fn load_cmd(a: LoadArgs) -> ExitCode {
    if a.about {
        print!("{}", about::render(a.format == AboutFormat::Json));
        return ExitCode::from(EXIT_OK);
    }
    let cfg = match load_config(&a.common) {
        Ok(c) => c,
        Err(e) => {
            init_logging(&a.common, &LoadConfig::default());
            return fail(EXIT_CONFIG, e);
        }
    };
    let input = match &a.input {
        None => load::Input::stdin(),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) if p.extension().is_some_and(|e| e == "gz") => load::Input::steady(Box::new(
                flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)),
            )),
            // a FIFO can pause like a pipe; a regular file cannot
            Ok(f) if f.metadata().is_ok_and(|m| m.is_file()) => load::Input::steady(Box::new(f)),
            Ok(f) => load::Input::other(Box::new(f)),
            Err(e) => {
                return fail(
                    EXIT_INPUT,
                    format!("cannot open --input {}: {e}", p.display()),
                );
            }
        },
    };
    let started = std::time::Instant::now();
    match load::run(&cfg, input, Box::new(std::io::stdout())) {
        Ok(summary) => {
            let records: u64 = summary.streams.values().map(|s| s.records).sum();
            let rejected = summary.rejected;
            let files: u64 = summary.streams.values().map(|s| s.files).sum();
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                records,
                rejected,
                files,
                states = summary.states_emitted,
                seconds = format!("{secs:.2}"),
                "load finished: {records} records in {files} files ({:.0} records/s)",
                records as f64 / secs.max(1e-6)
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(exit_code(e.failure()), e),
    }
}

/// The one place failures become exit codes (`inlet load`).
fn exit_code(f: load::Failure) -> u8 {
    match f {
        load::Failure::Config => EXIT_CONFIG,
        load::Failure::Input => EXIT_INPUT,
        load::Failure::Destination => EXIT_DESTINATION,
        load::Failure::Internal => EXIT_INTERNAL,
    }
}

/// … and for `inlet export`.
fn export_exit_code(f: crate::export::Failure) -> u8 {
    use crate::export::Failure as F;
    match f {
        F::Config => EXIT_CONFIG,
        F::Source => EXIT_SOURCE,
        F::Destination => EXIT_DESTINATION,
        F::Tables => EXIT_TABLES,
        F::Internal => EXIT_INTERNAL,
    }
}

fn check_cmd(a: CommonArgs) -> ExitCode {
    let cfg = match load_config(&a) {
        Ok(c) => c,
        Err(e) => {
            init_logging(&a, &LoadConfig::default());
            return fail(EXIT_CONFIG, e);
        }
    };
    let dest = match cfg.destination() {
        Ok(d) => d,
        Err(e) => return fail(EXIT_CONFIG, e),
    };
    let store = match crate::storage::Store::open_with(&dest, &cfg.storage) {
        Ok(s) => s,
        Err(e) if e.is_config() => return fail(EXIT_CONFIG, e),
        Err(e) => return fail(EXIT_DESTINATION, e),
    };
    let steps = store.block_on(crate::storage::check(&store));
    for s in &steps {
        match &s.result {
            Ok(()) => println!("ok      {:<7} {}", s.step, store.display()),
            Err(e) if s.optional => println!("WARNING {:<7} {e}", s.step),
            Err(e) => println!("FAILED  {:<7} {e}", s.step),
        }
    }
    if steps.len() == 4 && steps.iter().all(|s| s.usable()) {
        println!(
            "destination {} ({}) is usable by inlet load",
            store.display(),
            store.location().backend()
        );
        ExitCode::from(EXIT_OK)
    } else {
        ExitCode::from(EXIT_DESTINATION)
    }
}
