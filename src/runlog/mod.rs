//! The run log of `inlet export`: every run, each of its tables (rows,
//! files, bytes, seconds, error) and each part file, in an embedded SQLite
//! file, or in a PostgreSQL database a team shares (`--run-log
//! postgresql://…`: the same tables, created on first use in the
//! connection's schema). A table is recorded the moment it is done, so a run that was killed
//! shows what it finished. No secret is stored: the source is recorded as
//! its redacted form (`postgresql://user@host:port/db`).
//!
//! Default file: `$XDG_DATA_HOME/inlet/runs.sqlite`, else
//! `~/.local/share/inlet/runs.sqlite`. Schema (version 2, created on first
//! use; a version 1 file gains `runs.resumes` and `run_watermarks`):
//!
//! ```text
//! meta(key PRIMARY KEY, value)                      -- schema_version
//! runs(run_id PRIMARY KEY, started_at, finished_at, status, source, destination,
//!      format, settings, tables, rows, bytes, error, resumes)
//! run_tables(run_id, table_name, status, rows, files, bytes, seconds, error)
//! run_files(run_id, table_name, path, rows, bytes)
//! run_watermarks(run_id, table_name, column_name, kind, low, lag, high)
//! ```
//! `status`: `running` (a run without `finished_at` was killed), `succeeded`,
//! `failed`; tables: `succeeded` or `failed`. `settings` holds the run's
//! arguments (`argv`, the source redacted) that `--resume` runs again;
//! `resumes` names the run a run resumed. `run_watermarks.kind` is `reload`
//! or `increment`; `low` is where it started (NULL: the first row), `high`
//! the watermark it recorded. The destination holds the watermark itself
//! (the Delta commit, the manifest); this is its history.

mod db;

use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;

use db::{Db, DbError, Value};

/// This machine's name (telling a killed run from one still running).
pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The schema this build writes.
const SCHEMA_VERSION: i64 = 2;

/// The schema, in the SQL SQLite and PostgreSQL share.
const SCHEMA: [&str; 6] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
  source TEXT NOT NULL, destination TEXT NOT NULL, format TEXT NOT NULL, settings TEXT NOT NULL,
  tables BIGINT, rows BIGINT, bytes BIGINT, error TEXT, resumes TEXT)",
    "CREATE TABLE IF NOT EXISTS run_tables (
  run_id TEXT NOT NULL REFERENCES runs(run_id), table_name TEXT NOT NULL, status TEXT NOT NULL,
  rows BIGINT NOT NULL, files BIGINT NOT NULL, bytes BIGINT NOT NULL,
  seconds DOUBLE PRECISION NOT NULL, error TEXT, PRIMARY KEY (run_id, table_name))",
    "CREATE TABLE IF NOT EXISTS run_files (
  run_id TEXT NOT NULL, table_name TEXT NOT NULL, path TEXT NOT NULL, rows BIGINT NOT NULL,
  bytes BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS run_watermarks (
  run_id TEXT NOT NULL, table_name TEXT NOT NULL, column_name TEXT NOT NULL, kind TEXT NOT NULL,
  low TEXT, lag BIGINT NOT NULL, high TEXT, PRIMARY KEY (run_id, table_name))",
    "CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at)",
];

/// Why the run log cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunLogError {
    /// Its folder cannot be made.
    #[error("run log {path}: cannot create its folder: {source}; pass --run-log FILE (or none)")]
    Folder {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database refused.
    #[error("run log {path}: {source}")]
    Sql {
        /// The file or URL (without password).
        path: String,
        /// Why.
        #[source]
        source: DbError,
    },
    /// A `postgresql://` run log's URL is wrong.
    #[error("run log {0}: {1}")]
    Url(String, String),
    /// Written by a newer inlet.
    #[error(
        "run log {path} has schema version {found}, newer than this inlet's {SCHEMA_VERSION}; upgrade inlet or pass another --run-log"
    )]
    Newer {
        /// The file.
        path: String,
        /// Its version.
        found: i64,
    },
}

/// A run as it starts.
#[derive(Debug, Clone)]
pub struct RunStart<'a> {
    /// The source, redacted.
    pub source: &'a str,
    /// The destination.
    pub destination: &'a str,
    /// parquet, csv, jsonl or delta.
    pub format: &'a str,
    /// The run's settings as JSON (no secrets).
    pub settings: serde_json::Value,
    /// The run this one resumes.
    pub resumes: Option<&'a str>,
}

