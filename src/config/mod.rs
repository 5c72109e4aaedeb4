//! Configuration: JSON/YAML files (later files win), `INLET_<KEY>` and
//! `TARGET_INLET_<KEY>` environment overrides (env wins), Mage key aliases,
//! and redaction of secrets for anything printed.

pub mod settings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::format::{CodecError, FileFormat};
use crate::layout::LayoutError;
pub use crate::layout::LayoutKind;
use crate::schema::HeaderFormat;
use crate::storage::StorageConfig;
use crate::storage::auth::AuthError;

/// Config errors (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },
    /// A config file is not JSON/YAML.
    #[error("config file {path} is neither valid JSON nor YAML: {msg}")]
    Parse {
        /// File path.
        path: PathBuf,
        /// Parser message.
        msg: String,
    },
    /// A value has the wrong type or is out of range.
    #[error("config key '{key}': {msg}")]
    Value {
        /// The key.
        key: String,
        /// What is wrong.
        msg: String,
    },
    /// `compression` does not fit the format.
    #[error("config key 'compression': {0}")]
    Codec(#[from] CodecError),
    /// A `path_template` or `partition_keys` entry is unusable.
    #[error("config key '{key}': {source}")]
    Layout {
        /// The key.
        key: &'static str,
        /// What is wrong.
        #[source]
        source: LayoutError,
    },
    /// A LakeXpress auth file or entry is unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A required key is missing.
    #[error("config key '{0}' is required; set it in a --config file or as INLET_{upper}", upper = .0.to_uppercase())]
    Missing(String),
}

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header row.
    Csv,
    /// JSON lines.
    Jsonl,
    /// Delta Lake tables.
    Delta,
}

impl Format {
    /// The kind of table the format writes.
    pub fn table_kind(self) -> crate::table::TableKind {
        match self {
            Format::Delta => crate::table::TableKind::Delta,
            Format::Parquet | Format::Csv | Format::Jsonl => crate::table::TableKind::Files,
        }
    }

    /// The format of the files written (Delta data files are Parquet).
    pub fn file_format(self) -> FileFormat {
        match self {
            Format::Parquet | Format::Delta => FileFormat::Parquet,
            Format::Csv => FileFormat::Csv,
            Format::Jsonl => FileFormat::Jsonl,
        }
    }
}

/// Delta write mode (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Every flush is appended.
    Append,
    /// The run replaces the table (or its partitions).
    Overwrite,
    /// Upsert on key_properties.
    Merge,
}

/// Delta schema mode (`schema_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaMode {
    /// New nullable columns are added; other changes fail.
    Merge,
    /// In overwrite mode, the run replaces the table's schema.
    Overwrite,
}

/// What happens to an invalid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalid {
    /// Stop with exit code 4.
    Fail,
    /// Log, count and drop.
    Skip,
    /// Write to `_rejected/{stream}/` and carry on.
    Quarantine,
}

