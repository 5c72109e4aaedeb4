//! The two databases a run log lives in, behind one small interface: the
//! log's SQL is written once, in the dialect SQLite and PostgreSQL share
//! (`$1` parameters, `ON CONFLICT … DO UPDATE`, BIGINT / DOUBLE PRECISION /
//! TEXT columns; `$n` numbered in order of first appearance, as SQLite
//! binds them), and each backend only runs it. In PostgreSQL the tables live
//! in the schema `inlet`.

use std::sync::Mutex;
use std::sync::mpsc;

use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// BIGINT.
    Int(i64),
    /// DOUBLE PRECISION.
    Real(f64),
    /// TEXT.
    Text(String),
}

impl Value {
    /// The text, if any.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The integer, if any.
    pub fn int(&self) -> Option<u64> {
        match self {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        }
    }

    /// The number, if any.
    pub fn real(&self) -> f64 {
        match self {
            Value::Real(f) => *f,
            Value::Int(i) => *i as f64,
            _ => 0.0,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl From<Option<&str>> for Value {
    fn from(s: Option<&str>) -> Value {
        s.map_or(Value::Null, Value::from)
    }
}

impl From<&Option<String>> for Value {
    fn from(s: &Option<String>) -> Value {
        s.as_deref().into()
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Real(f)
    }
}

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused (or could not be reached).
    #[error("{0}")]
    Postgres(String),
}

/// Where the log is.
pub enum Db {
    /// An embedded file.
    Sqlite(Mutex<rusqlite::Connection>),
    /// A shared PostgreSQL database, driven on a thread of its own (the
    /// log is written from inside the export's runtime).
    Postgres(Mutex<mpsc::Sender<PgJob>>),
}

/// Statements for the PostgreSQL thread, with where to send the result.
pub struct PgJob {
    batch: Vec<(String, Vec<Value>)>,
    reply: mpsc::Sender<Result<Vec<Vec<Value>>, DbError>>,
}

impl Db {
    /// Runs `statements` in one transaction; returns the last one's rows.
    pub fn run(&self, statements: Vec<(String, Vec<Value>)>) -> Result<Vec<Vec<Value>>, DbError> {
        match self {
            Db::Sqlite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                let tx = conn.transaction()?;
                let mut rows = Vec::new();
                for (sql, params) in &statements {
                    rows = sqlite_rows(&tx, sql, params)?;
                }
                tx.commit()?;
                Ok(rows)
            }
            Db::Postgres(tx) => {
                let (reply, rx) = mpsc::channel();
                let sent = tx.lock().unwrap_or_else(|p| p.into_inner()).send(PgJob {
                    batch: statements,
                    reply,
                });
                if sent.is_err() {
                    return Err(DbError::Postgres(
                        "the run log's connection is closed".into(),
                    ));
                }
                rx.recv()
                    .map_err(|_| DbError::Postgres("the run log's connection is closed".into()))?
            }
        }
    }

    /// Opens a PostgreSQL run log: a thread with its own runtime holds the
    /// connection and runs each job in a transaction.
    pub fn postgres(source: crate::source::postgres::Source) -> Result<Db, DbError> {
        let (tx, rx) = mpsc::channel::<PgJob>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), DbError>>();
        std::thread::Builder::new()
            .name("inlet-runlog".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(DbError::Postgres(e.to_string())));
                        return;
                    }
                };
                let client = match rt.block_on(source.connect()) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(DbError::Postgres(e.to_string())));
                        return;
                    }
                };
                // the log's tables live in a schema of their own, out of the way
                let schema = "CREATE SCHEMA IF NOT EXISTS inlet; SET search_path TO inlet";
                if let Err(e) = rt.block_on(client.batch_execute(schema)) {
                    let why = e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string());
                    let _ = ready_tx.send(Err(DbError::Postgres(format!(
                        "{why}; the run log needs a schema 'inlet' (CREATE SCHEMA inlet, or grant CREATE on the database)"
                    ))));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                let mut client = client;
                while let Ok(job) = rx.recv() {
                    let r = rt.block_on(pg_batch(&mut client, &job.batch));
                    let _ = job.reply.send(r);
                }
            })
            .map_err(|e| DbError::Postgres(e.to_string()))?;
        ready_rx
            .recv()
            .map_err(|_| DbError::Postgres("the run log's thread stopped".into()))??;
        Ok(Db::Postgres(Mutex::new(tx)))
    }
}

fn sqlite_rows(
    c: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Vec<Value>>, DbError> {
    use rusqlite::types::{ToSqlOutput, ValueRef};
    let bound: Vec<ToSqlOutput<'_>> = params
        .iter()
        .map(|v| match v {
            Value::Null => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Value::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
        .collect();
    let mut q = c.prepare(sql)?;
    let n = q.column_count();
    let mut rows = q.query(rusqlite::params_from_iter(bound.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            });
        }
        out.push(row);
    }
    Ok(out)
}

async fn pg_batch(
    client: &mut tokio_postgres::Client,
    batch: &[(String, Vec<Value>)],
) -> Result<Vec<Vec<Value>>, DbError> {
    let err = |e: tokio_postgres::Error| {
        DbError::Postgres(
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string()),
        )
    };
    let tx = client.transaction().await.map_err(err)?;
    let mut out = Vec::new();
    for (sql, params) in batch {
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|v| v as _).collect();
        let rows = tx.query(sql.as_str(), &refs).await.map_err(err)?;
        out = rows
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| match *r.columns()[i].type_() {
                        Type::INT8 | Type::INT4 | Type::INT2 => {
                            r.get::<_, Option<i64>>(i).map_or(Value::Null, Value::Int)
                        }
                        Type::FLOAT8 => r.get::<_, Option<f64>>(i).map_or(Value::Null, Value::Real),
                        _ => r
                            .get::<_, Option<String>>(i)
                            .map_or(Value::Null, Value::Text),
                    })
                    .collect()
            })
            .collect();
    }
    tx.commit().await.map_err(err)?;
    Ok(out)
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Real(f) => f.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
