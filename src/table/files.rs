//! Plain-file tables: each batch is encoded, split by partition, as its rows
//! arrive, and every file is published with a create-only put once the
//! batch is committed. A batch is durable when all of its files are.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::Utc;
use serde_json::Value;

use super::{Commit, Table, TableError, Traits, Written};
use crate::format::{DictionaryHints, Encoder, FileEncoder};
use crate::layout::{Layout, PartitionKey, TableNames, part_number, partition_rows};
use crate::storage::{StorageError, Store};

/// How plain files behave: STATE stays out of the files, every version's
/// files are kept, and records need no key.
pub const TRAITS: Traits = Traits {
    stores_state: false,
    versions: false,
    needs_keys: false,
    rows_early: true,
};

/// How many times a name clash is retried with a fresh name.
const NAME_ATTEMPTS: usize = 50;

/// Files of one batch encoded at the same time. Rows of further partitions
/// wait as Arrow data and are encoded one file at a time at the commit: a
/// partition key with thousands of values must not hold thousands of
/// encoders.
const OPEN_FILES: usize = 64;

/// The file tables of one run.
pub struct FileTables {
    store: Store,
    encoder: Encoder,
    layout: Layout,
    partitions: Vec<PartitionKey>,
    /// Per table folder: the next LakeXpress part number.
    parts: HashMap<String, u64>,
    /// Per stream: which columns are worth a Parquet dictionary.
    dictionaries: HashMap<String, DictionaryHints>,
    /// Per stream: the files of the batch being filled.
    open: HashMap<String, OpenBatch>,
}

/// A stream's batch while its rows arrive: one file per partition, in the
/// order the partitions first appear.
#[derive(Default)]
struct OpenBatch {
    files: Vec<(String, PartFile)>,
    /// Partition → position in `files`.
    index: HashMap<String, usize>,
}

/// One partition's file of an open batch.
enum PartFile {
    /// Encoded as rows arrive.
    Encoding(FileEncoder),
    /// Rows kept until the commit (past [`OPEN_FILES`]).
    Held(Vec<RecordBatch>),
}

impl FileTables {
    /// Tables below `store`, named by `layout`, encoded by `encoder`.
    pub fn new(
        store: Store,
        encoder: Encoder,
        layout: Layout,
        partitions: Vec<PartitionKey>,
    ) -> Self {
        FileTables {
            store,
            encoder,
            layout,
            partitions,
            parts: HashMap::new(),
            dictionaries: HashMap::new(),
            open: HashMap::new(),
        }
    }

    /// Puts a file under a fresh name; a clash (another writer, same second)
    /// picks the next name.
    fn publish(
        &mut self,
        names: &TableNames,
        partition: &str,
        bytes: Bytes,
    ) -> Result<String, StorageError> {
        let dir = self.layout.table_dir(names);
        let uses_parts = self.layout.uses_parts();
        if uses_parts && !self.parts.contains_key(&dir) {
            let existing = self.store.block_on(self.store.list(&dir))?;
            let next = existing
                .iter()
                .filter_map(|p| part_number(p))
                .max()
                .map_or(0, |m| m + 1);
            self.parts.insert(dir.clone(), next);
        }
        let mut last = None;
        for _ in 0..NAME_ATTEMPTS {
            let part = match uses_parts {
                true => self.parts.get(&dir).copied(),
                false => None,
            };
            let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
            let rel = self
                .layout
                .file_path(names, partition, Utc::now(), part, &unique);
            if let Some(p) = self.parts.get_mut(&dir) {
                *p += 1;
            }
            match self.store.block_on(self.store.put_new(&rel, bytes.clone())) {
                Ok(()) => return Ok(rel),
                Err(StorageError::AlreadyExists(p)) => last = Some(p),
                Err(e) => return Err(e),
            }
        }
        Err(StorageError::Destination {
            dest: self.store.display().to_string(),
            msg: format!(
                "could not find a free file name after {NAME_ATTEMPTS} attempts (last tried {})",
                last.unwrap_or_default()
            ),
        })
    }
}

impl Table for FileTables {
    fn traits(&self) -> Traits {
        TRAITS
    }

    /// Encodes rows into the stream's open files, splitting them by partition.
    fn add_rows(
        &mut self,
        names: &TableNames,
        batches: Vec<RecordBatch>,
    ) -> Result<(), TableError> {
        let stream = &names.stream;
        let open = self.open.entry(stream.clone()).or_default();
        let hints = self.dictionaries.entry(stream.clone()).or_default();
        let format = |source| TableError::Format {
            stream: stream.clone(),
            source,
        };
        // each chunk is dropped once encoded
        for b in batches {
            let parts =
                partition_rows(&b, &self.partitions).map_err(|source| TableError::Partition {
                    stream: stream.clone(),
                    source,
                })?;
            for (key, rows) in parts {
                let i = match open.index.get(&key) {
                    Some(&i) => i,
                    None => {
                        let f = match open.files.len() < OPEN_FILES {
                            true => {
                                PartFile::Encoding(self.encoder.open(&rows, hints).map_err(format)?)
                            }
                            false => PartFile::Held(Vec::new()),
                        };
                        open.index.insert(key.clone(), open.files.len());
                        open.files.push((key, f));
                        open.files.len() - 1
                    }
                };
                match &mut open.files[i].1 {
                    PartFile::Encoding(f) => f.write(&rows).map_err(format)?,
                    PartFile::Held(held) => held.push(rows),
                }
            }
        }
        Ok(())
    }

    fn commit(&mut self, c: Commit<'_>) -> Result<Vec<Written>, TableError> {
        let names = c.names;
        let stream = || names.stream.clone();
        let added = self.add_rows(names, c.batches);
        let open = self.open.remove(&names.stream).unwrap_or_default();
        added?;
        let mut written = Vec::with_capacity(open.files.len());
        for (partition, file) in open.files {
            let hints = self.dictionaries.entry(names.stream.clone()).or_default();
            let encoded = match file {
                PartFile::Encoding(f) => f.finish(hints),
                PartFile::Held(rows) => self.encoder.encode(rows, hints),
            };
            let (n, bytes) = encoded.map_err(|source| TableError::Format {
                stream: stream(),
                source,
            })?;
            let size = bytes.len();
            let path =
                self.publish(names, &partition, bytes)
                    .map_err(|source| TableError::Storage {
                        stream: stream(),
                        source,
                    })?;
            tracing::debug!(stream = %names.stream, path = %path, rows = n, "file written");
            written.push(Written {
                path,
                rows: n,
                bytes: size,
            });
        }
        Ok(written)
    }

    fn record_state(&mut self, _state: &Value) -> Result<(), TableError> {
        Ok(()) // files hold no state: STATE goes to stdout once they are durable
    }

    fn activate_version(
        &mut self,
        names: &TableNames,
        version: i64,
        _column: &str,
    ) -> Result<(), TableError> {
        tracing::debug!(stream = %names.stream, version, "ACTIVATE_VERSION: file destinations keep every version's files");
        Ok(())
    }
}