/// The bounds an incremental table was read between, as recorded.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WatermarkRow {
    /// The column.
    pub column: String,
    /// `reload` or `increment`.
    pub kind: String,
    /// The watermark the run started from (None: the first row).
    pub low: Option<String>,
    /// Lag below it.
    pub lag: u64,
    /// The watermark recorded.
    pub high: Option<String>,
}

/// A run `--resume` can pick up.
#[derive(Debug, Clone)]
pub struct Resumable {
    /// Its id.
    pub run_id: String,
    /// Its status (running: killed, or still running elsewhere).
    pub status: String,
    /// Its settings.
    pub settings: serde_json::Value,
    /// Tables it finished.
    pub finished: Vec<String>,
}

/// One table's outcome, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct TableRow {
    /// `schema.table`.
    pub table: String,
    /// succeeded or failed.
    pub status: String,
    /// Rows written.
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
    pub watermark: Option<WatermarkRow>,
}

/// One part file, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct FileRow {
    /// `schema.table`.
    pub table: String,
    /// Path below the destination.
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A run, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Its id.
    pub run_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339; None: running, or killed.
    pub finished_at: Option<String>,
    /// running, succeeded or failed.
    pub status: String,
    /// The source, redacted.
    pub source: String,
    /// The destination.
    pub destination: String,
    /// The format.
    pub format: String,
    /// Tables in the run (when finished).
    pub tables: Option<u64>,
    /// Rows written (when finished).
    pub rows: Option<u64>,
    /// Bytes written (when finished).
    pub bytes: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The run it resumed.
    pub resumes: Option<String>,
}

/// A run with its tables and files.
#[derive(Debug, Clone, Serialize)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunRow,
    /// Its settings.
    pub settings: serde_json::Value,
    /// Its tables, as each finished.
    pub table_list: Vec<TableRow>,
    /// Its part files.
    pub files: Vec<FileRow>,
}

/// An open run log.
pub struct RunLog {
    db: Db,
    path: String,
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunLog({})", self.path)
    }
}

type Row = Vec<Value>;

fn text(r: &Row, i: usize) -> String {
    opt_text(r, i).unwrap_or_default()
}

fn opt_text(r: &Row, i: usize) -> Option<String> {
    r.get(i).and_then(Value::text)
}

fn num(r: &Row, i: usize) -> u64 {
    opt_num(r, i).unwrap_or(0)
}

fn opt_num(r: &Row, i: usize) -> Option<u64> {
    r.get(i).and_then(Value::int)
}

impl RunLog {
    /// The default file: `$XDG_DATA_HOME/inlet/runs.sqlite`, else
    /// `$HOME/.local/share/inlet/runs.sqlite` (`env` is the process environment).
    pub fn default_path(env: &[(String, String)]) -> Option<PathBuf> {
        let var = |k: &str| {
            env.iter()
                .find(|(n, v)| n == k && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        };
        var("XDG_DATA_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".local/share")))
            .map(|d| d.join("inlet").join("runs.sqlite"))
    }

    /// Whether `target` names a PostgreSQL run log.
    pub fn is_url(target: &str) -> bool {
        target.starts_with("postgresql://") || target.starts_with("postgres://")
    }

    /// Whether `target` exists (a URL is asked when opened).
    pub fn exists(target: &str) -> bool {
        Self::is_url(target) || std::path::Path::new(target).exists()
    }

    /// Opens a file (creating it, its folder and the schema when missing),
    /// or a `postgresql://` database (creating the tables in the
    /// connection's schema); `env` gives PGPASSWORD and ~/.pgpass.
    pub fn open(target: &str, env: &[(String, String)]) -> Result<RunLog, RunLogError> {
        let (db, shown) = match Self::is_url(target) {
            true => Self::open_postgres(target, env)?,
            false => Self::open_file(target)?,
        };
        let log = RunLog { db, path: shown };
        log.migrate()?;
        Ok(log)
    }

    fn open_postgres(target: &str, env: &[(String, String)]) -> Result<(Db, String), RunLogError> {
        use crate::source::postgres::connect::redact_url;
        let shown = redact_url(target);
        let var = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| PathBuf::from(v))
        };
        let pgpass = var("PGPASSFILE").or_else(|| var("HOME").map(|h| h.join(".pgpass")));
        let source = crate::source::postgres::Source::parse(target, env, pgpass.as_deref())
            .map_err(|e| RunLogError::Url(shown.clone(), e.to_string()))?;
        let db = Db::postgres(source).map_err(|source| RunLogError::Sql {
            path: shown.clone(),
            source,
        })?;
        Ok((db, shown))
    }

