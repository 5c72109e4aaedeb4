//! A destination URL → an [`ObjectStore`], plus the few operations inlet
//! needs: create-only puts (a file appears whole under its final name, and
//! never replaces another), listing, and the `inlet check` probe.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

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
    /// An object already exists (create-only put).
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An operation on one object failed.
    #[error("{op} {path}: {source}")]
    Object {
        /// put / get / list / delete.
        op: &'static str,
        /// Full object path.
        path: String,
        /// Underlying error (boxed: object_store's error is large).
        source: Box<object_store::Error>,
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

/// A destination: an object store and the prefix inside it.
#[derive(Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    display: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.display)
    }
}

impl Store {
    /// Opens a destination: a local folder (created if missing) or `file://` URL.
    pub fn open(destination: &str) -> Result<Store, StorageError> {
        let err = |msg: String| StorageError::Destination {
            dest: destination.to_string(),
            msg,
        };
        let local = if let Some(rest) = destination.strip_prefix("file://") {
            rest.to_string()
        } else if let Some((scheme, _)) = destination.split_once("://") {
            return Err(err(format!(
                "'{scheme}://' destinations are not supported by this build yet; use a local folder"
            )));
        } else {
            destination.to_string()
        };
        std::fs::create_dir_all(&local)
            .map_err(|e| err(format!("cannot create the folder: {e}")))?;
        let fs = LocalFileSystem::new_with_prefix(&local).map_err(|e| err(e.to_string()))?;
        Ok(Store {
            inner: Arc::new(fs),
            display: local,
        })
    }

    /// The destination as shown to users.
    pub fn display(&self) -> &str {
        &self.display
    }

    fn path(rel: &str) -> Result<Path, StorageError> {
        Path::parse(rel).map_err(|e| StorageError::Path {
            path: rel.to_string(),
            msg: e.to_string(),
        })
    }

    fn full(&self, rel: &str) -> String {
        format!("{}/{}", self.display.trim_end_matches('/'), rel)
    }

    /// Writes a complete object that must not exist yet.
    pub async fn put_new(&self, rel: &str, bytes: Bytes) -> Result<(), StorageError> {
        let path = Self::path(rel)?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                Err(StorageError::AlreadyExists(self.full(rel)))
            }
            Err(source) => Err(StorageError::Object {
                op: "put",
                path: self.full(rel),
                source: Box::new(source),
            }),
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, rel: &str) -> Result<Bytes, StorageError> {
        let path = Self::path(rel)?;
        let obj = |source: object_store::Error| StorageError::Object {
            op: "get",
            path: self.full(rel),
            source: Box::new(source),
        };
        self.inner
            .get(&path)
            .await
            .map_err(obj)?
            .bytes()
            .await
            .map_err(obj)
    }

    /// Deletes an object.
    pub async fn delete(&self, rel: &str) -> Result<(), StorageError> {
        let path = Self::path(rel)?;
        self.inner
            .delete(&path)
            .await
            .map_err(|source| StorageError::Object {
                op: "delete",
                path: self.full(rel),
                source: Box::new(source),
            })
    }

    /// Every object path under a folder (recursively).
    pub async fn list(&self, rel_dir: &str) -> Result<Vec<String>, StorageError> {
        let prefix = if rel_dir.is_empty() {
            None
        } else {
            Some(Self::path(rel_dir)?)
        };
        self.inner
            .list(prefix.as_ref())
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(|source| StorageError::Object {
                op: "list",
                path: self.full(rel_dir),
                source: Box::new(source),
            })
    }
}

/// One step of `inlet check`.
#[derive(Debug)]
pub struct CheckStep {
    /// Step name.
    pub step: &'static str,
    /// Outcome.
    pub result: Result<(), String>,
}

/// Writes, reads back, lists and deletes a probe object; stops at the first failure.
pub async fn check(store: &Store) -> Vec<CheckStep> {
    let rel = format!("_inlet_check/probe-{}.txt", uuid::Uuid::new_v4().simple());
    let body = Bytes::from(format!("inlet check {}", rel));
    let mut steps = Vec::new();
    let mut step = |step, result: Result<(), StorageError>| {
        let ok = result.is_ok();
        steps.push(CheckStep {
            step,
            result: result.map_err(|e| e.to_string()),
        });
        ok
    };
    if !step("put", store.put_new(&rel, body.clone()).await) {
        return steps;
    }
    let read = store.get(&rel).await.and_then(|b| {
        if b == body {
            Ok(())
        } else {
            Err(StorageError::Destination {
                dest: store.display.clone(),
                msg: "the probe read back differs from what was written".into(),
            })
        }
    });
    let read_ok = step("get", read);
    let listed = store.list("_inlet_check").await.and_then(|l| {
        if l.contains(&rel) {
            Ok(())
        } else {
            Err(StorageError::Destination {
                dest: store.display.clone(),
                msg: "the probe is missing from the listing".into(),
            })
        }
    });
    let list_ok = step("list", listed);
    step("delete", store.delete(&rel).await);
    let _ = (read_ok, list_ok);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn create_only_put_and_check() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path().join("dest").to_str().unwrap()).unwrap();
        s.put_new("a/b.txt", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(matches!(
            s.put_new("a/b.txt", Bytes::from_static(b"y")).await,
            Err(StorageError::AlreadyExists(_))
        ));
        assert_eq!(s.get("a/b.txt").await.unwrap(), Bytes::from_static(b"x"));
        assert_eq!(s.list("a").await.unwrap(), vec!["a/b.txt".to_string()]);
        let steps = check(&s).await;
        assert!(steps.iter().all(|s| s.result.is_ok()), "{steps:?}");
        assert_eq!(steps.len(), 4);
        assert!(s.list("_inlet_check").await.unwrap().is_empty());
    }

    #[test]
    fn cloud_urls_say_what_to_do() {
        let e = Store::open("s3://bucket/x").unwrap_err().to_string();
        assert!(e.contains("s3://"), "{e}");
    }
}
