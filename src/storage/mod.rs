//! A destination URL → an [`ObjectStore`], plus the few operations inlet
//! needs: create-only puts (a file appears whole under its final name, and
//! never replaces another), listing, and the `inlet check` probe. Local
//! folders, S3 and S3-compatibles, GCS and Azure all go through here.

pub mod auth;
pub mod aws;
mod check;
mod errors;
pub mod location;
pub mod options;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

pub use check::{CheckStep, check};
pub use errors::redact;
pub use location::Location;
pub use options::StorageConfig;

/// Storage errors (exit code 5).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The destination cannot be used at all.
    #[error("destination {dest}: {msg}")]
    Destination {
        /// Destination as configured (secrets redacted).
        dest: String,
        /// What to fix.
        msg: String,
    },
    /// The destination's settings are unusable (a config error, exit code 3).
    #[error("destination {dest}: {msg}")]
    Setup {
        /// Destination as configured.
        dest: String,
        /// What to fix.
        msg: String,
    },
    /// An object already exists (create-only put).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An operation on one object failed; the message says what to fix.
    #[error("{op} {path}: {msg}")]
    Object {
        /// put / get / list / delete.
        op: &'static str,
        /// Full object path (URL).
        path: String,
        /// What happened and what to do (secrets redacted).
        msg: String,
        /// The missing permission, when the store refused access.
        permission: Option<&'static str>,
    },
    /// The bucket answered with a redirect to another region (replaced by
    /// an [`StorageError::Object`] naming the regions once S3 was asked).
    #[error("{op} {path}: the bucket is in another region ({detail})")]
    WrongRegion {
        /// put / get / list / delete.
        op: &'static str,
        /// Full object path (URL).
        path: String,
        /// The store's own message.
        detail: String,
    },
    /// An object path is not valid.
    #[error("invalid object path '{path}': {msg}")]
    Path {
        /// The path.
        path: String,
        /// Why.
        msg: String,
    },
}

impl StorageError {
    /// The settings are at fault (exit code 3), not the destination.
    pub fn is_config(&self) -> bool {
        matches!(self, StorageError::Setup { .. })
    }
}

/// A destination: an object store, the prefix inside it, and the runtime
/// that drives its I/O (one per store, so connections and credential
/// refreshes always run on the same runtime whichever thread asks).
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// The bucket/container root (no prefix), for Delta's log store.
    root: Arc<dyn ObjectStore>,
    location: Location,
    display: String,
    region: Option<String>,
    s3_endpoint: Option<String>,
    part_size: usize,
    /// The server rejected create-only puts; fall back to HEAD + PUT.
    no_conditional_put: Arc<AtomicBool>,
    rt: Arc<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.display)
    }
}

impl Store {
    /// Opens a local folder (created if missing) with default settings.
    pub fn open(destination: &str) -> Result<Store, StorageError> {
        Self::open_with(destination, &StorageConfig::default())
    }

    /// Opens a destination URL or folder with credentials and retry settings.
    pub fn open_with(destination: &str, cfg: &StorageConfig) -> Result<Store, StorageError> {
        let err = |msg: String| StorageError::Setup {
            dest: destination.to_string(),
            msg,
        };
        let location = Location::parse(destination).map_err(|e| err(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("inlet-io")
            .enable_all()
            .build()
            .map_err(|e| err(format!("cannot start the I/O runtime: {e}")))?;
        let mut region = None;
        let mut s3_endpoint = None;
        let inner: Arc<dyn ObjectStore> = match &location {
            Location::Local { path } => {
                std::fs::create_dir_all(path).map_err(|e| StorageError::Destination {
                    dest: destination.to_string(),
                    msg: format!("cannot create the folder: {e}"),
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(path).map_err(|e| err(e.to_string()))?)
            }
            Location::S3 { bucket, .. } => {
                let (s, info) = rt.block_on(aws::s3_store(bucket, cfg)).map_err(err)?;
                tracing::debug!(region = %info.region, endpoint = ?info.endpoint, credentials = info.credentials, "S3 destination");
                region = Some(info.region);
                s3_endpoint = info.endpoint;
                s
            }
            Location::Gcs { bucket, .. } => cfg.gcs(bucket).map_err(err)?,
            Location::Azure {
                account, container, ..
            } => cfg.azure(account.as_deref(), container).map_err(err)?,
            Location::Memory => {
                return Err(err("memory:// is for stores handed in whole".into()));
            }
        };
        let prefix = location.prefix();
        let root = Arc::clone(&inner);
        let inner = if prefix.is_empty() {
            inner
        } else {
            let p = Path::parse(prefix).map_err(|e| err(format!("invalid prefix: {e}")))?;
            Arc::new(PrefixStore::new(inner, p)) as Arc<dyn ObjectStore>
        };
        Ok(Store {
            inner,
            root,
            display: location.to_string(),
            location,
            region,
            s3_endpoint,
            part_size: cfg.part_size(),
            no_conditional_put: Arc::new(AtomicBool::new(false)),
            rt: Arc::new(rt),
        })
    }

    /// Wraps any object store (an in-memory one in tests) as a destination
    /// at its root.
    pub fn from_object_store(store: Arc<dyn ObjectStore>) -> Result<Store, StorageError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("inlet-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Setup {
                dest: Location::Memory.to_string(),
                msg: format!("cannot start the I/O runtime: {e}"),
            })?;
        Ok(Store {
            root: Arc::clone(&store),
            inner: store,
            display: Location::Memory.to_string(),
            location: Location::Memory,
            region: None,
            s3_endpoint: None,
            part_size: StorageConfig::default().part_size(),
            no_conditional_put: Arc::new(AtomicBool::new(false)),
            rt: Arc::new(rt),
        })
    }

    /// The destination as shown to users.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Which backend this is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The bucket or container root, without the destination's prefix.
    pub fn root(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.root)
    }

