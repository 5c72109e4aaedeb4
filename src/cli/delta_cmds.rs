//! `inlet state | history | optimize | vacuum TABLE_URI`: looking after Delta
//! tables. Credentials and endpoints come from the same `--config` files and
//! environment as `inlet load`.

use std::process::ExitCode;

use clap::Args;
use deltalake::DeltaTable;
use futures::TryStreamExt;

use super::{CommonArgs, EXIT_CONFIG, EXIT_DESTINATION, EXIT_OK, fail, load_config};
use crate::storage::{Location, Store, redact};
use crate::table::delta::{open_table, table_url};

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
    let url = table_url(&store, "").map_err(|e| fail(EXIT_CONFIG, e))?;
    let table = store.block_on(open_table(&store, &url)).map_err(|e| {
        fail(
            EXIT_DESTINATION,
            format!("table {}: {}", t.table, redact(&e)),
        )
    })?;
    if table.version().is_none() {
        return Err(fail(
            EXIT_DESTINATION,
            format!("{} is not a Delta table (no _delta_log there)", t.table),
        ));
    }
    Ok((store, table))
}

/// Prints the Singer STATE stored in the newest commit that has one.
pub fn state(t: TableArgs) -> ExitCode {
    let (store, table) = match open(&t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let found = store.block_on(async {
        let mut commits = table.history(None);
        while let Some(c) = commits.try_next().await.map_err(|e| e.to_string())? {
            if let Some(s) = c.info.get("inlet.state") {
                return Ok(Some(s.clone()));
            }
        }
        Ok::<_, String>(None)
    });
    match found {
        Ok(Some(s)) => {
            println!("{s}");
            ExitCode::from(EXIT_OK)
        }
        Ok(None) => fail(
            EXIT_DESTINATION,
            format!("no commit of {} carries an inlet STATE", t.table),
        ),
        Err(e) => fail(
            EXIT_DESTINATION,
            format!("reading the history of {}: {}", t.table, redact(&e)),
        ),
    }
}

/// Prints the newest commits, one JSON object per line.
pub fn history(a: HistoryArgs) -> ExitCode {
    let (store, table) = match open(&a.t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let r = store.block_on(async {
        let mut out = Vec::new();
        let mut commits = table.history(Some(a.limit));
        while let Some(c) = commits.try_next().await.map_err(|e| e.to_string())? {
            out.push(serde_json::to_value(&c).map_err(|e| e.to_string())?);
        }
        Ok::<_, String>(out)
    });
    match r {
        Ok(commits) => {
            for c in commits {
                println!("{c}");
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(
            EXIT_DESTINATION,
            format!("reading the history of {}: {}", a.t.table, redact(&e)),
        ),
    }
}

/// Compacts small files (or z-orders them).
pub fn optimize(a: OptimizeArgs) -> ExitCode {
    use deltalake::operations::optimize::OptimizeType;
    let (store, table) = match open(&a.t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let r = store.block_on(async {
        let mut b = table.optimize().with_type(if a.zorder.is_empty() {
            OptimizeType::Compact
        } else {
            OptimizeType::ZOrder(a.zorder.clone())
        });
        if let Some(n) = a.target_size.and_then(std::num::NonZeroU64::new) {
            b = b.with_target_size(n);
        }
        b.await.map_err(|e| e.to_string())
    });
    match r {
        Ok((t, m)) => {
            println!(
                "{}",
                serde_json::json!({
                    "table": a.t.table,
                    "version": t.version(),
                    "files_added": m.num_files_added,
                    "files_removed": m.num_files_removed,
                    "partitions_optimized": m.partitions_optimized,
                })
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(
            EXIT_DESTINATION,
            format!("optimize {}: {}", a.t.table, redact(&e)),
        ),
    }
}

/// Deletes data files no longer in the table and older than the retention.
pub fn vacuum(a: VacuumArgs) -> ExitCode {
    let (store, table) = match open(&a.t) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if a.retain_hours < 0 {
        return fail(EXIT_CONFIG, "--retain-hours must be 0 or more");
    }
    if a.retain_hours < 168 {
        tracing::warn!(
            "retaining only {} hours: readers of older versions (time travel, long queries) may fail",
            a.retain_hours
        );
    }
    let r = store.block_on(async {
        table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(a.retain_hours))
            .with_enforce_retention_duration(false)
            .with_dry_run(a.dry_run)
            .await
            .map_err(|e| e.to_string())
    });
    match r {
        Ok((_, m)) => {
            for f in &m.files_deleted {
                println!(
                    "{}{f}",
                    if a.dry_run {
                        "would delete "
                    } else {
                        "deleted "
                    }
                );
            }
            eprintln!(
                "{} file(s) {}",
                m.files_deleted.len(),
                if a.dry_run {
                    "would be deleted (dry run)"
                } else {
                    "deleted"
                }
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(
            EXIT_DESTINATION,
            format!("vacuum {}: {}", a.t.table, redact(&e)),
        ),
    }
}
