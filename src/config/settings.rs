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

const fn secret(
    name: &'static str,
    aliases: &'static [&'static str],
    description: &'static str,
) -> Setting {
    Setting {
        name,
        aliases,
        kind: SettingKind::String,
        default: "",
        description,
        secret: true,
    }
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
        "Where files go: a local folder, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix, \
         abfss://container@account.dfs.core.windows.net/prefix or https://account.blob.core.windows.net/container/prefix.",
    ),
    s(
        "format",
        &["file_type"],
        Options(&["parquet", "csv", "jsonl", "delta"]),
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
        "decode_threads",
        &[],
        Integer,
        "0 (1 below 4 cores, else half the cores, at most 4)",
        "Threads that decode RECORD lines; 1 decodes on the main thread.",
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
    // ---- Delta Lake (format: delta) ----
    s(
        "mode",
        &["write_mode"],
        Options(&["append", "overwrite", "merge"]),
        "append",
        "Delta: append every flush; overwrite (the run replaces the table, or with partition_keys only its partitions); merge (upsert on key_properties).",
    ),
    s(
        "overwrite_partitions",
        &[],
        Boolean,
        "false",
        "Delta overwrite: replace only the partitions present in the run's data.",
    ),
    s(
        "hard_delete",
        &[],
        Boolean,
        "false",
        "Delta merge: delete rows whose _sdc_deleted_at is set (else keep them as soft-deleted rows).",
    ),
    s(
        "schema_mode",
        &[],
        Options(&["merge", "overwrite"]),
        "merge",
        "Delta: new nullable columns are added (merge); overwrite lets an overwrite run replace the table's schema.",
    ),
    s(
        "target_file_size",
        &[],
        Integer,
        "none (inlet write: 104857600)",
        "Delta: a data file is finished (and a new one begun) once it holds this many encoded bytes; by default inlet load writes one file per flush and partition, inlet write rolls at 100 MiB.",
    ),
    // ---- object storage (see storage::options) ----
    s(
        "bucket",
        &[],
        String,
        "",
        "Mage's bucket key: the destination becomes s3://BUCKET (gs://BUCKET when google_application_credentials is set), with object_key_path below it.",
    ),
    s(
        "table_uri",
        &[],
        String,
        "",
        "Mage's Delta key (e.g. abfss://container@account.dfs.core.windows.net/path): the destination when none is set.",
    ),
    s(
        "aws_access_key_id",
        &["access_key_id"],
        String,
        "",
        "S3 access key id (with aws_secret_access_key). Without keys, the AWS credential chain is used: AWS_* variables, aws_profile / AWS_PROFILE, SSO, web identity, container and instance roles.",
    ),
    secret(
        "aws_secret_access_key",
        &["secret_access_key"],
        "S3 secret access key.",
    ),
    secret(
        "aws_session_token",
        &["session_token", "aws_token"],
        "S3 session token for temporary keys.",
    ),
    s(
        "aws_region",
        &["region", "region_name"],
        String,
        "AWS_REGION, the profile's region, else us-east-1",
        "S3 region of the bucket.",
    ),
    s(
        "aws_endpoint",
        &["endpoint_url", "aws_endpoint_url", "endpoint"],
        String,
        "",
        "S3-compatible endpoint (MinIO, Wasabi, Backblaze B2, OVH, DigitalOcean Spaces, …); http:// endpoints are allowed only when given so.",
    ),
    s(
        "aws_profile",
        &["profile"],
        String,
        "AWS_PROFILE",
        "Named profile of ~/.aws/credentials and ~/.aws/config (its region and endpoint_url are used too).",
    ),
    s(
        "role_arn",
        &["aws_role_arn"],
        String,
        "",
        "IAM role to assume through STS, from whatever base credentials exist.",
    ),
    s(
        "role_session_name",
        &[],
        String,
        "generated",
        "Session name of the assumed role.",
    ),
    s(
        "external_id",
        &[],
        String,
        "",
        "External id of the assumed role.",
    ),
    s(
        "aws_virtual_hosted_style",
        &[],
        Boolean,
        "false",
        "Virtual-hosted-style S3 URLs (bucket.endpoint) instead of path style.",
    ),
    s(
        "aws_server_side_encryption",
        &["server_side_encryption"],
        Options(&["AES256", "aws:kms"]),
        "",
        "Server-side encryption: AES256 (SSE-S3) or aws:kms (SSE-KMS, with aws_sse_kms_key_id).",
    ),
    s(
        "aws_sse_kms_key_id",
        &["sse_kms_key_id", "kms_key_id"],
        String,
        "",
        "KMS key id or ARN for SSE-KMS.",
    ),
    s(
        "aws_conditional_put",
        &[],
        Options(&["etag", "disabled"]),
        "etag",
        "Create-only puts with If-None-Match; 'disabled' for S3-compatibles that reject it (inlet then checks with HEAD first).",
    ),
    s(
        "google_application_credentials",
        &[
            "credentials_file",
            "google_service_account_path",
            "gcs_credentials",
        ],
        String,
        "GOOGLE_APPLICATION_CREDENTIALS, else gcloud's application default credentials",
        "GCS service-account JSON file (or an authorized-user ADC file).",
    ),
    s(
        "gcs_endpoint",
        &["gcs_base_url"],
        String,
        "https://storage.googleapis.com",
        "GCS endpoint (a private endpoint or an emulator).",
    ),
    s(
        "account_name",
        &["azure_storage_account_name", "azure_account_name"],
        String,
        "",
        "Azure storage account (also taken from abfss://container@ACCOUNT.dfs.core.windows.net URLs).",
    ),
    secret(
        "access_key",
        &[
            "account_key",
            "azure_storage_account_key",
            "azure_account_key",
        ],
        "Azure storage account key.",
    ),
    secret(
        "sas_token",
        &["azure_storage_sas_token", "azure_sas_token"],
        "Azure SAS token (the query string, sv=…&sig=…).",
    ),
    s(
        "azure_tenant_id",
        &["tenant_id"],
        String,
        "",
        "Azure service principal tenant (with azure_client_id and azure_client_secret).",
    ),
    s(
        "azure_client_id",
        &["client_id"],
        String,
        "",
        "Azure service principal client id, or the client id of a user-assigned managed identity.",
    ),
    secret(
        "azure_client_secret",
        &["client_secret"],
        "Azure service principal secret.",
    ),
    s(
        "azure_endpoint",
        &["azure_storage_endpoint"],
        String,
        "https://ACCOUNT.blob.core.windows.net",
        "Azure blob endpoint (Azurite, sovereign clouds, private endpoints).",
    ),
    s(
        "azure_msi_endpoint",
        &[],
        String,
        "the instance metadata service",
        "Managed identity token endpoint (with no key, SAS or service principal, a managed identity is used).",
    ),
    s(
        "azure_authority_host",
        &[],
        String,
        "https://login.microsoftonline.com",
        "OAuth authority of service principals (sovereign clouds).",
    ),
    s(
        "azure_use_emulator",
        &[],
        Boolean,
        "false",
        "Use Azurite at 127.0.0.1:10000 with its well-known development account.",
    ),
    s(
        "storage_max_retries",
        &["max_retries"],
        Integer,
        "10",
        "Retries of a request that failed with a transient error (5xx, throttling, connection reset, timeout), with exponential backoff.",
    ),
    s(
        "storage_retry_timeout_seconds",
        &[],
        Integer,
        "180",
        "Stop retrying a request after this many seconds.",
    ),
    s(
        "storage_request_timeout_seconds",
        &[],
        Integer,
        "60",
        "Timeout of one storage request.",
    ),
    s(
        "storage_connect_timeout_seconds",
        &[],
        Integer,
        "10",
        "Timeout of connecting to the storage endpoint.",
    ),
    s(
        "multipart_part_size_mb",
        &[],
        Integer,
        "32",
        "Files larger than this go to object storage as multipart uploads of parts this size (minimum 5).",
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
