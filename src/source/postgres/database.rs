//! PostgreSQL as a [`Database`]: the run's snapshot is exported by a first
//! connection (`pg_export_snapshot()`), readers import it, units are read
//! with binary COPY.

use std::time::Instant;

use arrow_array::RecordBatch;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::tls::SslMode;
use super::types::TypeOptions;
use super::{PgError, ReadSettings, Snapshot, Source, catalog};
use crate::source::{
    self, Database, ErrorKind, Progress, ReadUnit, Relation, RelationKind, SourceError,
};

/// A PostgreSQL source with how its columns are typed and decoded.
#[derive(Debug, Clone)]
pub struct Postgres {
    source: Source,
    read: ReadSettings,
    types: TypeOptions,
    /// A snapshot exported by a session the user holds open (one snapshot
    /// for several processes).
    external: Option<String>,
}

impl Postgres {
    /// `source`, read with `read` and typed with `types`.
    pub fn new(source: Source, read: ReadSettings, types: TypeOptions) -> Self {
        Postgres {
            source,
            read,
            types,
            external: None,
        }
    }

    /// Reads inside snapshot `id`, exported by another session
    /// (`pg_export_snapshot()`), instead of taking one.
    pub fn with_snapshot(mut self, id: Option<String>) -> Self {
        self.external = id;
        self
    }
}

impl std::fmt::Display for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.source.fmt(f)
    }
}

impl source::Snapshot for Snapshot {
    fn id(&self) -> &str {
        &self.id
    }

    fn started(&self) -> Instant {
        self.started
    }
}

impl SourceError for PgError {
    fn kind(&self) -> ErrorKind {
        match self {
            PgError::Url(..) | PgError::Tls { .. } => ErrorKind::Config,
            PgError::SinkGone(_) => ErrorKind::SinkGone,
            e if e.is_transient() => ErrorKind::Transient,
            _ => ErrorKind::Other,
        }
    }
}

impl Database for Postgres {
    type Error = PgError;
    type Snapshot = Snapshot;
    type Connection = Client;

    async fn snapshot(&self) -> Result<Snapshot, PgError> {
        match &self.external {
            Some(id) => Ok(Snapshot {
                client: super::join_snapshot(&self.source, id)
                    .await
                    .map_err(|cause| PgError::External {
                        id: id.clone(),
                        cause: Box::new(cause),
                    })?,
                id: id.clone(),
                started: Instant::now(),
            }),
            None => super::export_snapshot(&self.source).await,
        }
    }

    async fn relations(&self, snapshot: &Snapshot) -> Result<Vec<Relation>, PgError> {
        catalog::relations(&snapshot.client).await
    }

    async fn describe(&self, snapshot: &Snapshot, rel: &mut Relation) -> Result<(), PgError> {
        rel.columns = catalog::columns(&snapshot.client, rel.oid, self.types).await?;
        rel.primary_key = catalog::primary_key(&snapshot.client, rel.oid).await?;
        if rel.kind == RelationKind::Partitioned {
            rel.leaves = catalog::leaves(&snapshot.client, rel).await?;
        }
        Ok(())
    }

    async fn security(&self, snapshot: &Snapshot) -> String {
        let verified = match self.source.ssl_mode() {
            SslMode::VerifyFull => "certificate and host name verified",
            SslMode::VerifyCa => "certificate verified, not the host name",
            _ => "certificate not verified (sslmode=verify-full checks it)",
        };
        match super::tls_version(&snapshot.client).await {
            Some(v) => format!("source connections use {v}, {verified}"),
            None => "source connections are not encrypted (sslmode=require insists on TLS)".into(),
        }
    }

    async fn high(
        &self,
        snapshot: &Snapshot,
        rel: &Relation,
        column: &str,
    ) -> Result<Option<String>, PgError> {
        super::watermark_high(&snapshot.client, rel, column).await
    }

    async fn indexed(
        &self,
        snapshot: &Snapshot,
        rel: &Relation,
        column: &str,
    ) -> Result<bool, PgError> {
        catalog::has_leading_index(&snapshot.client, rel.oid, column).await
    }

    async fn join(&self, id: &str) -> Result<Client, PgError> {
        super::join_snapshot(&self.source, id).await
    }

    async fn read(
        &self,
        conn: &Client,
        rel: &Relation,
        unit: &ReadUnit,
        tx: &mpsc::Sender<RecordBatch>,
        progress: &Progress,
        delivered: &mut u64,
    ) -> Result<u64, PgError> {
        super::read_unit(conn, rel, unit, self.read, tx, progress, delivered).await
    }
}
