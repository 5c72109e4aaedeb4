//! PostgreSQL: connections, one exported snapshot shared by every
//! connection of a run, the catalog, and binary COPY of a table or a ctid
//! block range decoded into RecordBatches.

pub mod catalog;
pub mod connect;
pub mod copy;
mod database;
pub mod decode;
pub mod numeric;
pub mod tls;
pub mod types;

use std::time::Instant;

use arrow_array::RecordBatch;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

pub use crate::source::{ReadUnit, SnapshotMode};
pub use connect::Source;
use copy::{BatchLimits, CopyDecoder, CopyError};
pub use database::Postgres;
use decode::Infinity;
use types::Cast;

use super::{RowFilter, SourceColumn, WatermarkKind};

/// What can go wrong reading PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL does not parse.
    #[error("source {0}: {1}")]
    Url(String, String),
    /// TLS cannot be set up as `sslmode` asks.
    #[error("source {db}: {source}")]
    Tls {
        /// The source, without password.
        db: String,
        /// Why.
        #[source]
        source: tls::TlsError,
    },
    /// The TLS handshake failed.
    #[error(
        "source {db}: TLS handshake failed ({cause}); with sslmode=verify-full the certificate must be signed by a root in sslrootcert (or the system's) and name the host you connect to; sslmode=verify-ca checks only the signature, require and prefer check nothing"
    )]
    Handshake {
        /// The source, without password.
        db: String,
        /// Why.
        #[source]
        cause: Cause,
    },
    /// Wrong user or password.
    #[error(
        "source {db}: login refused ({cause}); check the user and password (URL, PGPASSWORD, ~/.pgpass or the auth file)"
    )]
    Login {
        /// The source, without password.
        db: String,
        /// The server's answer.
        #[source]
        cause: Cause,
    },
    /// No such database.
    #[error("source {db}: {cause}; check the database name")]
    NoDatabase {
        /// The source.
        db: String,
        /// The server's answer.
        #[source]
        cause: Cause,
    },
    /// The server cannot be reached.
    #[error(
        "source {db}: cannot connect ({cause}); check host and port, and that the server accepts TCP connections from here"
    )]
    Connect {
        /// The source.
        db: String,
        /// Why.
        #[source]
        cause: Cause,
    },
    /// A catalog query failed.
    #[error("reading the catalog: {0}")]
    Catalog(#[source] Cause),
    /// The snapshot could not be exported or imported.
    #[error("sharing the snapshot: {0}; --snapshot per-table avoids sharing one")]
    Snapshot(#[source] Cause),
    /// The snapshot given by `--snapshot-id` cannot be imported.
    #[error(
        "snapshot {id} (--snapshot-id) cannot be imported: {cause}; the session that exported it must keep its transaction open until every process has started"
    )]
    External {
        /// The id.
        id: String,
        /// Why.
        #[source]
        cause: Box<PgError>,
    },
    /// The imported snapshot is not REPEATABLE READ (a pooler in between?).
    #[error(
        "a connection runs at isolation level '{0}' after importing the snapshot; connect to the server directly, not through a transaction pooler"
    )]
    Isolation(String),
    /// No SELECT privilege.
    #[error("table {table}: permission denied; grant SELECT on it to the export's user ({cause})")]
    Privilege {
        /// The table.
        table: String,
        /// The server's answer.
        #[source]
        cause: Cause,
    },
    /// Dropped during the run.
    #[error("table {table} no longer exists (dropped during the export?)")]
    Dropped {
        /// The table.
        table: String,
    },
    /// COPY failed (the connection was lost, a query was cancelled, …).
    #[error("table {table}: COPY failed: {cause}")]
    Copy {
        /// The table.
        table: String,
        /// Why.
        #[source]
        cause: Cause,
    },
    /// A value could not be decoded.
    #[error("table {table}: {source}")]
    Decode {
        /// The table.
        table: String,
        /// Why.
        #[source]
        source: CopyError,
    },
    /// A query of an incremental run failed (its bounds, its index).
    #[error("table {table}: {what}: {cause}")]
    Query {
        /// The table.
        table: String,
        /// What was asked.
        what: String,
        /// Why.
        #[source]
        cause: Cause,
    },
    /// Nobody takes the rows any more (the table's writer failed).
    #[error("table {0}: its writer stopped")]
    SinkGone(String),
}