    /// Runs a storage future to completion on this store's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    fn path(rel: &str) -> Result<Path, StorageError> {
        Path::parse(rel).map_err(|e| StorageError::Path {
            path: rel.to_string(),
            msg: e.to_string(),
        })
    }

    /// Full URL of a relative path, for messages.
    pub fn full(&self, rel: &str) -> String {
        format!("{}/{}", self.display.trim_end_matches('/'), rel)
    }

    fn object_err(&self, op: &'static str, rel: &str, e: object_store::Error) -> StorageError {
        errors::explain(self, op, &self.full(rel), e)
    }

    /// Writes a complete object that must not exist yet. Large objects go
    /// up as a multipart upload; either way the object appears only whole.
    pub async fn put_new(&self, rel: &str, bytes: Bytes) -> Result<(), StorageError> {
        let r = self.put_new_inner(rel, bytes).await;
        self.with_region(r).await
    }

    async fn put_new_inner(&self, rel: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = Self::path(rel)?;
        if bytes.len() > self.part_size && !matches!(self.location, Location::Local { .. }) {
            return self.put_multipart_new(rel, &path, bytes).await;
        }
        if self.no_conditional_put.load(Ordering::Relaxed) {
            self.fail_if_exists(rel, &path).await?;
            return self
                .inner
                .put(&path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| self.object_err("put", rel, e));
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                Err(StorageError::AlreadyExists(self.full(rel)))
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                tracing::warn!(
                    "{} does not support create-only puts; checking for an existing object before each put instead",
                    self.display
                );
                self.no_conditional_put.store(true, Ordering::Relaxed);
                Box::pin(self.put_new_inner(rel, bytes)).await
            }
            Err(e) => Err(self.object_err("put", rel, e)),
        }
    }

    async fn fail_if_exists(&self, rel: &str, path: &Path) -> Result<(), StorageError> {
        match self.inner.head(path).await {
            Ok(_) => Err(StorageError::AlreadyExists(self.full(rel))),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.object_err("put", rel, e)),
        }
    }

    /// Multipart upload from the encoded file, part by part without copying.
    async fn put_multipart_new(
        &self,
        rel: &str,
        path: &Path,
        bytes: Bytes,
    ) -> Result<(), StorageError> {
        // multipart uploads cannot be create-only: look first (names carry a
        // random part, so only a clashing LakeXpress part number can race)
        self.fail_if_exists(rel, path).await?;
        let upload = self
            .inner
            .put_multipart(path)
            .await
            .map_err(|e| self.object_err("put", rel, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let mut off = 0;
        while off < bytes.len() {
            let end = (off + self.part_size).min(bytes.len());
            if let Err(e) = w.wait_for_capacity(4).await {
                let _ = w.abort().await;
                return Err(self.object_err("put", rel, e));
            }
            w.put(bytes.slice(off..end));
            off = end;
        }
        w.finish()
            .await
            .map(|_| ())
            .map_err(|e| self.object_err("put", rel, e))
    }

    /// A bucket in another region than configured: ask S3 which one (the
    /// redirect object_store sees carries no Location to tell).
    async fn with_region<T>(&self, r: Result<T, StorageError>) -> Result<T, StorageError> {
        match r {
            Err(StorageError::WrongRegion { op, path, .. }) => {
                let bucket = match &self.location {
                    Location::S3 { bucket, .. } => bucket.clone(),
                    _ => String::new(),
                };
                let actual = aws::bucket_region(self.s3_endpoint.as_deref(), &bucket).await;
                Err(StorageError::Object {
                    op,
                    path,
                    msg: errors::region_message(&bucket, self.region.as_deref(), actual.as_deref()),
                    permission: None,
                })
            }
            other => other,
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, rel: &str) -> Result<Bytes, StorageError> {
        let r = self.get_inner(rel).await;
        self.with_region(r).await
    }

    async fn get_inner(&self, rel: &str) -> Result<Bytes, StorageError> {
        let path = Self::path(rel)?;
        let obj = |e| self.object_err("get", rel, e);
        self.inner
            .get(&path)
            .await
            .map_err(obj)?
            .bytes()
            .await
            .map_err(|e| self.object_err("get", rel, e))
    }

    /// Writes a small object, replacing any object of that name (markers and
    /// manifests; data files use [`Store::put_new`]).
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = Self::path(rel)?;
        let r = self
            .inner
            .put(&path, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| self.object_err("put", rel, e));
        self.with_region(r).await
    }

    /// On a local folder, removes what interrupted uploads left under
    /// `rel_dir`: object_store writes `name#N` and renames it when complete,
    /// so a killed process leaves the `#N` file behind, unlisted but visible
    /// to readers of the folder. Object stores keep no such thing. Returns
    /// how many were removed.
    pub fn remove_local_leftovers(&self, rel_dir: &str) -> Result<usize, StorageError> {
        let Location::Local { path } = &self.location else {
            return Ok(0);
        };
        let root = std::path::Path::new(path).join(rel_dir);
        let mut removed = 0;
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue; // not there yet: nothing left over
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                    continue;
                }
                let name = e.file_name().to_string_lossy().into_owned();
                let staged = name
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if staged {
                    std::fs::remove_file(&p).map_err(|err| StorageError::Destination {
                        dest: self.display().to_string(),
                        msg: format!("cannot remove the leftover {}: {err}", p.display()),
                    })?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Deletes an object; one already gone is deleted too (as S3 has it:
    /// concurrent shards may clean up the same file).
    pub async fn delete(&self, rel: &str) -> Result<(), StorageError> {
        let path = Self::path(rel)?;
        let r = match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.object_err("delete", rel, e)),
        };
        self.with_region(r).await
    }

    /// Every object path under a folder (recursively).
    pub async fn list(&self, rel_dir: &str) -> Result<Vec<String>, StorageError> {
        let prefix = if rel_dir.is_empty() {
            None
        } else {
            Some(Self::path(rel_dir)?)
        };
        let r = self
            .inner
            .list(prefix.as_ref())
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(|e| self.object_err("list", rel_dir, e));
        self.with_region(r).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_interrupted_local_uploads_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("s/t");
        std::fs::create_dir_all(t.join("k=v")).unwrap();
        for f in [
            "part-00000.parquet",
            "k=v/part-00001.parquet#12",
            "notes#draft",
        ] {
            std::fs::write(t.join(f), b"x").unwrap();
        }
        let store = Store::open(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(store.remove_local_leftovers("s/t").unwrap(), 1);
        assert!(t.join("part-00000.parquet").exists() && t.join("notes#draft").exists());
        assert!(!t.join("k=v/part-00001.parquet#12").exists());
        assert_eq!(store.remove_local_leftovers("s/none").unwrap(), 0);
    }

    #[test]
    fn create_only_put_and_check() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("dest").to_str().unwrap()).unwrap();
        s.block_on(s.put_new("a/b.txt", Bytes::from_static(b"x")))
            .unwrap();
        assert!(matches!(
            s.block_on(s.put_new("a/b.txt", Bytes::from_static(b"y"))),
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(
            s.block_on(s.get("a/b.txt")).unwrap(),
            Bytes::from_static(b"x")
        );
        assert_eq!(
            s.block_on(s.list("a")).unwrap(),
            vec!["a/b.txt".to_string()]
        );
        let steps = s.block_on(check(&s));
        assert!(steps.iter().all(|s| s.result.is_ok()), "{steps:?}");
        assert_eq!(steps.len(), 4);
        assert!(s.block_on(s.list("_inlet_check")).unwrap().is_empty());
    }

    #[test]
    fn unknown_schemes_say_what_to_do() {
        let e = Store::open("ftp://bucket/x").unwrap_err().to_string();
        assert!(e.contains("s3://"), "{e}");
    }
}
