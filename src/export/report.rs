//! What an export did (a table per line at the end) and what it would do
//! (`--dry-run`).

use serde::Serialize;

use super::ExportOptions;
use super::job::TableJob;
use super::units;
use crate::layout::{Layout, TableNames, safe_segment};
use crate::load::plan::Plan;
use crate::source::SnapshotMode;

/// One table's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// `schema.table`.
    pub table: String,
    /// Rows written (read, when it failed).
    pub rows: u64,
    /// Part files.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// An incremental table's bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark: Option<WatermarkReport>,
}

/// The bounds an incremental table was read between (as the run log keeps them).
pub use crate::runlog::WatermarkRow as WatermarkReport;

impl WatermarkReport {
    /// `updated_at (a, b]`, for the summary.
    pub fn describe(&self) -> String {
        let lag = match self.lag {
            0 => String::new(),
            n => format!(" − lag {n}"),
        };
        match &self.low {
            Some(l) => format!(
                "{} ({l}{lag}, {}]",
                self.column,
                self.high.as_deref().unwrap_or("—")
            ),
            None => format!(
                "{} reload up to {}",
                self.column,
                self.high.as_deref().unwrap_or("— (no value yet)")
            ),
        }
    }
}

impl TableReport {
    /// Not started because an earlier table failed under `--fail-fast`.
    pub fn skipped(table: String) -> TableReport {
        TableReport {
            table,
            rows: 0,
            files: 0,
            bytes: 0,
            seconds: 0.0,
            error: Some("skipped: an earlier table failed and --fail-fast is set".into()),
            watermark: None,
        }
    }
}

/// A run's outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Per table, in the order they were listed.
    pub tables: Vec<TableReport>,
    /// Wall time of the run.
    pub seconds: f64,
}

impl Summary {
    /// The summary table, as printed at the end of a run.
    pub fn render(&self) -> String {
        let width = self
            .tables
            .iter()
            .map(|t| t.table.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!(
            "{:<width$}  {:>12}  {:>6}  {:>10}  {:>8}  status\n",
            "table", "rows", "files", "bytes", "seconds"
        );
        for t in &self.tables {
            let status = match (&t.error, &t.watermark) {
                (None, None) => "ok".to_string(),
                (None, Some(w)) => format!("ok, {}", w.describe()),
                (Some(e), _) => format!("FAILED: {e}"),
            };
            out.push_str(&format!(
                "{:<width$}  {:>12}  {:>6}  {:>10}  {:>8.2}  {status}\n",
                t.table,
                t.rows,
                t.files,
                human_bytes(t.bytes),
                t.seconds
            ));
        }
        let rows: u64 = self.tables.iter().map(|t| t.rows).sum();
        let bytes: u64 = self.tables.iter().map(|t| t.bytes).sum();
        let files: u64 = self.tables.iter().map(|t| t.files).sum();
        out.push_str(&format!(
            "{:<width$}  {rows:>12}  {files:>6}  {:>10}  {:>8.2}\n",
            "total",
            human_bytes(bytes),
            self.seconds
        ));
        out
    }
}

/// `12.3 MB`.
pub fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// `--dry-run`: tables, sizes, ranges, snapshot mode and destination paths.
pub fn print_plan(tables: &[TableJob], opts: &ExportOptions, plan: &Plan, layout: &Layout) {
    println!("source:      {}", opts.source);
    println!("destination: {}", plan.destination);
    println!(
        "snapshot:    {}",
        match opts.snapshot {
            SnapshotMode::One => "one snapshot for the whole run",
            SnapshotMode::PerTable => "one snapshot per table",
        }
    );
    println!(
        "jobs:        {} tables at once, {} connections per table",
        opts.jobs, opts.parallel
    );
    println!();
    for t in tables {
        let r = &t.rel;
        let names = TableNames {
            stream: r.qualified(),
            table: safe_segment(&r.name),
            schema: safe_segment(&r.schema),
        };
        let filter = t.increment.as_ref().map(|i| i.filter(None));
        let u = units::units(r, opts.parallel.max(1), opts.split_pages, filter.as_ref());
        let pages = r.total_pages();
        println!(
            "{} ({}, {} columns): ~{} rows, {} on disk, {} unit{} → {}/",
            r.qualified(),
            r.kind.label(),
            r.columns.len(),
            r.estimated_rows(),
            human_bytes(pages * 8192),
            u.len(),
            if u.len() == 1 { "" } else { "s" },
            layout.table_dir(&names)
        );
        for unit in &u {
            let range = match unit.blocks {
                None => "all blocks".to_string(),
                Some((s, Some(e))) => format!("blocks {s}..{e}"),
                Some((s, None)) => format!("blocks {s}.."),
            };
            println!("    {}.{}: {range}", unit.schema, unit.name);
        }
        if let Some(i) = &t.increment {
            println!(
                "    incremental on {} up to {} (lag {}, key {}){}",
                i.column,
                i.high.as_deref().unwrap_or("— (no value yet)"),
                i.lag,
                match i.keys.is_empty() {
                    true => "none".to_string(),
                    false => i.keys.join(", "),
                },
                match i.indexed {
                    true => "",
                    false => "; NO INDEX leads with the column: each run scans the table",
                }
            );
        }
        for c in &r.columns {
            println!(
                "    column {} {} → {}",
                c.name,
                c.ty.pg_name,
                c.ty.ty.arrow()
            );
        }
    }
}
