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
    unbounded_batches: false,
};

/// The marker of a complete copy (Spark's name), written last.
pub const SUCCESS: &str = "_SUCCESS";

/// The list of a copy's parts with their row counts.
pub const MANIFEST: &str = "_manifest.json";

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

/// Records of the shards of one export, below a table's folder.
const SHARDS: &str = "_shards";

impl FileTables {
    /// A shard's share of a table is durable: its record goes under
    /// `_shards/{export id}/`; the shard that finds all N records there lists
    /// every shard's parts in the manifest, removes what earlier exports
    /// left, and writes `_SUCCESS`. (Two shards finishing at once both do,
    /// to the same effect.)
    fn complete_shard(
        &mut self,
        names: &TableNames,
        manifest: &Value,
        shard: &Value,
    ) -> Result<(), TableError> {
        let dir = self.layout.table_dir(names);
        let storage = |source| TableError::Storage {
            stream: names.stream.clone(),
            source,
        };
        let (id, k, n) = (
            shard["id"].as_str().unwrap_or_default(),
            shard["k"].as_u64().unwrap_or_default(),
            shard["n"].as_u64().unwrap_or_default(),
        );
        let records = format!("{dir}/{SHARDS}/{id}/");
        let record = format!("{records}{k}.json");
        let before = self
            .store
            .block_on(self.store.list(&records))
            .map_err(storage)?;
        if before.contains(&record) && shard["resumed"].as_bool() != Some(true) {
            return Err(storage(StorageError::Destination {
                dest: self.store.full(&dir),
                msg: format!(
                    "shard {k}/{n} of export {id} already wrote its share of this table; \
                     give each export its own --export-id (or --resume the run that stopped)"
                ),
            }));
        }
        let body = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        self.store
            .block_on(self.store.put(&record, Bytes::from(body)))
            .map_err(storage)?;
        let existing = self
            .store
            .block_on(self.store.list(&dir))
            .map_err(storage)?;
        let mine: Vec<&String> = existing
            .iter()
            .filter(|p| p.starts_with(&records) && p.ends_with(".json"))
            .collect();
        if (mine.len() as u64) < n {
            tracing::info!(stream = %names.stream, "shard {k}/{n} of export {id} wrote its share of the table; the last shard to finish completes it");
            return Ok(());
        }
        let mut parts = Vec::new();
        let mut rows = 0u64;
        for p in &mine {
            let rec: Value = self
                .store
                .block_on(self.store.get(p))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            rows += rec["shard_rows"].as_u64().unwrap_or(0);
            parts.extend(rec["parts"].as_array().cloned().unwrap_or_default());
        }
        let keep: std::collections::HashSet<&str> =
            parts.iter().filter_map(|p| p["path"].as_str()).collect();
        let mut combined = manifest.clone();
        combined["rows"] = rows.into();
        combined["parts"] = parts.iter().cloned().collect();
        combined["shard"] = serde_json::json!({"id": id, "n": n, "completed_by": k});
        if let Some(m) = combined.as_object_mut() {
            m.remove("shard_rows");
            m.remove("runs");
        }
        tracing::info!(stream = %names.stream, rows, "shard {k}/{n} completed the table: every shard of export {id} is done");
        self.finish_copy(names, &existing, &keep, &combined, Some(&records))
    }

