//! Sources of Arrow batches other than Singer. Databases: what a database
//! holds (relations, columns, sizes) and reading it as Arrow RecordBatches
//! inside one consistent snapshot; and [`arrow`]: Arrow IPC streams
//! (`inlet write`).
//! `inlet export` is written against the [`Database`] trait; PostgreSQL is
//! the first implementation, and another database is one more module that
//! fills in the same [`Relation`]s and reads the same [`ReadUnit`]s. (Column
//! types are PostgreSQL's description today, [`postgres::types::ColumnType`];
//! a second database brings its own into [`SourceColumn`].)

pub mod arrow;
mod database;
pub mod postgres;

pub use database::{Database, ErrorKind, Snapshot, SourceError};

use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::{Field, Schema, SchemaRef};

use postgres::types::ColumnType;

/// What kind of relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    /// An ordinary table.
    Table,
    /// A partitioned table (its rows live in its leaf partitions).
    Partitioned,
    /// A view.
    View,
    /// A materialized view.
    MaterializedView,
    /// A foreign table.
    Foreign,
}

impl RelationKind {
    /// Views and foreign tables are exported only when asked for.
    pub fn is_table(self) -> bool {
        matches!(self, RelationKind::Table | RelationKind::Partitioned)
    }

    /// Its name in messages.
    pub fn label(self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::Partitioned => "partitioned table",
            RelationKind::View => "view",
            RelationKind::MaterializedView => "materialized view",
            RelationKind::Foreign => "foreign table",
        }
    }
}

/// A relation of the source, as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Relation {
    /// Its oid.
    pub oid: u32,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: RelationKind,
    /// Size in pages (blocks) on disk, read from the file size, not statistics.
    pub pages: u64,
    /// Estimated rows (`reltuples`; negative when never analysed).
    pub tuples: f64,
    /// The user may SELECT from it.
    pub readable: bool,
    /// Leaf partitions (a partitioned table).
    pub leaves: Vec<Relation>,
    /// Columns, in order.
    pub columns: Vec<SourceColumn>,
    /// Primary key columns, in key order (empty: none).
    pub primary_key: Vec<String>,
}

impl Relation {
    /// `schema.name`, as users write it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The Arrow schema of its rows.
    pub fn arrow_schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|c| c.ty.ty.field(&c.name))
            .collect();
        std::sync::Arc::new(Schema::new(fields))
    }

    /// Pages of the relation and its leaves.
    pub fn total_pages(&self) -> u64 {
        self.pages + self.leaves.iter().map(|l| l.pages).sum::<u64>()
    }

    /// Estimated rows of the relation and its leaves (0 when unknown).
    pub fn estimated_rows(&self) -> u64 {
        let own = self.tuples.max(0.0) as u64;
        own + self
            .leaves
            .iter()
            .map(|l| l.tuples.max(0.0) as u64)
            .sum::<u64>()
    }
}

/// A column and how it is read.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    /// Name.
    pub name: String,
    /// Declared NOT NULL.
    pub not_null: bool,
    /// Type, cast and Arrow type.
    pub ty: ColumnType,
}

/// Rows and bytes read so far (shared by a table's readers and the
/// progress display).
#[derive(Debug, Default)]
pub struct Progress {
    rows: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// Counts decoded rows.
    pub fn add_rows(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts bytes received.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Rows so far.
    pub fn rows(&self) -> u64 {
        self.rows.load(Ordering::Relaxed)
    }

    /// Bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// How the connections of a run see the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// One snapshot for the whole run (the default).
    #[default]
    One,
    /// One per table: a shorter xmin horizon on a busy primary.
    PerTable,
}

/// A part of a relation to read: all of it, or a range of its blocks
/// (PostgreSQL: ctid pages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadUnit {
    /// Schema of the relation read (a leaf partition, for partitioned tables).
    pub schema: String,
    /// Name of the relation read.
    pub name: String,
    /// `ONLY`: inheritance children are tables of their own.
    pub only: bool,
    /// Blocks `[start, end)`; `end` None: to the end of the relation.
    pub blocks: Option<(u64, Option<u64>)>,
    /// Only the rows between two watermarks (an incremental export).
    pub filter: Option<RowFilter>,
}

/// The kinds of column a watermark can be kept on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatermarkKind {
    /// timestamp without time zone; lag in seconds.
    Timestamp,
    /// timestamp with time zone; lag in seconds.
    TimestampTz,
    /// date; lag in days.
    Date,
    /// smallint, integer or bigint; lag in units.
    Integer,
}

impl WatermarkKind {
    /// The kind of a column, from its catalog type name (None: not a
    /// watermark type).
    pub fn of(pg_name: &str) -> Option<WatermarkKind> {
        match pg_name {
            "timestamp" => Some(WatermarkKind::Timestamp),
            "timestamptz" => Some(WatermarkKind::TimestampTz),
            "date" => Some(WatermarkKind::Date),
            "int2" | "int4" | "int8" => Some(WatermarkKind::Integer),
            _ => None,
        }
    }
}

/// `low < column <= high`: the rows of one incremental run. Values are the
/// database's own text of the column's type (as `max(column)::text` gives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFilter {
    /// The watermark column.
    pub column: String,
    /// Its kind.
    pub kind: WatermarkKind,
    /// The lower bound (None: from the first row).
    pub low: Option<LowBound>,
    /// The upper bound, fixed when the run began (None: the column holds
    /// no value yet).
    pub high: Option<String>,
    /// Rows whose column is NULL are taken too (a run without a lower bound).
    pub nulls: bool,
}

/// Where an incremental run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowBound {
    /// The last run's watermark, or the user's start value.
    pub value: String,
    /// `>=` (a start value) rather than `>` (a watermark).
    pub inclusive: bool,
    /// Re-read this far below it (seconds, days or units, by kind).
    pub lag: u64,
}
