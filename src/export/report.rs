//! What an export did (a table per line at the end) and what it would do
//! (`--dry-run`).

use serde::Serialize;

use super::ExportOptions;
use super::units;
use crate::layout::{Layout, TableNames, safe_segment};
use crate::load::plan::Plan;
use crate::source::Relation;
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
            let status = match &t.error {
                None => "ok".to_string(),
                Some(e) => format!("FAILED: {e}"),
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
pub fn print_plan(relations: &[Relation], opts: &ExportOptions, plan: &Plan, layout: &Layout) {
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
    for r in relations {
        let names = TableNames {
            stream: r.qualified(),
            table: safe_segment(&r.name),
            schema: safe_segment(&r.schema),
        };
        let u = units::units(r, opts.parallel.max(1), opts.split_pages);
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