    /// Ends a copy: deletes inlet's files in the table's folder that `keep`
    /// does not name (parts and markers of earlier copies, the shard records
    /// of other exports than `records`), then writes the manifest and,
    /// last, `_SUCCESS` (Spark's marker). Files that are not inlet's stay.
    fn finish_copy(
        &self,
        names: &TableNames,
        existing: &[String],
        keep: &std::collections::HashSet<&str>,
        manifest: &Value,
        records: Option<&str>,
    ) -> Result<(), TableError> {
        let dir = self.layout.table_dir(names);
        let storage = |source| TableError::Storage {
            stream: names.stream.clone(),
            source,
        };
        let shards = format!("/{SHARDS}/");
        for p in existing {
            let file = p.rsplit('/').next().unwrap_or_default();
            let record = p.contains(&shards) && records.is_none_or(|r| !p.starts_with(r));
            let ours = part_number(file).is_some() || file == MANIFEST || file == SUCCESS || record;
            if ours && !keep.contains(p.as_str()) {
                tracing::debug!(stream = %names.stream, path = %p, "removing a file of an earlier copy");
                self.store.block_on(self.store.delete(p)).map_err(storage)?;
            }
        }
        let leftovers = self.store.remove_local_leftovers(&dir).map_err(storage)?;
        if leftovers > 0 {
            tracing::info!(stream = %names.stream, leftovers, "removed files an interrupted run left");
        }
        let body = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        self.store
            .block_on(
                self.store
                    .put(&format!("{dir}/{MANIFEST}"), Bytes::from(body)),
            )
            .map_err(storage)?;
        self.store
            .block_on(self.store.put(&format!("{dir}/{SUCCESS}"), Bytes::new()))
            .map_err(storage)
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
                pending: None,
                version: None,
            });
        }
        Ok(written)
    }

    /// `_SUCCESS` goes first: from here until the copy completes, the
    /// folder holds old parts, new parts or both.
    fn begin_copy(
        &mut self,
        names: &TableNames,
        _schema: &arrow_schema::SchemaRef,
    ) -> Result<(), TableError> {
        let dir = self.layout.table_dir(names);
        let storage = |source| TableError::Storage {
            stream: names.stream.clone(),
            source,
        };
        let marker = format!("{dir}/{SUCCESS}");
        let existing = self
            .store
            .block_on(self.store.list(&dir))
            .map_err(storage)?;
        if existing.contains(&marker) {
            self.store
                .block_on(self.store.delete(&marker))
                .map_err(storage)?;
        }
        Ok(())
    }

    fn last_copy(&mut self, names: &TableNames) -> Result<Option<Value>, TableError> {
        let dir = self.layout.table_dir(names);
        let storage = |source| TableError::Storage {
            stream: names.stream.clone(),
            source,
        };
        let path = format!("{dir}/{MANIFEST}");
        let existing = self
            .store
            .block_on(self.store.list(&dir))
            .map_err(storage)?;
        if !existing.contains(&path) {
            return Ok(None);
        }
        let body = self
            .store
            .block_on(self.store.get(&path))
            .map_err(storage)?;
        match serde_json::from_slice(&body) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                // an unreadable manifest is not trusted: the run reloads the table
                tracing::warn!(stream = %names.stream, path = %path, "{e}: the manifest cannot be read; the table is copied whole");
                Ok(None)
            }
        }
    }

    /// Deletes the parts (and manifest) that neither this copy wrote nor
    /// the manifest lists, then
    /// writes the manifest and, last, `_SUCCESS` (Spark's marker). Files
    /// that are not inlet's are left alone.
    fn complete_copy(
        &mut self,
        names: &TableNames,
        written: &[Written],
        manifest: &Value,
    ) -> Result<(), TableError> {
        if let Some(shard) = manifest.get("shard") {
            return self.complete_shard(names, manifest, shard);
        }
        let dir = self.layout.table_dir(names);
        let storage = |source| TableError::Storage {
            stream: names.stream.clone(),
            source,
        };
        let listed = manifest["parts"].as_array().into_iter().flatten();
        let keep: std::collections::HashSet<&str> = written
            .iter()
            .map(|w| w.path.as_str())
            .chain(listed.filter_map(|p| p["path"].as_str()))
            .collect();
        let existing = self
            .store
            .block_on(self.store.list(&dir))
            .map_err(storage)?;
        self.finish_copy(names, &existing, &keep, manifest, None)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use object_store::memory::InMemory;

    use super::*;
    use crate::format::{Codec, FileFormat};
    use crate::layout::{LayoutKind, LayoutSettings};

    fn rows(ids: &[i64], country: &str) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
        ]));
        let c: Vec<&str> = ids.iter().map(|_| country).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(c)),
            ],
        )
        .unwrap()
    }

    fn tables(kind: LayoutKind, partitions: &[&str]) -> (Store, FileTables) {
        let store = Store::from_object_store(Arc::new(InMemory::new())).unwrap();
        let encoder = Encoder {
            format: FileFormat::Jsonl,
            codec: Codec::None,
            row_group_size: 1024,
            delimiter: b',',
        };
        let layout = Layout::new(LayoutSettings::of(kind), encoder.extension());
        let keys = partitions
            .iter()
            .map(|p| PartitionKey::parse(p).unwrap())
            .collect();
        let t = FileTables::new(store.clone(), encoder, layout, keys);
        (store, t)
    }

    fn listing(store: &Store) -> Vec<String> {
        let mut l = store.block_on(store.list("")).unwrap();
        l.sort();
        l
    }

    #[test]
    fn rows_handed_over_early_appear_only_with_the_commit() {
        let (store, mut t) = tables(LayoutKind::Mage, &[]);
        let names = t.layout.names("orders");
        t.add_rows(&names, vec![rows(&[1, 2], "FR")]).unwrap();
        assert!(
            listing(&store).is_empty(),
            "nothing is visible before the commit"
        );
        let written = t
            .commit(Commit {
                names: &names,
                keys: &[],
                batches: vec![rows(&[3], "FR")],
                state: None,
            })
            .unwrap();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].rows, 3);
        assert_eq!(listing(&store), vec![written[0].path.clone()]);
        let text = store.block_on(store.get(&written[0].path)).unwrap();
        assert_eq!(String::from_utf8_lossy(&text).lines().count(), 3);
    }

    #[test]
    fn partitions_get_a_file_each_and_parts_continue_across_runs() {
        let (store, mut t) = tables(LayoutKind::Lakexpress, &["country"]);
        let names = t.layout.names("public-orders");
        let batch = arrow_select::concat::concat_batches(
            &rows(&[1], "FR").schema(),
            &[rows(&[1, 2], "FR"), rows(&[3], "DE")],
        )
        .unwrap();
        let commit = |t: &mut FileTables| {
            t.commit(Commit {
                names: &names,
                keys: &[],
                batches: vec![batch.clone()],
                state: None,
            })
            .unwrap()
        };
        let first = commit(&mut t);
        let paths: Vec<&str> = first.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "public/orders/country=FR/part-00000.jsonl",
                "public/orders/country=DE/part-00001.jsonl"
            ]
        );
        // a new run (new tables) numbers its parts after the existing ones
        let (_, mut again) = tables(LayoutKind::Lakexpress, &["country"]);
        again.store = store.clone();
        let second = commit(&mut again);
        assert_eq!(second[0].path, "public/orders/country=FR/part-00002.jsonl");
        assert_eq!(listing(&store).len(), 4);
    }

    #[test]
    fn a_missing_partition_column_fails_the_batch_and_names_the_stream() {
        let (_, mut t) = tables(LayoutKind::Mage, &["region"]);
        let names = t.layout.names("orders");
        let e = t.add_rows(&names, vec![rows(&[1], "FR")]).unwrap_err();
        assert!(matches!(e, TableError::Partition { .. }), "{e}");
        assert!(e.to_string().contains("stream 'orders'"), "{e}");
        assert!(e.to_string().contains("region"), "{e}");
    }

    #[test]
    fn the_last_shard_of_an_export_completes_the_table_and_removes_the_last_export() {
        let (store, mut one) = tables(LayoutKind::Lakexpress, &[]);
        let names = one.layout.names("public.t");
        let commit = |t: &mut FileTables, ids: &[i64]| {
            t.commit(Commit {
                names: &names,
                keys: &[],
                batches: vec![rows(ids, "FR")],
                state: None,
            })
            .unwrap()
        };
        let manifest = |written: &[Written], id: &str, k: u64| {
            serde_json::json!({
                "table": "public.t",
                "shard": {"id": id, "k": k, "n": 2, "first": k == 1},
                "shard_rows": written.iter().map(|w| w.rows).sum::<usize>(),
                "parts": written.iter().map(|w| serde_json::json!({"path": w.path})).collect::<Vec<_>>(),
            })
        };
        // an earlier export's part, completed the usual way
        let old = commit(&mut one, &[0]);
        one.complete_copy(&names, &old, &serde_json::json!({"parts": []}))
            .unwrap();
        let mut two = FileTables::new(
            store.clone(),
            one.encoder.clone(),
            one.layout.clone(),
            Vec::new(),
        );
        // each shard begins its copy (the marker goes), then writes its share
        let schema = rows(&[1], "FR").schema();
        one.begin_copy(&names, &schema).unwrap();
        two.begin_copy(&names, &schema).unwrap();
        let a = commit(&mut one, &[1, 2]);
        let b = commit(&mut two, &[3]);
        let dir = one.layout.table_dir(&names);
        one.complete_copy(&names, &a, &manifest(&a, "e2", 1))
            .unwrap();
        // one shard of two is done: the earlier copy is still whole, no marker
        assert!(listing(&store).contains(&old[0].path));
        assert!(!listing(&store).contains(&format!("{dir}/{SUCCESS}")));
        two.complete_copy(&names, &b, &manifest(&b, "e2", 2))
            .unwrap();
        let l = listing(&store);
        assert!(l.contains(&format!("{dir}/{SUCCESS}")));
        assert!(
            !l.contains(&old[0].path),
            "the earlier export's part is gone"
        );
        let m: Value = serde_json::from_slice(
            &store
                .block_on(store.get(&format!("{dir}/{MANIFEST}")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(m["rows"], 3);
        assert_eq!(m["parts"].as_array().unwrap().len(), 2);
        // the same id again is refused
        let c = commit(&mut one, &[4]);
        let e = one
            .complete_copy(&names, &c, &manifest(&c, "e2", 1))
            .unwrap_err();
        assert!(e.to_string().contains("own --export-id"), "{e}");
    }
}
