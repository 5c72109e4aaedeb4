//! The load plan: the resolved config turned into runtime settings once
//! (encoder, layout, partition keys, table kind, batch limits), so that no
//! later stage parses a setting again or sees the whole config.

use crate::batch::{Limits, Metadata};
use crate::config::{ConfigError, LoadConfig, OnInvalid};
use crate::format::{Codec, Encoder};
use crate::layout::{LayoutSettings, PartitionKey};
use crate::schema::HeaderFormat;
use crate::table::{TableKind, TableSettings};

/// Everything a load needs to know, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The destination URL or folder.
    pub destination: String,
    /// How files are encoded.
    pub encoder: Encoder,
    /// Where files go.
    pub layout: LayoutSettings,
    /// Hive partition keys (columns already renamed).
    pub partitions: Vec<PartitionKey>,
    /// Which kind of table, with its settings.
    pub table: TableSettings,
    /// When a stream's batch is sealed.
    pub limits: Limits,
    /// Metadata columns added to rows.
    pub meta: Metadata,
    /// Column renaming.
    pub headers: HeaderFormat,
    /// Validate records against the SCHEMA.
    pub validate: bool,
    /// What to do with invalid records.
    pub on_invalid: OnInvalid,
    /// Decoding threads to start.
    pub decode_threads: usize,
}

/// The layout part of a config (for the tables and `layout`'s own tests).
pub fn layout_settings(cfg: &LoadConfig) -> LayoutSettings {
    LayoutSettings {
        kind: cfg.layout,
        object_key_path: cfg.object_key_path.clone(),
        table: cfg.table.clone(),
        date_format: cfg.date_partition_format.clone(),
        sub_path: cfg.sub_path.clone(),
        default_schema: cfg.default_schema.clone(),
        template: cfg.path_template.clone(),
    }
}

impl Plan {
    /// Resolves a checked config.
    pub fn new(cfg: &LoadConfig) -> Result<Plan, ConfigError> {
        let destination = cfg.destination()?;
        let codec = Codec::parse(cfg.format.file_format(), cfg.compression.as_deref())?;
        let encoder = Encoder {
            format: cfg.format.file_format(),
            codec,
            row_group_size: cfg.row_group_size,
            delimiter: cfg
                .csv_delimiter
                .as_bytes()
                .first()
                .copied()
                .unwrap_or(b','),
        };
        let partitions = cfg
            .partition_keys
            .iter()
            .map(|p| {
                PartitionKey::parse(p).map(|mut k| {
                    k.column = cfg.column_header_format.apply(&k.column);
                    k
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| ConfigError::Layout {
                key: "partition_keys",
                source,
            })?;
        let table = table_settings(cfg, &encoder, &partitions)?;
        Ok(Plan {
            destination,
            layout: layout_settings(cfg),
            partitions,
            limits: Limits {
                max_bytes: cfg.batch_max_bytes() as usize,
                max_rows: cfg.batch_max_rows as usize,
                max_age: cfg.batch_max_age(),
            },
            meta: Metadata {
                prefix: cfg
                    .add_metadata_columns
                    .then(|| cfg.metadata_column_prefix.clone()),
                table_version: false, // set from the table's traits when it opens
            },
            headers: cfg.column_header_format,
            validate: cfg.validate_records,
            on_invalid: cfg.on_invalid_record,
            decode_threads: cfg.decode_thread_count(),
            encoder,
            table,
        })
    }
}

/// The table kind of the config, with its settings.
#[cfg(feature = "delta")]
fn table_settings(
    cfg: &LoadConfig,
    encoder: &Encoder,
    partitions: &[PartitionKey],
) -> Result<TableSettings, ConfigError> {
    use crate::config::{SchemaMode, WriteMode};
    use crate::table::delta::{DeltaMode, DeltaSettings};
    Ok(match cfg.format.table_kind() {
        TableKind::Files => TableSettings::Files,
        TableKind::Delta => TableSettings::Delta(Box::new(DeltaSettings {
            mode: match cfg.mode {
                WriteMode::Append => DeltaMode::Append,
                WriteMode::Overwrite => DeltaMode::Overwrite,
                WriteMode::Merge => DeltaMode::Merge,
            },
            partition_columns: partitions.iter().map(|k| k.column.clone()).collect(),
            overwrite_partitions: cfg.overwrite_partitions,
            hard_delete: cfg.hard_delete,
            schema_overwrite: cfg.schema_mode == SchemaMode::Overwrite,
            target_file_size: cfg.target_file_size,
            // Mage's table_uri without a destination names the one table itself
            single_table: cfg.destination.as_deref().is_none_or(str::is_empty)
                && cfg.storage.table_uri.is_some(),
            deleted_at_column: cfg.column_header_format.apply("_sdc_deleted_at"),
            encoder: encoder.clone(),
            copy: false,
        })),
    })
}

/// The table kind of the config (this build writes plain files only).
#[cfg(not(feature = "delta"))]
fn table_settings(
    cfg: &LoadConfig,
    _encoder: &Encoder,
    _partitions: &[PartitionKey],
) -> Result<TableSettings, ConfigError> {
    match cfg.format.table_kind() {
        TableKind::Files => Ok(TableSettings::Files),
        TableKind::Delta => Err(ConfigError::Value {
            key: "format".into(),
            msg: "this inlet was built without Delta support (cargo feature `delta`); \
                  use a release build, or format parquet, csv or jsonl"
                .into(),
        }),
    }
}