    fn open_file(target: &str) -> Result<(Db, String), RunLogError> {
        let path = std::path::Path::new(target);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| RunLogError::Folder {
                path: target.to_string(),
                source,
            })?;
        }
        let sql = |e: rusqlite::Error| RunLogError::Sql {
            path: target.to_string(),
            source: e.into(),
        };
        let conn = rusqlite::Connection::open(path).map_err(sql)?;
        // several exports may share one log: wait for each other's writes
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        Ok((Db::Sqlite(Mutex::new(conn)), target.to_string()))
    }

    fn run(&self, statements: Vec<(&str, Vec<Value>)>) -> Result<Vec<Row>, RunLogError> {
        let owned = statements
            .into_iter()
            .map(|(s, p)| (s.to_string(), p))
            .collect();
        self.db.run(owned).map_err(|source| RunLogError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, RunLogError> {
        self.run(vec![(sql, params)])
    }

    /// Creates the schema, or brings an older one up to this version.
    fn migrate(&self) -> Result<(), RunLogError> {
        self.run(SCHEMA.iter().map(|s| (*s, Vec::new())).collect())?;
        let found = self.query(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            vec![],
        )?;
        let version = SCHEMA_VERSION.to_string();
        match found
            .first()
            .map(|r| text(r, 0).parse::<i64>().unwrap_or(0))
        {
            Some(v) if v > SCHEMA_VERSION => Err(RunLogError::Newer {
                path: self.path.clone(),
                found: v,
            }),
            // version 1 → 2: runs.resumes (run_watermarks came with the schema above)
            Some(v) if v < SCHEMA_VERSION => self
                .run(vec![
                    ("ALTER TABLE runs ADD COLUMN resumes TEXT", vec![]),
                    (
                        "UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                        vec![(&version).into()],
                    ),
                ])
                .map(|_| ()),
            Some(_) => Ok(()),
            None => self
                .query(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', $1)
                     ON CONFLICT (key) DO NOTHING",
                    vec![(&version).into()],
                )
                .map(|_| ()),
        }
    }

    /// The file, or the URL without password.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Records a run that starts now; returns its id.
    pub fn start(&self, run: &RunStart<'_>) -> Result<String, RunLogError> {
        let now = chrono::Utc::now();
        let id = format!(
            "{}-{}",
            now.format("%Y%m%dT%H%M%SZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        self.query(
            "INSERT INTO runs (run_id, started_at, status, source, destination, format, settings, resumes)
             VALUES ($1, $2, 'running', $3, $4, $5, $6, $7)",
            vec![
                (&id).into(),
                (&now.to_rfc3339()).into(),
                run.source.into(),
                run.destination.into(),
                run.format.into(),
                (&run.settings.to_string()).into(),
                run.resumes.into(),
            ],
        )?;
        Ok(id)
    }

    /// Records a finished table, its part files and its watermark, in one
    /// transaction.
    pub fn table(&self, run_id: &str, t: &TableRow, files: &[FileRow]) -> Result<(), RunLogError> {
        let mut st: Vec<(&str, Vec<Value>)> = vec![(
            "INSERT INTO run_tables (run_id, table_name, status, rows, files, bytes, seconds, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (run_id, table_name) DO UPDATE SET status = excluded.status,
               rows = excluded.rows, files = excluded.files, bytes = excluded.bytes,
               seconds = excluded.seconds, error = excluded.error",
            vec![
                run_id.into(),
                (&t.table).into(),
                (&t.status).into(),
                t.rows.into(),
                t.files.into(),
                t.bytes.into(),
                t.seconds.into(),
                (&t.error).into(),
            ],
        )];
        for f in files {
            st.push((
                "INSERT INTO run_files (run_id, table_name, path, rows, bytes)
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    run_id.into(),
                    (&f.table).into(),
                    (&f.path).into(),
                    f.rows.into(),
                    f.bytes.into(),
                ],
            ));
        }
        if let Some(w) = &t.watermark {
            st.push((
                "INSERT INTO run_watermarks (run_id, table_name, column_name, kind, low, lag, high)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (run_id, table_name) DO UPDATE SET column_name = excluded.column_name,
                   kind = excluded.kind, low = excluded.low, lag = excluded.lag, high = excluded.high",
                vec![
                    run_id.into(),
                    (&t.table).into(),
                    (&w.column).into(),
                    (&w.kind).into(),
                    (&w.low).into(),
                    w.lag.into(),
                    (&w.high).into(),
                ],
            ));
        }
        self.run(st).map(|_| ())
    }

    /// Records the end of a run.
    pub fn finish(
        &self,
        run_id: &str,
        tables: u64,
        rows: u64,
        bytes: u64,
        error: Option<&str>,
    ) -> Result<(), RunLogError> {
        let status = if error.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        self.query(
            // SQLite numbers `$n` by first appearance: they go in order
            "UPDATE runs SET finished_at = $1, status = $2, tables = $3, rows = $4, bytes = $5,
             error = $6 WHERE run_id = $7",
            vec![
                (&chrono::Utc::now().to_rfc3339()).into(),
                status.into(),
                tables.into(),
                rows.into(),
                bytes.into(),
                error.into(),
                run_id.into(),
            ],
        )
        .map(|_| ())
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, RunLogError> {
        let rows = self.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT $1"
            ),
            vec![(limit as u64).into()],
        )?;
        Ok(rows.iter().map(run_row).collect())
    }

    /// One run with its tables and files (None: no such run).
    pub fn show(&self, run_id: &str) -> Result<Option<RunDetail>, RunLogError> {
        let found = self.query(
            &format!("SELECT {RUN_COLUMNS}, settings FROM runs WHERE run_id = $1"),
            vec![run_id.into()],
        )?;
        let Some(r) = found.first() else {
            return Ok(None);
        };
        let (run, settings) = (run_row(r), text(r, 12));
        let tables = self.query(
            "SELECT t.table_name, t.status, t.rows, t.files, t.bytes, t.seconds, t.error,
                    w.column_name, w.kind, w.low, w.lag, w.high
             FROM run_tables t LEFT JOIN run_watermarks w
               ON w.run_id = t.run_id AND w.table_name = t.table_name
             WHERE t.run_id = $1 ORDER BY t.table_name",
            vec![run_id.into()],
        )?;
        let table_list = tables
            .iter()
            .map(|r| TableRow {
                table: text(r, 0),
                status: text(r, 1),
                rows: num(r, 2),
                files: num(r, 3),
                bytes: num(r, 4),
                seconds: r.get(5).map_or(0.0, Value::real),
                error: opt_text(r, 6),
                watermark: opt_text(r, 7).map(|column| WatermarkRow {
                    column,
                    kind: text(r, 8),
                    low: opt_text(r, 9),
                    lag: num(r, 10),
                    high: opt_text(r, 11),
                }),
            })
            .collect();
        let files = self
            .query(
                "SELECT table_name, path, rows, bytes FROM run_files WHERE run_id = $1
                 ORDER BY table_name, path",
                vec![run_id.into()],
            )?
            .iter()
            .map(|r| FileRow {
                table: text(r, 0),
                path: text(r, 1),
                rows: num(r, 2),
                bytes: num(r, 3),
            })
            .collect();
        Ok(Some(RunDetail {
            run,
            settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
            table_list,
            files,
        }))
    }

    /// The run `--resume` picks up: `run_id`, or the newest run that did
    /// not complete (failed, or killed) and that no later run resumed to
    /// completion. None: nothing to resume.
    pub fn resumable(&self, run_id: Option<&str>) -> Result<Option<Resumable>, RunLogError> {
        let found = match run_id {
            Some(id) => self.query(
                "SELECT run_id, status, settings FROM runs WHERE run_id = $1",
                vec![id.into()],
            )?,
            None => self.query(
                "SELECT run_id, status, settings FROM runs r
                 WHERE status <> 'succeeded'
                   AND NOT EXISTS (SELECT 1 FROM runs l WHERE l.resumes = r.run_id
                                   AND l.status = 'succeeded')
                 ORDER BY started_at DESC, run_id DESC LIMIT 1",
                vec![],
            )?,
        };
        let Some(r) = found.first() else {
            return Ok(None);
        };
        let run_id = text(r, 0);
        let finished = self
            .query(
                "SELECT table_name FROM run_tables WHERE run_id = $1 AND status = 'succeeded'",
                vec![(&run_id).into()],
            )?
            .iter()
            .map(|r| text(r, 0))
            .collect();
        Ok(Some(Resumable {
            status: text(r, 1),
            settings: serde_json::from_str(&text(r, 2)).unwrap_or(serde_json::Value::Null),
            run_id,
            finished,
        }))
    }
}