/// Settings of `inlet load` (and `inlet check`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LoadConfig {
    /// Local folder or URL.
    pub destination: Option<String>,
    /// Output format.
    #[serde(alias = "file_type")]
    pub format: Format,
    /// Codec name; None = the format's default.
    pub compression: Option<String>,
    /// Parquet rows per row group.
    pub row_group_size: usize,
    /// Decoding threads; 0 = chosen from the number of cores.
    pub decode_threads: usize,
    /// CSV delimiter.
    #[serde(alias = "delimiter")]
    pub csv_delimiter: String,
    /// Naming scheme.
    pub layout: LayoutKind,
    /// Prefix below destination.
    #[serde(alias = "prefix")]
    pub object_key_path: String,
    /// Table name override.
    #[serde(alias = "table_name")]
    pub table: Option<String>,
    /// strftime folder of processing time.
    pub date_partition_format: Option<String>,
    /// LakeXpress sub path.
    pub sub_path: Option<String>,
    /// Schema for streams without a prefix.
    pub default_schema: String,
    /// Partition specs.
    pub partition_keys: Vec<String>,
    /// Object path template.
    pub path_template: Option<String>,
    /// Add metadata columns.
    pub add_metadata_columns: bool,
    /// Their prefix.
    pub metadata_column_prefix: String,
    /// Column renaming.
    pub column_header_format: HeaderFormat,
    /// Validate records.
    pub validate_records: bool,
    /// Invalid record policy.
    pub on_invalid_record: OnInvalid,
    /// Flush threshold in input bytes.
    pub batch_max_bytes: u64,
    /// Mage's threshold in MB.
    pub maximum_batch_size_mb: Option<u64>,
    /// Flush threshold in rows.
    pub batch_max_rows: u64,
    /// Flush threshold in seconds.
    pub batch_max_age_seconds: u64,
    /// State file path.
    pub state_file: Option<PathBuf>,
    /// text / json.
    pub log_format: String,
    /// Log level.
    pub log_level: String,
    /// Delta write mode.
    pub mode: WriteMode,
    /// Delta: replace only the partitions in the run's data.
    pub overwrite_partitions: bool,
    /// Delta merge: delete rows with `_sdc_deleted_at`.
    pub hard_delete: bool,
    /// Delta schema evolution.
    pub schema_mode: SchemaMode,
    /// Delta target data file size in bytes.
    pub target_file_size: Option<u64>,
    /// Credentials, endpoints and retries of the destination.
    #[serde(flatten)]
    pub storage: StorageConfig,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            destination: None,
            format: Format::Parquet,
            compression: None,
            row_group_size: 1 << 20,
            decode_threads: 0,
            csv_delimiter: ",".into(),
            layout: LayoutKind::Mage,
            object_key_path: String::new(),
            table: None,
            date_partition_format: None,
            sub_path: None,
            default_schema: "public".into(),
            partition_keys: Vec::new(),
            path_template: None,
            add_metadata_columns: true,
            metadata_column_prefix: "_inlet".into(),
            column_header_format: HeaderFormat::None,
            validate_records: true,
            on_invalid_record: OnInvalid::Fail,
            batch_max_bytes: 100_000_000,
            maximum_batch_size_mb: None,
            batch_max_rows: 0,
            batch_max_age_seconds: 300,
            state_file: None,
            log_format: "text".into(),
            log_level: "info".into(),
            mode: WriteMode::Append,
            overwrite_partitions: false,
            hard_delete: false,
            schema_mode: SchemaMode::Merge,
            target_file_size: None,
            storage: StorageConfig::default(),
        }
    }
}

/// Largest buffer we accept: column offsets are 32-bit.
const MAX_BATCH_BYTES: u64 = 1_500_000_000;

impl LoadConfig {
    /// Decoding threads to start: `decode_threads`, or by default one below
    /// 4 cores (measured on 2: the writer thread sets the pace and a second
    /// decoder only adds CPU), else half the cores, at most 4.
    pub fn decode_thread_count(&self) -> usize {
        match self.decode_threads {
            0 => match std::thread::available_parallelism().map_or(1, |n| n.get()) {
                n if n >= 4 => (n / 2).min(4),
                _ => 1,
            },
            n => n,
        }
    }

    /// Reads files in order, then applies the environment.
    pub fn load(
        files: &[PathBuf],
        env: &[(String, String)],
    ) -> Result<(Self, Vec<String>), ConfigError> {
        Self::load_layers(files, env, &Overlay::default())
    }

    /// Files, then the environment, then command-line values; `overlay.defaults`
    /// fill keys no layer set.
    pub fn load_layers(
        files: &[PathBuf],
        env: &[(String, String)],
        overlay: &Overlay,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut merged = Map::new();
        for f in files {
            let v = read_file(f)?;
            merge(&mut merged, v);
        }
        for (k, v) in env_overrides(env) {
            merged.insert(k, v);
        }
        for (k, v) in &overlay.values {
            // a command-line value replaces the key under every alias
            if let Some(s) = settings::find(k) {
                merged.retain(|m, _| settings::find(m).is_none_or(|o| o.name != s.name));
            }
            merged.insert(k.clone(), v.clone());
        }
        for (k, v) in &overlay.defaults {
            let set = settings::find(k).is_some_and(|s| {
                merged
                    .keys()
                    .any(|m| settings::find(m).is_some_and(|o| o.name == s.name))
            });
            if !set {
                merged.insert(k.clone(), v.clone());
            }
        }
        Self::from_map(merged)
    }

