//! Where a Delta table lives: its URL below the destination, and opening it
//! on inlet's own object store (same credentials, endpoints and retries).

use std::sync::{Arc, OnceLock};

use deltalake::logstore::{LogStoreFactory, StorageConfig as DeltaStorageConfig, default_logstore};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use object_store::ObjectStore;
use url::Url;

use super::DeltaError;
use crate::storage::{Location, Store};

/// The URL of a table folder below the destination.
pub fn table_url(store: &Store, table_dir: &str) -> Result<String, DeltaError> {
    let rel = table_dir.trim_matches('/');
    let bad = DeltaError::Location;
    Ok(match store.location() {
        Location::Local { path } => {
            let base = std::path::absolute(path).map_err(|e| bad(format!("{path}: {e}")))?;
            let dir = base.join(rel);
            std::fs::create_dir_all(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
            Url::from_directory_path(&dir)
                .map_err(|_| bad(format!("{} is not an absolute folder", dir.display())))?
                .to_string()
        }
        Location::Memory => format!("memory:///{rel}"),
        Location::S3 { bucket, prefix } => cloud_url("s3", bucket, prefix, rel),
        Location::Gcs { bucket, prefix } => cloud_url("gs", bucket, prefix, rel),
        Location::Azure {
            container, prefix, ..
        } => cloud_url("az", container, prefix, rel),
    })
}

fn cloud_url(scheme: &str, root: &str, prefix: &str, rel: &str) -> String {
    let path = [prefix.trim_matches('/'), rel]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    format!("{scheme}://{root}/{path}")
}

/// Opens (or prepares to create) the table at `url`, on inlet's own object
/// store for cloud URLs so credentials, endpoints and retries are the same.
pub async fn open_table(store: &Store, url: &str) -> Result<DeltaTable, DeltaError> {
    let parsed = Url::parse(url)
        .map_err(|e| DeltaError::Location(format!("'{url}' is not a table URL: {e}")))?;
    let fail = |e: DeltaTableError| DeltaError::Table {
        url: url.to_string(),
        context: None,
        cause: e.into(),
    };
    let mut builder = DeltaTableBuilder::from_url(parsed.clone()).map_err(fail)?;
    if parsed.scheme() != "file" {
        builder = builder.with_storage_backend(store.root(), parsed);
    }
    let mut table = builder.build().map_err(fail)?;
    match table.load().await {
        Ok(()) | Err(DeltaTableError::NotATable(_)) => Ok(table),
        Err(e) => Err(fail(e)),
    }
}

/// Delta's default log store (create-only commits via object_store's
/// conditional put), recognising inlet's own commits
/// ([`super::logstore::OwnCommits`]), for every scheme inlet writes.
pub(super) fn register_logstores() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let registry = deltalake::logstore::logstore_factories();
        for scheme in [
            "s3://",
            "s3a://",
            "gs://",
            "az://",
            "abfs://",
            "abfss://",
            "memory://",
            "file://",
        ] {
            if let Ok(u) = Url::parse(scheme) {
                registry.insert(u, Arc::new(InletLogStores));
            }
        }
    });
}

#[derive(Debug)]
struct InletLogStores;

impl LogStoreFactory for InletLogStores {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &DeltaStorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(Arc::new(super::logstore::OwnCommits(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))))
    }
}
