//! What `inlet export` needs of a database, as a trait: a snapshot held for
//! the run, the relations it shows, connections that join it, and work units
//! read into Arrow batches. PostgreSQL implements it
//! ([`super::postgres::Postgres`]); a second database (MySQL, SQL Server,
//! Oracle) is one more module that does, and `export` does not change.

use std::future::Future;
use std::time::Instant;

use arrow_array::RecordBatch;
use tokio::sync::mpsc;

use super::{Progress, ReadUnit, Relation};

/// How the export treats a failure of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The source's settings are wrong (its URL, TLS settings).
    Config,
    /// Reading the unit again on a new connection, in the same snapshot, may
    /// succeed: the connection was lost, the server is restarting, a standby
    /// cancelled the query.
    Transient,
    /// The table's writer stopped taking rows; its own error is the one to report.
    SinkGone,
    /// Anything else: unreachable, login refused, a privilege missing, a
    /// value without an exact form.
    Other,
}

/// An error of a [`Database`]: its message says what happened and what to do.
pub trait SourceError: std::error::Error + Send + Sync + 'static {
    /// How the export treats it.
    fn kind(&self) -> ErrorKind;
}

/// A snapshot held open; dropping it releases it.
pub trait Snapshot: Send + Sync + 'static {
    /// The id other connections join it by.
    fn id(&self) -> &str;
    /// When it was taken.
    fn started(&self) -> Instant;
}

/// A database `inlet export` reads.
pub trait Database: std::fmt::Display + Send + Sync + 'static {
    /// Why an operation failed.
    type Error: SourceError;
    /// The snapshot a run (or a table) holds.
    type Snapshot: Snapshot;
    /// A connection inside a snapshot.
    type Connection: Send + Sync + 'static;

    /// Opens a connection and holds a snapshot on it.
    fn snapshot(&self) -> impl Future<Output = Result<Self::Snapshot, Self::Error>> + Send;

    /// Every relation visible in `snapshot` (without columns yet).
    fn relations(
        &self,
        snapshot: &Self::Snapshot,
    ) -> impl Future<Output = Result<Vec<Relation>, Self::Error>> + Send;

    /// Fills in a chosen relation's columns (how each is read) and leaves.
    fn describe(
        &self,
        snapshot: &Self::Snapshot,
        rel: &mut Relation,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The highest value of `column` in `snapshot` (an incremental run's
    /// upper bound), as text a literal of the column's type reads back
    /// exactly; None when the column holds no value.
    fn high(
        &self,
        snapshot: &Self::Snapshot,
        rel: &Relation,
        column: &str,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// True when an index can serve a range of `column`.
    fn indexed(
        &self,
        snapshot: &Self::Snapshot,
        rel: &Relation,
        column: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// A line for the log: how connections are protected.
    fn security(&self, snapshot: &Self::Snapshot) -> impl Future<Output = String> + Send;

    /// A new connection inside the snapshot `id`, whose reads of a unit
    /// return its rows in the same order every time (a retried unit skips
    /// the rows an earlier attempt delivered).
    fn join(&self, id: &str) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// Reads `unit` of `rel` into batches sent to `tx`, dropping the first
    /// `*delivered` rows and counting the ones sent; returns the unit's rows.
    fn read(
        &self,
        conn: &Self::Connection,
        rel: &Relation,
        unit: &ReadUnit,
        tx: &mpsc::Sender<RecordBatch>,
        progress: &Progress,
        delivered: &mut u64,
    ) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}