/// A driver error, shown with the server's own message (the driver's
/// `Display` says only "db error").
#[derive(Debug)]
pub struct Cause(pub tokio_postgres::Error);

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(db) = self.0.as_db_error() {
            write!(f, "{}", db.message())?;
            if let Some(d) = db.detail() {
                write!(f, " ({d})")?;
            }
            return Ok(());
        }
        write!(f, "{}", self.0)?;
        let mut src = std::error::Error::source(&self.0);
        while let Some(e) = src {
            write!(f, ": {e}")?;
            src = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl PgError {
    fn catalog(e: tokio_postgres::Error) -> PgError {
        PgError::Catalog(Cause(e))
    }

    /// True when reading again on a new connection may succeed: the
    /// connection was lost or closed, the server terminated the backend or
    /// is restarting, or a hot standby cancelled the query for a recovery
    /// conflict.
    pub fn is_transient(&self) -> bool {
        let cause = match self {
            PgError::Copy { cause, .. } => cause,
            PgError::Connect { .. } => return true,
            _ => return false,
        };
        let e = &cause.0;
        if e.is_closed() {
            return true;
        }
        if let Some(code) = e.code() {
            return [
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::CONNECTION_EXCEPTION,
                SqlState::CONNECTION_FAILURE,
                SqlState::CONNECTION_DOES_NOT_EXIST,
            ]
            .contains(code);
        }
        // no answer from the server: the socket failed
        let mut src = std::error::Error::source(e);
        while let Some(x) = src {
            if x.is::<std::io::Error>() {
                return true;
            }
            src = x.source();
        }
        false
    }
}

/// An exported snapshot, alive while its holder's transaction is open.
pub struct Snapshot {
    /// The holder connection (also used for the catalog).
    pub client: Client,
    /// `pg_export_snapshot()`'s id.
    pub id: String,
    /// When it was taken.
    pub started: Instant,
}

/// Opens a REPEATABLE READ, read-only transaction and exports its snapshot.
pub async fn export_snapshot(source: &Source) -> Result<Snapshot, PgError> {
    let client = source.connect().await?;
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| PgError::Snapshot(Cause(e)))?;
    let row = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| PgError::Snapshot(Cause(e)))?;
    Ok(Snapshot {
        client,
        id: row.get(0),
        started: Instant::now(),
    })
}

/// The TLS version `client`'s connection uses, per the server (None: not
/// encrypted, or the server does not say).
pub async fn tls_version(client: &Client) -> Option<String> {
    let q = "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl";
    client
        .query_opt(q, &[])
        .await
        .ok()
        .flatten()
        .map(|r| r.get(0))
}

/// A connection inside snapshot `id` (checked to be REPEATABLE READ). Its
/// scans return a unit's rows in the same order every time: no synchronized
/// scans (which start where another scan of the table is) and no parallel
/// workers (the export runs its own ranges in parallel), so a retried unit
/// can skip the rows an earlier attempt delivered.
pub async fn join_snapshot(source: &Source, id: &str) -> Result<Client, PgError> {
    let client = source.connect().await?;
    let quoted = id.replace('\'', "''");
    client
        .batch_execute(&format!(
            "SET synchronize_seqscans = off; SET max_parallel_workers_per_gather = 0; \
             BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{quoted}'"
        ))
        .await
        .map_err(|e| PgError::Snapshot(Cause(e)))?;
    let level: String = client
        .query_one("SHOW transaction_isolation", &[])
        .await
        .map_err(|e| PgError::Snapshot(Cause(e)))?
        .get(0);
    if level != "repeatable read" {
        return Err(PgError::Isolation(level));
    }
    Ok(client)
}

/// `"name"` quoted as an SQL identifier.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The COPY statement of a unit.
pub fn copy_query(unit: &ReadUnit, columns: &[SourceColumn]) -> String {
    let cols: Vec<String> = columns
        .iter()
        .map(|c| {
            let q = quote_ident(&c.name);
            match c.ty.cast {
                Cast::None => q,
                Cast::Text => format!("{q}::text AS {q}"),
                Cast::TextArray => format!("{q}::text[] AS {q}"),
                Cast::Float8 => format!("{q}::float8 AS {q}"),
            }
        })
        .collect();
    let list = match cols.is_empty() {
        true => "NULL".to_string(),
        false => cols.join(", "),
    };
    let only = if unit.only { "ONLY " } else { "" };
    let rel = format!("{}.{}", quote_ident(&unit.schema), quote_ident(&unit.name));
    let mut conds = Vec::new();
    match unit.blocks {
        None => {}
        Some((0, Some(e))) => conds.push(format!("ctid < '({e},0)'::tid")),
        Some((s, None)) => conds.push(format!("ctid >= '({s},0)'::tid")),
        Some((s, Some(e))) => {
            conds.push(format!("ctid >= '({s},0)'::tid AND ctid < '({e},0)'::tid"));
        }
    }
    if let Some(f) = &unit.filter {
        conds.extend(watermark_filter(f));
    }
    let filter = match conds.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", conds.join(" AND ")),
    };
    format!("COPY (SELECT {list} FROM {only}{rel}{filter}) TO STDOUT (FORMAT binary)")
}