const RUN_COLUMNS: &str = "run_id, started_at, finished_at, status, source, destination, format, tables, rows, bytes, error, resumes";

fn run_row(r: &Row) -> RunRow {
    RunRow {
        run_id: text(r, 0),
        started_at: text(r, 1),
        finished_at: opt_text(r, 2),
        status: text(r, 3),
        source: text(r, 4),
        destination: text(r, 5),
        format: text(r, 6),
        tables: opt_num(r, 7),
        rows: opt_num(r, 8),
        bytes: opt_num(r, 9),
        error: opt_text(r, 10),
        resumes: opt_text(r, 11),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with nothing but what it resumes.
    fn start(log: &RunLog, resumes: Option<&str>) -> String {
        let run = RunStart {
            source: "s",
            destination: "d",
            format: "parquet",
            settings: serde_json::json!({}),
            resumes,
        };
        log.start(&run).unwrap()
    }

    #[test]
    fn a_run_its_tables_and_files_are_recorded_and_read_back() {
        let dir = std::env::temp_dir().join(format!("inlet-runlog-{}", std::process::id()));
        let path = dir.join("nested").join("runs.sqlite");
        let log = RunLog::open(path.to_str().unwrap(), &[]).unwrap();
        let id = log
            .start(&RunStart {
                source: "postgresql://app@h:5432/db",
                destination: "/lake",
                format: "parquet",
                settings: serde_json::json!({"include": ["public.*"]}),
                resumes: None,
            })
            .unwrap();
        assert_eq!(log.runs(10).unwrap()[0].status, "running");
        let t = TableRow {
            table: "public.a".into(),
            status: "succeeded".into(),
            rows: 3,
            files: 1,
            bytes: 10,
            seconds: 0.5,
            error: None,
            watermark: Some(WatermarkRow {
                column: "u".into(),
                kind: "increment".into(),
                low: Some("1".into()),
                lag: 0,
                high: Some("9".into()),
            }),
        };
        let f = FileRow {
            table: "public.a".into(),
            path: "public/a/part-00000.parquet".into(),
            rows: 3,
            bytes: 10,
        };
        log.table(&id, &t, &[f]).unwrap();
        log.finish(&id, 1, 3, 10, None).unwrap();
        drop(log);
        // reopened: the schema is there once, the run is complete
        let log = RunLog::open(path.to_str().unwrap(), &[]).unwrap();
        let d = log.show(&id).unwrap().unwrap();
        assert_eq!(d.run.status, "succeeded");
        assert_eq!(d.run.rows, Some(3));
        assert_eq!(d.table_list[0].table, "public.a");
        assert_eq!(d.files[0].path, "public/a/part-00000.parquet");
        assert_eq!(d.settings["include"][0], "public.*");
        assert_eq!(
            d.table_list[0].watermark.as_ref().unwrap().high.as_deref(),
            Some("9")
        );
        assert!(log.show("no-such-run").unwrap().is_none());
        // nothing to resume: the only run succeeded
        assert!(log.resumable(None).unwrap().is_none());
        let killed = start(&log, None);
        log.table(&killed, &t, &[]).unwrap();
        let r = log.resumable(None).unwrap().unwrap();
        assert_eq!((r.run_id.as_str(), r.finished.len()), (killed.as_str(), 1));
        let resume = start(&log, Some(&killed));
        // a resume still running is itself the one to resume; once it succeeds, neither is
        assert_eq!(log.resumable(None).unwrap().unwrap().run_id, resume);
        log.finish(&resume, 0, 0, 0, None).unwrap();
        assert!(log.resumable(None).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_version_1_log_is_upgraded_in_place() {
        let dir = std::env::temp_dir().join(format!("inlet-runlog-v1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.sqlite");
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
               status TEXT NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL,
               format TEXT NOT NULL, settings TEXT NOT NULL, tables INTEGER, rows INTEGER,
               bytes INTEGER, error TEXT);
             INSERT INTO runs VALUES ('old', '2026-12-01T00:00:00Z', NULL, 'running', 's', 'd',
               'parquet', '{}', NULL, NULL, NULL, NULL);",
        )
        .unwrap();
        drop(c);
        let log = RunLog::open(path.to_str().unwrap(), &[]).unwrap();
        // the old run is still there, now resumable, and new runs record what they resume
        assert_eq!(log.resumable(None).unwrap().unwrap().run_id, "old");
        let id = start(&log, Some("old"));
        assert_eq!(log.runs(5).unwrap()[0].resumes.as_deref(), Some("old"));
        log.finish(&id, 0, 0, 0, None).unwrap();
        assert!(log.resumable(None).unwrap().is_none());
        drop(log);
        let v: String = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, "2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
