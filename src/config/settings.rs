//! The registry of settings: names, Mage/LakeXpress aliases, types, defaults
//! and descriptions. `--about`, environment overrides and the unknown-key
//! warning are all driven from this one table.

/// Kind of a setting's value (for `--about` and env parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// Text.
    String,
    /// Whole number.
    Integer,
    /// true / false.
    Boolean,
    /// JSON array.
    Array,
    /// One of fixed values.
    Options(&'static [&'static str]),
}

impl SettingKind {
    /// Meltano's name for the kind.
    pub fn meltano(&self) -> &'static str {
        match self {
            SettingKind::String => "string",
            SettingKind::Integer => "integer",
            SettingKind::Boolean => "boolean",
            SettingKind::Array => "array",
            SettingKind::Options(_) => "options",
        }
    }
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Canonical key.
    pub name: &'static str,
    /// Other accepted keys (Mage, LakeXpress).
    pub aliases: &'static [&'static str],
    /// Value kind.
    pub kind: SettingKind,
    /// Default, as shown to users.
    pub default: &'static str,
    /// One-line description.
    pub description: &'static str,
    /// Holds a secret (redacted everywhere).
    pub secret: bool,
}

const fn s(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: SettingKind,
    default: &'static str,
    description: &'static str,
) -> Setting {
    Setting {
        name,
        aliases,
        kind,
        default,
        description,
        secret: false,
    }
}

use SettingKind::*;

/// Every setting `inlet load` understands.
pub const SETTINGS: &[Setting] = &[
    s(
        "destination",
        &["output_dir", "destination_path"],
        String,
        "(required)",
        "Where files go: a local folder (cloud URLs come with object-storage support).",
    ),
    s(
        "format",
        &["file_type"],
        Options(&["parquet", "csv", "jsonl"]),
        "parquet",
        "Output file format.",
    ),
    s(
        "compression",
        &[],
        Options(&["snappy", "zstd", "gzip", "lz4", "none"]),
        "snappy (parquet), none (csv/jsonl)",
        "Compression codec; csv and jsonl take none or gzip.",
    ),
    s(
        "row_group_size",
        &[],
        Integer,
        "1048576",
        "Parquet rows per row group.",
    ),
    s(
        "csv_delimiter",
        &["delimiter"],
        String,
        ",",
        "CSV field delimiter (one character).",
    ),
    s(
        "layout",
        &[],
        Options(&["mage", "lakexpress"]),
        "mage",
        "Folder and file naming scheme.",
    ),
    s(
        "object_key_path",
        &["prefix"],
        String,
        "",
        "Folders between destination and the table folder (mage layout).",
    ),
    s(
        "table",
        &["table_name"],
        String,
        "the stream name",
        "Table folder name (mage layout); set it only for single-stream taps.",
    ),
    s(
        "date_partition_format",
        &[],
        String,
        "(none)",
        "strftime of the processing time (UTC) used as a folder below the table, e.g. %Y%m%d.",
    ),
    s(
        "sub_path",
        &[],
        String,
        "(none)",
        "Folders between base and schema (lakexpress layout).",
    ),
    s(
        "default_schema",
        &[],
        String,
        "public",
        "Schema folder for streams named without a 'schema-' prefix (lakexpress layout).",
    ),
    s(
        "partition_keys",
        &[],
        Array,
        "[]",
        "Hive-style partitions: \"col\" gives col=value/ folders, \"col:year=%Y/month=%m\" date parts of a date/timestamp column.",
    ),
    s(
        "path_template",
        &[],
        String,
        "(none)",
        "Full object path template: {stream} {table} {schema} {date:<strftime>} {timestamp} {uuid} {part} {ext} {partitions}.",
    ),
    s(
        "add_metadata_columns",
        &[],
        Boolean,
        "true",
        "Add {prefix}_created_at, {prefix}_updated_at and _sdc_extracted_at columns.",
    ),
    s(
        "metadata_column_prefix",
        &[],
        String,
        "_inlet",
        "Prefix of the metadata columns (_mage reproduces Mage's).",
    ),
    s(
        "column_header_format",
        &[],
        Options(&["none", "lower", "upper"]),
        "none",
        "Rename every column to lower or upper case.",
    ),
    s(
        "validate_records",
        &[],
        Boolean,
        "true",
        "Validate each record against its stream's JSON Schema.",
    ),
    s(
        "on_invalid_record",
        &[],
        Options(&["fail", "skip", "quarantine"]),
        "fail",
        "What to do with a record that is invalid or a line that is not JSON.",
    ),
    s(
        "batch_max_bytes",
        &[],
        Integer,
        "100000000",
        "Flush a stream when its buffered input reaches this many bytes.",
    ),
    s(
        "maximum_batch_size_mb",
        &[],
        Integer,
        "(none)",
        "Mage's name for batch_max_bytes, in MB.",
    ),
    s(
        "batch_max_rows",
        &[],
        Integer,
        "0 (no limit)",
        "Flush a stream after this many rows.",
    ),
    s(
        "batch_max_age_seconds",
        &[],
        Integer,
        "300",
        "Flush a stream whose oldest buffered record is this old.",
    ),
    s(
        "state_file",
        &[],
        String,
        "(none)",
        "Also write the latest emitted state to this local file (atomically).",
    ),
    s(
        "log_format",
        &[],
        Options(&["text", "json"]),
        "text",
        "Log format on stderr (same as --log-format).",
    ),
    s(
        "log_level",
        &[],
        Options(&["error", "warn", "info", "debug", "trace"]),
        "info",
        "Log level on stderr.",
    ),
];

/// Looks a key (canonical or alias) up.
pub fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS
        .iter()
        .find(|s| s.name == key || s.aliases.contains(&key))
}

/// Keys whose values are secrets, whatever module reads them.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    SETTINGS.iter().any(|s| s.secret && s.name == k)
        || [
            "secret",
            "password",
            "token",
            "access_key",
            "sas",
            "credential",
            "private_key",
        ]
        .iter()
        .any(|w| k.contains(w))
            && k != "aws_access_key_id"
}
