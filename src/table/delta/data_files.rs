//! Data files of a Delta table, written by inlet's own streaming Parquet
//! encoder (the plain-file path's): rows are encoded as they arrive, one
//! open file per partition, and each finished file is uploaded at once
//! under a fresh `[k=v/]part-…-c000.snappy.parquet` name, invisible until a
//! commit adds it. Each file's `add` action carries its partition values and
//! statistics read from the footer the encoder returns ([`super::stats`]).

use std::collections::HashMap;

use arrow_array::RecordBatch;
use delta_kernel::expressions::Scalar;
use deltalake::kernel::Add;
use deltalake::kernel::scalars::ScalarExt;

use super::Cause;
use super::stats::{StatsColumns, stats_json};
use crate::format::{Codec, DictionaryHints, Encoder, FileEncoder};
use crate::storage::Store;

/// Files open at once; past this the biggest open file is finished early,
/// so a partition key with thousands of values holds a bounded number of
/// encoders (more, smaller files rather than unbounded memory).
const OPEN_FILES: usize = 64;

/// The data files of one table being written (a flush, or a copy's part).
pub(super) struct DataFiles {
    /// The table's folder below the destination ("" for the destination itself).
    dir: String,
    partition_columns: Vec<String>,
    encoder: Encoder,
    columns: StatsColumns,
    /// Finish a file once it holds this many encoded bytes.
    target: Option<u64>,
    open: Vec<OpenFile>,
    /// Hive path of a partition → its position in `open`.
    index: HashMap<String, usize>,
    done: Vec<Add>,
    /// A file's number within this writer (Spark's `part-NNNNN`).
    next_part: usize,
}

struct OpenFile {
    /// `k=v/…` ("" when the table has no partitions).
    hive: String,
    values: HashMap<String, Option<String>>,
    file: FileEncoder,
}

impl DataFiles {
    /// Files for the table in `dir`, statistics on `columns`.
    pub(super) fn new(
        dir: &str,
        partition_columns: &[String],
        encoder: &Encoder,
        columns: StatsColumns,
        target: Option<u64>,
    ) -> DataFiles {
        DataFiles {
            dir: dir.trim_matches('/').to_string(),
            partition_columns: partition_columns.to_vec(),
            encoder: Encoder {
                format: crate::format::FileFormat::Parquet,
                ..encoder.clone()
            },
            columns,
            target,
            open: Vec::new(),
            index: HashMap::new(),
            done: Vec::new(),
            next_part: 0,
        }
    }