    /// Builds a config from merged key/values; returns unknown keys too.
    pub fn from_map(mut merged: Map<String, Value>) -> Result<(Self, Vec<String>), ConfigError> {
        let unknown: Vec<String> = merged
            .keys()
            .filter(|k| settings::find(k).is_none())
            .cloned()
            .collect();
        for k in &unknown {
            merged.remove(k);
        }
        // canonical names win over aliases given in the same place
        let mut canon = Map::new();
        for (k, v) in merged {
            let name = settings::find(&k).map_or(k.clone(), |s| s.name.to_string());
            if v.is_null() {
                continue;
            }
            if k == name || !canon.contains_key(&name) {
                canon.insert(name, v);
            }
        }
        let cfg: LoadConfig = serde_json::from_value(Value::Object(canon)).map_err(|e| {
            let msg = e.to_string();
            let key = msg.split('`').nth(1).unwrap_or("?").to_string();
            ConfigError::Value { key, msg }
        })?;
        cfg.check()?;
        Ok((cfg, unknown))
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| {
            Err(ConfigError::Value {
                key: key.into(),
                msg,
            })
        };
        if self.batch_max_bytes() == 0 || self.batch_max_bytes() > MAX_BATCH_BYTES {
            return bad(
                "batch_max_bytes",
                format!("must be between 1 and {MAX_BATCH_BYTES}"),
            );
        }
        if self.csv_delimiter.chars().count() != 1 || !self.csv_delimiter.is_ascii() {
            return bad(
                "csv_delimiter",
                format!("must be one ASCII character, got {:?}", self.csv_delimiter),
            );
        }
        if self.decode_threads > 64 {
            return bad(
                "decode_threads",
                "must be at most 64 (0 = chosen from the cores)".into(),
            );
        }
        if self.row_group_size == 0 {
            return bad("row_group_size", "must be at least 1".into());
        }
        crate::format::Codec::parse(self.format.file_format(), self.compression.as_deref())?;
        if let Some(t) = &self.path_template {
            crate::layout::check_template(t).map_err(|source| ConfigError::Layout {
                key: "path_template",
                source,
            })?;
        }
        if self.format == Format::Delta {
            if let Some(p) = self.partition_keys.iter().find(|p| p.contains(':')) {
                return bad(
                    "partition_keys",
                    format!(
                        "'{p}': Delta tables partition by plain columns; date parts (col:%Y…) are for file layouts"
                    ),
                );
            }
            if self.path_template.is_some() {
                return bad("path_template", "is for file formats; a Delta table lives at {destination}/{table} (or table_uri)".into());
            }
        } else if self.mode != WriteMode::Append {
            return bad(
                "mode",
                format!(
                    "'{:?}' needs format: delta; files are always appended",
                    self.mode
                )
                .to_lowercase(),
            );
        }
        for p in &self.partition_keys {
            crate::layout::PartitionKey::parse(p).map_err(|source| ConfigError::Layout {
                key: "partition_keys",
                source,
            })?;
        }
        Ok(())
    }

    /// The destination (or Mage's `bucket` as a URL), or an error naming the key.
    pub fn destination(&self) -> Result<String, ConfigError> {
        self.destination
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| self.storage.destination_from_bucket())
            .ok_or_else(|| ConfigError::Missing("destination".into()))
    }

    /// Flush threshold in bytes (Mage's MB setting wins when given).
    pub fn batch_max_bytes(&self) -> u64 {
        self.maximum_batch_size_mb
            .map_or(self.batch_max_bytes, |mb| mb.saturating_mul(1_000_000))
    }

    /// Flush age.
    pub fn batch_max_age(&self) -> Duration {
        Duration::from_secs(self.batch_max_age_seconds.max(1))
    }
}

