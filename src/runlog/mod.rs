//! The run log of `inlet export`: every run, each of its tables (rows,
//! files, bytes, seconds, error) and each part file, in an embedded SQLite
//! file. A table is recorded the moment it is done, so a run that was killed
//! shows what it finished. No secret is stored: the source is recorded as
//! its redacted form (`postgresql://user@host:port/db`).
//!
//! Default file: `$XDG_DATA_HOME/inlet/runs.sqlite`, else
//! `~/.local/share/inlet/runs.sqlite`. Schema (version 1, created on first use):
//!
//! ```text
//! meta(key PRIMARY KEY, value)                      -- schema_version
//! runs(run_id PRIMARY KEY, started_at, finished_at, status, source, destination,
//!      format, settings, tables, rows, bytes, error)
//! run_tables(run_id, table_name, status, rows, files, bytes, seconds, error)
//! run_files(run_id, table_name, path, rows, bytes)
//! ```
//! `status`: `running` (a run without `finished_at` was killed), `succeeded`,
//! `failed`; tables: `succeeded` or `failed`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// The schema this build writes.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
  source TEXT NOT NULL, destination TEXT NOT NULL, format TEXT NOT NULL, settings TEXT NOT NULL,
  tables INTEGER, rows INTEGER, bytes INTEGER, error TEXT);
CREATE TABLE IF NOT EXISTS run_tables (
  run_id TEXT NOT NULL REFERENCES runs(run_id), table_name TEXT NOT NULL, status TEXT NOT NULL,
  rows INTEGER NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL, seconds REAL NOT NULL,
  error TEXT, PRIMARY KEY (run_id, table_name));
CREATE TABLE IF NOT EXISTS run_files (
  run_id TEXT NOT NULL, table_name TEXT NOT NULL, path TEXT NOT NULL, rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
";

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
    /// SQLite refused.
    #[error("run log {path}: {source}")]
    Sql {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
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
    conn: Mutex<Connection>,
    path: String,
}

impl std::fmt::Debug for RunLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunLog({})", self.path)
    }
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

    /// Opens (creating the file, its folder and the schema when missing).
    pub fn open(path: &Path) -> Result<RunLog, RunLogError> {
        let shown = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| RunLogError::Folder {
                path: shown.clone(),
                source,
            })?;
        }
        let sql = |source| RunLogError::Sql {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        // several exports may share one log: wait for each other's writes
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        let found: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql)?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(RunLogError::Newer {
                    path: shown,
                    found: v,
                });
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(sql)?;
            }
        }
        Ok(RunLog {
            conn: Mutex::new(conn),
            path: shown,
        })
    }

    /// The file.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RunLogError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| RunLogError::Sql {
            path: self.path.clone(),
            source,
        })
    }

    /// Records a run that starts now; returns its id.
    pub fn start(&self, run: &RunStart<'_>) -> Result<String, RunLogError> {
        let now = chrono::Utc::now();
        let id = format!(
            "{}-{}",
            now.format("%Y%m%dT%H%M%SZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (run_id, started_at, status, source, destination, format, settings)
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6)",
                params![
                    id,
                    now.to_rfc3339(),
                    run.source,
                    run.destination,
                    run.format,
                    run.settings.to_string()
                ],
            )
        })?;
        Ok(id)
    }

    /// Records a finished table and its part files, in one transaction.
    pub fn table(&self, run_id: &str, t: &TableRow, files: &[FileRow]) -> Result<(), RunLogError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT OR REPLACE INTO run_tables
                 (run_id, table_name, status, rows, files, bytes, seconds, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    run_id, t.table, t.status, t.rows, t.files, t.bytes, t.seconds, t.error
                ],
            )?;
            for f in files {
                tx.execute(
                    "INSERT INTO run_files (run_id, table_name, path, rows, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run_id, f.table, f.path, f.rows, f.bytes],
                )?;
            }
            tx.commit()
        })
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
        self.with(|c| {
            c.execute(
                "UPDATE runs SET finished_at = ?2, status = ?3, tables = ?4, rows = ?5, bytes = ?6,
                 error = ?7 WHERE run_id = ?1",
                params![
                    run_id,
                    chrono::Utc::now().to_rfc3339(),
                    status,
                    tables,
                    rows,
                    bytes,
                    error
                ],
            )
            .map(|_| ())
        })
    }

    /// The newest `limit` runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, RunLogError> {
        self.with(|c| {
            let mut q = c.prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?1"
            ))?;
            q.query_map(params![limit as i64], run_row)?.collect()
        })
    }

    /// One run with its tables and files (None: no such run).
    pub fn show(&self, run_id: &str) -> Result<Option<RunDetail>, RunLogError> {
        self.with(|c| {
            let Some((run, settings)) = c
                .query_row(
                    &format!("SELECT {RUN_COLUMNS}, settings FROM runs WHERE run_id = ?1"),
                    params![run_id],
                    |r| Ok((run_row(r)?, r.get::<_, String>(11)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut q = c.prepare(
                "SELECT table_name, status, rows, files, bytes, seconds, error FROM run_tables
                 WHERE run_id = ?1 ORDER BY table_name",
            )?;
            let table_list = q
                .query_map(params![run_id], |r| {
                    Ok(TableRow {
                        table: r.get(0)?,
                        status: r.get(1)?,
                        rows: r.get(2)?,
                        files: r.get(3)?,
                        bytes: r.get(4)?,
                        seconds: r.get(5)?,
                        error: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut q = c.prepare(
                "SELECT table_name, path, rows, bytes FROM run_files WHERE run_id = ?1
                 ORDER BY table_name, path",
            )?;
            let files = q
                .query_map(params![run_id], |r| {
                    Ok(FileRow {
                        table: r.get(0)?,
                        path: r.get(1)?,
                        rows: r.get(2)?,
                        bytes: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(RunDetail {
                run,
                settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
                table_list,
                files,
            }))
        })
    }
}

const RUN_COLUMNS: &str = "run_id, started_at, finished_at, status, source, destination, format, tables, rows, bytes, error";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        run_id: r.get(0)?,
        started_at: r.get(1)?,
        finished_at: r.get(2)?,
        status: r.get(3)?,
        source: r.get(4)?,
        destination: r.get(5)?,
        format: r.get(6)?,
        tables: r.get(7)?,
        rows: r.get(8)?,
        bytes: r.get(9)?,
        error: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_its_tables_and_files_are_recorded_and_read_back() {
        let dir = std::env::temp_dir().join(format!("inlet-runlog-{}", std::process::id()));
        let path = dir.join("nested").join("runs.sqlite");
        let log = RunLog::open(&path).unwrap();
        let id = log
            .start(&RunStart {
                source: "postgresql://app@h:5432/db",
                destination: "/lake",
                format: "parquet",
                settings: serde_json::json!({"include": ["public.*"]}),
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
        let log = RunLog::open(&path).unwrap();
        let d = log.show(&id).unwrap().unwrap();
        assert_eq!(d.run.status, "succeeded");
        assert_eq!(d.run.rows, Some(3));
        assert_eq!(d.table_list[0].table, "public.a");
        assert_eq!(d.files[0].path, "public/a/part-00000.parquet");
        assert_eq!(d.settings["include"][0], "public.*");
        assert!(log.show("no-such-run").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
