//! The run log of `inlet export`: every run, each of its tables (rows,
//! files, bytes, seconds, error) and each part file, in an embedded SQLite
//! file. A table is recorded the moment it is done, so a run that was killed
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

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// This machine's name (telling a killed run from one still running).
pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The schema this build writes.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
  source TEXT NOT NULL, destination TEXT NOT NULL, format TEXT NOT NULL, settings TEXT NOT NULL,
  tables INTEGER, rows INTEGER, bytes INTEGER, error TEXT, resumes TEXT);
CREATE TABLE IF NOT EXISTS run_tables (
  run_id TEXT NOT NULL REFERENCES runs(run_id), table_name TEXT NOT NULL, status TEXT NOT NULL,
  rows INTEGER NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL, seconds REAL NOT NULL,
  error TEXT, PRIMARY KEY (run_id, table_name));
CREATE TABLE IF NOT EXISTS run_files (
  run_id TEXT NOT NULL, table_name TEXT NOT NULL, path TEXT NOT NULL, rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS run_watermarks (
  run_id TEXT NOT NULL, table_name TEXT NOT NULL, column_name TEXT NOT NULL, kind TEXT NOT NULL,
  low TEXT, lag INTEGER NOT NULL, high TEXT, PRIMARY KEY (run_id, table_name));
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
            Some(v) if v < SCHEMA_VERSION => {
                // version 1 → 2: runs.resumes (run_watermarks came with the schema above)
                conn.execute_batch(&format!(
                    "BEGIN; ALTER TABLE runs ADD COLUMN resumes TEXT; \
                     UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version'; COMMIT;"
                ))
                .map_err(sql)?;
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
                "INSERT INTO runs (run_id, started_at, status, source, destination, format, settings, resumes)
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7)",
                params![
                    id,
                    now.to_rfc3339(),
                    run.source,
                    run.destination,
                    run.format,
                    run.settings.to_string(),
                    run.resumes
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
            if let Some(w) = &t.watermark {
                tx.execute(
                    "INSERT OR REPLACE INTO run_watermarks
                     (run_id, table_name, column_name, kind, low, lag, high)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![run_id, t.table, w.column, w.kind, w.low, w.lag, w.high],
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
                    |r| Ok((run_row(r)?, r.get::<_, String>(12)?)),
                )
                .optional()?
            else {
                return Ok(None);
            };
            let mut q = c.prepare(
                "SELECT t.table_name, t.status, t.rows, t.files, t.bytes, t.seconds, t.error,
                        w.column_name, w.kind, w.low, w.lag, w.high
                 FROM run_tables t LEFT JOIN run_watermarks w
                   ON w.run_id = t.run_id AND w.table_name = t.table_name
                 WHERE t.run_id = ?1 ORDER BY t.table_name",
            )?;
            let table_list = q
                .query_map(params![run_id], |r| {
                    let column: Option<String> = r.get(7)?;
                    let watermark = match column {
                        Some(column) => Some(WatermarkRow {
                            column,
                            kind: r.get(8)?,
                            low: r.get(9)?,
                            lag: r.get(10)?,
                            high: r.get(11)?,
                        }),
                        None => None,
                    };
                    Ok(TableRow {
                        table: r.get(0)?,
                        status: r.get(1)?,
                        rows: r.get(2)?,
                        files: r.get(3)?,
                        bytes: r.get(4)?,
                        seconds: r.get(5)?,
                        error: r.get(6)?,
                        watermark,
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

impl RunLog {
    /// The run `--resume` picks up: `run_id`, or the newest run that did
    /// not complete (failed, or killed) and that no later run resumed to
    /// completion. None: nothing to resume.
    pub fn resumable(&self, run_id: Option<&str>) -> Result<Option<Resumable>, RunLogError> {
        self.with(|c| {
            let found: Option<(String, String, String)> = match run_id {
                Some(id) => c
                    .query_row(
                        "SELECT run_id, status, settings FROM runs WHERE run_id = ?1",
                        params![id],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?,
                None => c
                    .query_row(
                        "SELECT run_id, status, settings FROM runs r
                         WHERE status <> 'succeeded'
                           AND NOT EXISTS (SELECT 1 FROM runs l WHERE l.resumes = r.run_id
                                           AND l.status = 'succeeded')
                         ORDER BY started_at DESC, run_id DESC LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?,
            };
            let Some((run_id, status, settings)) = found else {
                return Ok(None);
            };
            let mut q = c.prepare(
                "SELECT table_name FROM run_tables WHERE run_id = ?1 AND status = 'succeeded'",
            )?;
            let finished = q
                .query_map(params![run_id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Ok(Some(Resumable {
                run_id,
                status,
                settings: serde_json::from_str(&settings).unwrap_or(serde_json::Value::Null),
                finished,
            }))
        })
    }
}

const RUN_COLUMNS: &str = "run_id, started_at, finished_at, status, source, destination, format, tables, rows, bytes, error, resumes";

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
        resumes: r.get(11)?,
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
        let log = RunLog::open(&path).unwrap();
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
        let killed = log
            .start(&RunStart {
                source: "s",
                destination: "d",
                format: "parquet",
                settings: serde_json::json!({}),
                resumes: None,
            })
            .unwrap();
        log.table(&killed, &t, &[]).unwrap();
        let r = log.resumable(None).unwrap().unwrap();
        assert_eq!((r.run_id.as_str(), r.finished.len()), (killed.as_str(), 1));
        let resume = log
            .start(&RunStart {
                source: "s",
                destination: "d",
                format: "parquet",
                settings: serde_json::json!({}),
                resumes: Some(&killed),
            })
            .unwrap();
        // a resume still running is itself the one to resume; once it succeeds, neither is
        assert_eq!(log.resumable(None).unwrap().unwrap().run_id, resume);
        log.finish(&resume, 0, 0, 0, None).unwrap();
        assert!(log.resumable(None).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