/// `value` as a literal of the watermark column's type.
fn watermark_literal(kind: WatermarkKind, value: &str) -> String {
    let ty = match kind {
        WatermarkKind::Timestamp => "timestamp",
        WatermarkKind::TimestampTz => "timestamptz",
        WatermarkKind::Date => "date",
        WatermarkKind::Integer => "int8",
    };
    format!("'{}'::{ty}", value.replace('\'', "''"))
}

/// The conditions of an incremental read: `low < column <= high`, the low
/// end moved down by the lag.
fn watermark_filter(f: &RowFilter) -> Vec<String> {
    let col = quote_ident(&f.column);
    let mut conds = Vec::new();
    if let Some(low) = &f.low {
        let lit = watermark_literal(f.kind, &low.value);
        let from = match (low.lag, f.kind) {
            (0, _) => lit,
            (lag, WatermarkKind::Timestamp | WatermarkKind::TimestampTz) => {
                format!("({lit} - interval '{lag} seconds')")
            }
            (lag, _) => format!("({lit} - {lag})"),
        };
        let op = if low.inclusive { ">=" } else { ">" };
        conds.push(format!("{col} {op} {from}"));
    }
    match (&f.high, f.nulls) {
        (Some(h), false) => conds.push(format!("{col} <= {}", watermark_literal(f.kind, h))),
        (Some(h), true) => conds.push(format!(
            "({col} <= {} OR {col} IS NULL)",
            watermark_literal(f.kind, h)
        )),
        (None, true) => conds.push(format!("{col} IS NULL")),
        // no value yet, and only values are wanted: no row
        (None, false) => conds.push("false".into()),
    }
    conds
}

/// The highest value of `column` in the snapshot, as text a literal of its
/// type reads back exactly (ISO dates, UTC offsets).
pub async fn watermark_high(
    client: &Client,
    rel: &crate::source::Relation,
    column: &str,
) -> Result<Option<String>, PgError> {
    let q = "SET LOCAL datestyle = 'ISO, YMD'; SET LOCAL timezone = 'UTC'";
    client.batch_execute(q).await.map_err(PgError::catalog)?;
    let sql = format!(
        "SELECT max({})::text FROM {}.{}",
        quote_ident(column),
        quote_ident(&rel.schema),
        quote_ident(&rel.name)
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|cause| PgError::Query {
            table: rel.qualified(),
            what: format!("reading max({column}), the run's upper bound"),
            cause: Cause(cause),
        })?;
    Ok(row.get(0))
}

/// How a unit's rows become batches.
#[derive(Debug, Clone, Copy)]
pub struct ReadSettings {
    /// Batch size.
    pub limits: BatchLimits,
    /// ±infinity dates and timestamps.
    pub infinity: Infinity,
}