    /// Encodes `batch` (rows as Delta holds them) into its partitions' files.
    pub(super) fn write(
        &mut self,
        store: &Store,
        batch: &RecordBatch,
        hints: &mut DictionaryHints,
    ) -> Result<(), Cause> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (hive, values, rows) in self.split(batch)? {
            self.write_partition(store, hive, values, &rows, hints)?;
        }
        Ok(())
    }

    /// Encodes `rows` (without partition columns) into the file of the
    /// partition at `hive` with partition `values`.
    pub(super) fn write_partition(
        &mut self,
        store: &Store,
        hive: String,
        values: HashMap<String, Option<String>>,
        rows: &RecordBatch,
        hints: &mut DictionaryHints,
    ) -> Result<(), Cause> {
        let i = match self.index.get(&hive) {
            Some(&i) => i,
            None => {
                if self.open.len() >= OPEN_FILES {
                    self.finish_biggest(store, hints)?;
                }
                let file = self.encoder.open(rows, hints)?;
                self.index.insert(hive.clone(), self.open.len());
                self.open.push(OpenFile { hive, values, file });
                self.open.len() - 1
            }
        };
        self.open[i].file.write(rows)?;
        if self
            .target
            .is_some_and(|t| self.open[i].file.size() as u64 >= t)
        {
            self.finish(store, i, hints)?;
        }
        Ok(())
    }

    /// Finishes every open file: the `add` actions of all files written.
    pub(super) fn close(
        mut self,
        store: &Store,
        hints: &mut DictionaryHints,
    ) -> Result<Vec<Add>, Cause> {
        while !self.open.is_empty() {
            self.finish(store, self.open.len() - 1, hints)?;
        }
        Ok(self.done)
    }

    fn finish_biggest(&mut self, store: &Store, hints: &mut DictionaryHints) -> Result<(), Cause> {
        let biggest = (0..self.open.len()).max_by_key(|&i| self.open[i].file.size());
        match biggest {
            Some(i) => self.finish(store, i, hints),
            None => Ok(()),
        }
    }

    /// Completes open file `i` and uploads it.
    fn finish(
        &mut self,
        store: &Store,
        i: usize,
        hints: &mut DictionaryHints,
    ) -> Result<(), Cause> {
        let f = self.open.swap_remove(i);
        self.index.remove(&f.hive);
        if let Some(moved) = self.open.get(i) {
            self.index.insert(moved.hive.clone(), i);
        }
        let (_, bytes, meta) = f.file.finish_parquet(hints)?;
        let meta =
            meta.ok_or_else(|| Cause::Refused("a Delta data file must be Parquet".into()))?;
        let name = format!(
            "part-{:05}-{}-c000{}.parquet",
            self.next_part,
            uuid::Uuid::new_v4(),
            codec_suffix(self.encoder.codec)
        );
        self.next_part += 1;
        let path = match f.hive.is_empty() {
            true => name,
            false => format!("{}/{name}", f.hive),
        };
        let rel = match self.dir.is_empty() {
            true => path.clone(),
            false => format!("{}/{path}", self.dir),
        };
        let size = bytes.len() as i64;
        store.block_on(store.put_new(&rel, bytes))?;
        tracing::debug!(path = %rel, rows = meta.file_metadata().num_rows(), size, "delta data file written");
        self.done.push(Add {
            path,
            partition_values: f.values,
            size,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats_json(&meta, &self.columns)),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        });
        Ok(())
    }

    /// The rows of each partition, without the partition columns (Delta
    /// keeps their values in the log, not in the files).
    #[allow(clippy::type_complexity)]
    fn split(
        &self,
        batch: &RecordBatch,
    ) -> Result<Vec<(String, HashMap<String, Option<String>>, RecordBatch)>, Cause> {
        if self.partition_columns.is_empty() {
            return Ok(vec![(String::new(), HashMap::new(), batch.clone())]);
        }
        let schema = batch.schema();
        let mut keys: Vec<usize> = Vec::with_capacity(self.partition_columns.len());
        for c in &self.partition_columns {
            keys.push(schema.index_of(c).map_err(|_| {
                Cause::Refused(format!("partition column '{c}' is not in the data"))
            })?);
        }
        let rest: Vec<usize> = (0..schema.fields().len())
            .filter(|i| !keys.contains(i))
            .collect();
        let mut order: Vec<(String, HashMap<String, Option<String>>)> = Vec::new();
        let mut rows: HashMap<String, Vec<u32>> = HashMap::new();
        for r in 0..batch.num_rows() {
            let mut hive = String::new();
            let mut values = HashMap::with_capacity(keys.len());
            for (&k, name) in keys.iter().zip(&self.partition_columns) {
                let col = batch.column(k);
                let v = Scalar::from_array(col.as_ref(), r).ok_or_else(|| {
                    Cause::Refused(format!(
                        "partition column '{name}' is of type {}, which cannot name a partition",
                        col.data_type()
                    ))
                })?;
                if !hive.is_empty() {
                    hive.push('/');
                }
                hive.push_str(&format!("{name}={}", v.serialize_encoded()));
                values.insert(name.clone(), (!v.is_null()).then(|| v.serialize()));
            }
            let entry = rows.entry(hive.clone()).or_insert_with(|| {
                order.push((hive, values));
                Vec::new()
            });
            entry.push(r as u32);
        }
        let data = batch.project(&rest)?;
        order
            .into_iter()
            .map(|(hive, values)| {
                let idx = &rows[&hive];
                let part = match idx.len() == batch.num_rows() {
                    true => data.clone(),
                    false => super::commit::take_rows(&data, idx)?,
                };
                Ok((hive, values, part))
            })
            .collect()
    }
}

/// Hadoop's codec suffix in data file names, as Spark and delta-rs write it.
fn codec_suffix(codec: Codec) -> &'static str {
    match codec {
        Codec::None => "",
        Codec::Snappy => ".snappy",
        Codec::Zstd => ".zstd",
        Codec::Gzip => ".gz",
        Codec::Lz4 => ".lz4raw",
    }
}
