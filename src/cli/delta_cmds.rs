//! `inlet state | history | optimize | vacuum TABLE_URI`: looking after Delta
//! tables. Credentials and endpoints come from the same `--config` files and
//! environment as `inlet load`.

use std::process::ExitCode;

use clap::Args;
use deltalake::DeltaTable;

use super::{CommonArgs, EXIT_CONFIG, EXIT_DESTINATION, EXIT_OK, fail, load_config};
use crate::storage::{Location, Store};
use crate::table::delta::maintenance;

/// A table and the settings to reach it.
#[derive(Args, Debug)]
pub struct TableArgs {
    /// The table: a folder, s3://…, gs://…, az://…, abfss://…
    #[arg(value_name = "TABLE_URI")]
    table: String,
    #[command(flatten)]
    common: CommonArgs,
}

/// `inlet history` options.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    t: TableArgs,
    /// Newest commits to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
}

/// `inlet optimize` options.
#[derive(Args, Debug)]
pub struct OptimizeArgs {
    #[command(flatten)]
    t: TableArgs,
    /// Z-order by these columns (comma separated) instead of bin-packing.
    #[arg(long, value_delimiter = ',')]
    zorder: Vec<String>,
    /// Target file size in bytes.
    #[arg(long)]
    target_size: Option<u64>,
}

/// `inlet vacuum` options.
#[derive(Args, Debug)]
pub struct VacuumArgs {
    #[command(flatten)]
    t: TableArgs,
    /// Keep files removed from the table less than this many hours ago.
    #[arg(long, default_value_t = 168)]
    retain_hours: i64,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Opens the table or explains why not.
fn open(t: &TableArgs) -> Result<(Store, DeltaTable), ExitCode> {
    let cfg = load_config(&t.common).map_err(|e| fail(EXIT_CONFIG, e))?;
    // reading a table must not create a folder for a mistyped path
    if let Ok(Location::Local { path }) = Location::parse(&t.table)
        && !std::path::Path::new(&path).is_dir()
    {
        return Err(fail(
            EXIT_DESTINATION,
            format!("{}: no such folder", t.table),
        ));
    }
    let store = Store::open_with(&t.table, &cfg.storage).map_err(|e| match e.is_config() {
        true => fail(EXIT_CONFIG, e),
        false => fail(EXIT_DESTINATION, e),
    })?;
    let table = maintenance::open_existing(&store).map_err(|e| fail(EXIT_DESTINATION, e))?;
    Ok((store, table))
}

/// Prints the Singer STATE stored in the newest commit that has one.
pub fn state(t: TableArgs) -> ExitCode {
    let (store, table) = match open(&t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    match maintenance::last_state(&store, &table) {
        Ok(Some(s)) => {
            println!("{s}");
            ExitCode::from(EXIT_OK)
        }
        Ok(None) => fail(
            EXIT_DESTINATION,
            format!("no commit of {} carries an inlet STATE", t.table),
        ),
        Err(e) => fail(EXIT_DESTINATION, e),
    }
}

/// Prints the newest commits, one JSON object per line.
pub fn history(a: HistoryArgs) -> ExitCode {
    let (store, table) = match open(&a.t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    match maintenance::history(&store, &table, a.limit) {
        Ok(commits) => {
            for c in commits {
                println!("{c}");
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(EXIT_DESTINATION, e),
    }
}

/// Compacts small files (or z-orders them).
pub fn optimize(a: OptimizeArgs) -> ExitCode {
    let (store, table) = match open(&a.t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    match maintenance::optimize(&store, table, &a.zorder, a.target_size) {
        Ok(m) => {
            println!(
                "{}",
                serde_json::json!({
                    "table": a.t.table,
                    "version": m.version,
                    "files_added": m.files_added,
                    "files_removed": m.files_removed,
                    "partitions_optimized": m.partitions_optimized,
                })
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(EXIT_DESTINATION, e),
    }
}

/// Deletes data files no longer in the table and older than the retention.
pub fn vacuum(a: VacuumArgs) -> ExitCode {
    if a.retain_hours < 0 {
        return fail(EXIT_CONFIG, "--retain-hours must be 0 or more");
    }
    let (store, table) = match open(&a.t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if a.retain_hours < 168 {
        tracing::warn!(
            "retaining only {} hours: readers of older versions (time travel, long queries) may fail",
            a.retain_hours
        );
    }
    match maintenance::vacuum(&store, table, a.retain_hours, a.dry_run) {
        Ok(files) => {
            let verb = if a.dry_run { "would delete" } else { "deleted" };
            for f in &files {
                println!("{verb} {f}");
            }
            eprintln!(
                "{} file(s) {}",
                files.len(),
                if a.dry_run {
                    "would be deleted (dry run)"
                } else {
                    "deleted"
                }
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(EXIT_DESTINATION, e),
    }
}