/// Reads `unit` with binary COPY into batches sent to `tx`; `delivered`
/// counts the unit's rows sent so far, across attempts: a retry after a lost
/// connection reads the unit again inside the same snapshot and drops that
/// many rows first (a unit's rows come in the same order every time, see
/// [`join_snapshot`]). Returns the unit's rows.
pub async fn read_unit(
    client: &Client,
    rel: &crate::source::Relation,
    unit: &ReadUnit,
    settings: ReadSettings,
    tx: &mpsc::Sender<RecordBatch>,
    progress: &crate::source::Progress,
    delivered: &mut u64,
) -> Result<u64, PgError> {
    let name = rel.qualified();
    let table = name.as_str();
    let columns = &rel.columns;
    let schema = rel.arrow_schema();
    let query = copy_query(unit, columns);
    tracing::debug!(table, %query, skip = *delivered, "COPY");
    let copy_err = |cause: tokio_postgres::Error| match cause.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => PgError::Privilege {
            table: table.to_string(),
            cause: Cause(cause),
        },
        Some(c) if *c == SqlState::UNDEFINED_TABLE => PgError::Dropped {
            table: table.to_string(),
        },
        _ => PgError::Copy {
            table: table.to_string(),
            cause: Cause(cause),
        },
    };
    let stream = client.copy_out(&query).await.map_err(copy_err)?;
    let types = columns.iter().map(|c| c.ty.ty.clone()).collect();
    let mut decoder = CopyDecoder::new(schema, types, settings.limits, settings.infinity);
    let decode_err = |source| PgError::Decode {
        table: table.to_string(),
        source,
    };
    let mut skip = *delivered;
    let mut send = async |b: RecordBatch, delivered: &mut u64| {
        let n = b.num_rows() as u64;
        let b = match skip {
            0 => b,
            s if s >= n => {
                skip -= n;
                return Ok(());
            }
            s => {
                skip = 0;
                b.slice(s as usize, (n - s) as usize)
            }
        };
        let n = b.num_rows() as u64;
        tx.send(b)
            .await
            .map_err(|_| PgError::SinkGone(table.to_string()))?;
        *delivered += n;
        progress.add_rows(n);
        Ok::<(), PgError>(())
    };
    let mut out = Vec::new();
    futures::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(copy_err)?;
        progress.add_bytes(chunk.len() as u64);
        decoder.push(&chunk, &mut out).map_err(decode_err)?;
        for b in out.drain(..) {
            send(b, delivered).await?;
        }
    }
    if let Some(b) = decoder.finish().map_err(decode_err)? {
        send(b, delivered).await?;
    }
    Ok(*delivered)
}

#[cfg(test)]
mod tests {
    use super::types::{ColumnType, PgType};
    use super::*;

    #[test]
    fn incremental_reads_are_bounded_by_the_watermarks() {
        use crate::source::{LowBound, RowFilter, WatermarkKind};
        let f = |low: Option<LowBound>, high: Option<&str>, nulls| RowFilter {
            column: "up d".into(),
            kind: WatermarkKind::TimestampTz,
            low,
            high: high.map(String::from),
            nulls,
        };
        let w = LowBound {
            value: "2026-01-01 00:00:00+00".into(),
            inclusive: false,
            lag: 60,
        };
        assert_eq!(
            watermark_filter(&f(Some(w.clone()), Some("2026-02-01 00:00:00+00"), false)),
            [
                "\"up d\" > ('2026-01-01 00:00:00+00'::timestamptz - interval '60 seconds')",
                "\"up d\" <= '2026-02-01 00:00:00+00'::timestamptz"
            ]
        );
        // the first run takes the rows without a value too; no value yet and a watermark: none
        assert_eq!(
            watermark_filter(&f(None, Some("x'y"), true)),
            ["(\"up d\" <= 'x''y'::timestamptz OR \"up d\" IS NULL)"]
        );
        assert_eq!(
            watermark_filter(&f(Some(w), None, false)).last().unwrap(),
            "false"
        );
        let start = LowBound {
            value: "5".into(),
            inclusive: true,
            lag: 0,
        };
        let int = RowFilter {
            kind: WatermarkKind::Integer,
            ..f(Some(start), Some("9"), false)
        };
        assert_eq!(watermark_filter(&int)[0], "\"up d\" >= '5'::int8");
    }

    #[test]
    fn copy_queries_quote_names_cast_and_bound_ranges() {
        let cols = vec![
            SourceColumn {
                name: "Id".into(),
                not_null: true,
                ty: ColumnType {
                    ty: PgType::Int8,
                    cast: Cast::None,
                    pg_name: "int8".into(),
                },
            },
            SourceColumn {
                name: "addr".into(),
                not_null: false,
                ty: ColumnType {
                    ty: PgType::Text,
                    cast: Cast::Text,
                    pg_name: "inet".into(),
                },
            },
        ];
        let mut u = ReadUnit {
            schema: "public".into(),
            name: "My \"T\"".into(),
            only: true,
            blocks: Some((0, Some(128))),
            filter: None,
        };
        assert_eq!(
            copy_query(&u, &cols),
            "COPY (SELECT \"Id\", \"addr\"::text AS \"addr\" FROM ONLY \"public\".\"My \"\"T\"\"\" WHERE ctid < '(128,0)'::tid) TO STDOUT (FORMAT binary)"
        );
        u.blocks = Some((128, None));
        assert!(
            copy_query(&u, &cols)
                .ends_with("WHERE ctid >= '(128,0)'::tid) TO STDOUT (FORMAT binary)")
        );
        u.blocks = Some((128, Some(256)));
        assert!(copy_query(&u, &cols).contains("ctid >= '(128,0)'::tid AND ctid < '(256,0)'::tid"));
    }
}