/// Values from the command line (`--output-dir`, an auth-file entry, …)
/// and defaults they imply.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    /// Win over files and environment.
    pub values: Map<String, Value>,
    /// Apply only when no layer set the key.
    pub defaults: Map<String, Value>,
}

fn read_file(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    let parse_err = |msg: String| ConfigError::Parse {
        path: path.into(),
        msg,
    };
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| parse_err(e.to_string()))?
    };
    match value {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(parse_err(
            "the top level must be a mapping of keys to values".into(),
        )),
    }
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        into.insert(k, v);
    }
}

/// `INLET_<KEY>` then `TARGET_INLET_<KEY>` (Meltano's), for every known key and alias.
fn env_overrides(env: &[(String, String)]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for s in settings::SETTINGS {
        for key in std::iter::once(&s.name).chain(s.aliases.iter()) {
            for prefix in ["INLET_", "TARGET_INLET_"] {
                let var = format!("{prefix}{}", key.to_uppercase());
                if let Some((_, raw)) = env.iter().find(|(k, _)| *k == var) {
                    out.push((key.to_string(), env_value(s.kind, raw)));
                }
            }
        }
    }
    out
}

/// A setting given as text on the command line (`--set KEY=VALUE`), typed
/// as its environment variable would be.
pub fn setting_value(key: &str, raw: &str) -> Result<Value, ConfigError> {
    let s = settings::find(key).ok_or_else(|| ConfigError::Value {
        key: key.to_string(),
        msg: "inlet has no such setting; `inlet load --about` lists them".into(),
    })?;
    Ok(env_value(s.kind, raw))
}

fn env_value(kind: settings::SettingKind, raw: &str) -> Value {
    use settings::SettingKind as K;
    match kind {
        K::Integer => raw
            .trim()
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(raw.into())),
        K::Boolean => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => Value::String(raw.into()),
        },
        K::Array => serde_json::from_str(raw).unwrap_or_else(|_| {
            Value::Array(
                raw.split(',')
                    .map(|p| Value::String(p.trim().into()))
                    .filter(|v| v != "")
                    .collect(),
            )
        }),
        _ => Value::String(raw.into()),
    }
}

/// A copy of a config map with secret values replaced, for logs.
pub fn redact(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let v = if settings::is_secret_key(k) {
                Value::String("***".into())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_merge_and_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.yaml");
        std::fs::write(
            &a,
            r#"{"destination": "/x", "format": "csv", "maximum_batch_size_mb": 5}"#,
        )
        .unwrap();
        std::fs::write(
            &b,
            "format: jsonl\nvalidate_records: false\nbucket_thing: 1\n",
        )
        .unwrap();
        let env = vec![(
            "TARGET_INLET_VALIDATE_RECORDS".to_string(),
            "true".to_string(),
        )];
        let (cfg, unknown) = LoadConfig::load(&[a, b], &env).unwrap();
        assert_eq!(cfg.format, Format::Jsonl);
        assert!(cfg.validate_records);
        assert_eq!(cfg.batch_max_bytes(), 5_000_000);
        assert_eq!(unknown, vec!["bucket_thing".to_string()]);
    }

    #[test]
    fn bad_values_name_the_key() {
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"destination": "x", "on_invalid_record": "explode"}"#)
                .unwrap();
        let err = LoadConfig::from_map(m).unwrap_err().to_string();
        assert!(
            err.contains("on_invalid_record") || err.contains("explode"),
            "{err}"
        );
        let m: Map<String, Value> =
            serde_json::from_str(r#"{"compression": "brotli", "format": "csv"}"#).unwrap();
        assert!(
            LoadConfig::from_map(m)
                .unwrap_err()
                .to_string()
                .contains("compression")
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let m: Map<String, Value> = serde_json::from_str(
            r#"{"aws_secret_access_key": "abc", "aws_access_key_id": "id", "format": "csv"}"#,
        )
        .unwrap();
        let r = redact(&m);
        assert_eq!(r["aws_secret_access_key"], "***");
        assert_eq!(r["aws_access_key_id"], "id");
    }
}
