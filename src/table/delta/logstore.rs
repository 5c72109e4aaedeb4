//! The log store inlet commits through: delta-rs' default one (create-only
//! puts of the next log version), made safe for delta-rs' own retries. A put
//! whose reply was lost is retried by the object store and then finds the
//! version already there — its own. delta-rs would take that for another
//! writer's commit and commit the same files again at the next version;
//! here the existing version is read first and, when it carries this
//! commit's `inlet.commit` id, the commit is reported done. A version lost
//! to another writer is reported after a random pause, so that writers that
//! collided do not retry in step.
//!
//! The newest version is found by listing the log from a given version
//! (`list_with_offset`). Azure's `startFrom` does that, but Azurite ignores
//! it and lists the log from its first version, which delta-kernel reports
//! as an invalid version: then the whole log is listed and the versions
//! are read off the names.

use std::sync::Arc;

use bytes::Bytes;
use deltalake::kernel::Version;
use deltalake::kernel::transaction::TransactionError;
use deltalake::logstore::{CommitOrBytes, LogStore, LogStoreConfig};
use deltalake::{DeltaResult, DeltaTableError};
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;
use uuid::Uuid;

/// A log store that recognises its own commits.
#[derive(Debug)]
pub(super) struct OwnCommits(pub Arc<dyn LogStore>);

/// The `inlet.commit` id in a commit's `commitInfo`, if any.
pub(super) fn commit_id(log: &[u8]) -> Option<String> {
    log.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"{\"commitInfo\""))
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .find_map(|v| v["commitInfo"]["inlet.commit"].as_str().map(String::from))
}

/// A random pause of up to 60 ms after losing a version to another writer.
fn lost_version_pause() -> std::time::Duration {
    std::time::Duration::from_micros((Uuid::new_v4().as_u128() % 60_000) as u64)
}

#[async_trait::async_trait]
impl LogStore for OwnCommits {
    fn name(&self) -> String {
        self.0.name()
    }

    async fn refresh(&self) -> DeltaResult<()> {
        self.0.refresh().await
    }

    async fn read_commit_entry(&self, version: Version) -> DeltaResult<Option<Bytes>> {
        self.0.read_commit_entry(version).await
    }

    async fn write_commit_entry(
        &self,
        version: Version,
        commit: CommitOrBytes,
        operation_id: Uuid,
    ) -> Result<(), TransactionError> {
        let id = match &commit {
            CommitOrBytes::LogBytes(b) => commit_id(b),
            CommitOrBytes::TmpCommit(_) => None,
        };
        match self
            .0
            .write_commit_entry(version, commit, operation_id)
            .await
        {
            Err(TransactionError::VersionAlreadyExists(v)) if id.is_some() => {
                match self.0.read_commit_entry(v).await {
                    Ok(Some(there)) if commit_id(&there) == id => {
                        tracing::info!(
                            version = v,
                            "the commit was already written (its reply was lost)"
                        );
                        Ok(())
                    }
                    _ => {
                        // another writer took the version: delta-rs tries the next one at
                        // once, so writers that lost together would collide again in step
                        tokio::time::sleep(lost_version_pause()).await;
                        Err(TransactionError::VersionAlreadyExists(v))
                    }
                }
            }
            other => other,
        }
    }

    async fn abort_commit_entry(
        &self,
        version: Version,
        commit: CommitOrBytes,
        operation_id: Uuid,
    ) -> Result<(), TransactionError> {
        self.0
            .abort_commit_entry(version, commit, operation_id)
            .await
    }

    async fn get_latest_version(&self, start_version: Version) -> DeltaResult<Version> {
        match self.0.get_latest_version(start_version).await {
            Err(DeltaTableError::InvalidVersion(v)) => {
                match newest_listed(self.0.object_store(None), self.0.log_path()).await? {
                    Some(newest) if newest >= start_version => Ok(newest),
                    _ => Err(DeltaTableError::InvalidVersion(v)),
                }
            }
            other => other,
        }
    }

    fn object_store(&self, operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
        self.0.object_store(operation_id)
    }

    fn root_object_store(&self, operation_id: Option<Uuid>) -> Arc<dyn ObjectStore> {
        self.0.root_object_store(operation_id)
    }

    fn engine(&self, operation_id: Option<Uuid>) -> Arc<dyn delta_kernel::Engine> {
        self.0.engine(operation_id)
    }

    fn to_uri(&self, location: &Path) -> String {
        self.0.to_uri(location)
    }

    fn root_url(&self) -> &Url {
        self.0.root_url()
    }

    fn log_path(&self) -> &Path {
        self.0.log_path()
    }

    fn transaction_url(&self, operation_id: Option<Uuid>) -> DeltaResult<Url> {
        self.0.transaction_url(operation_id)
    }

    async fn is_delta_table_location(&self) -> DeltaResult<bool> {
        self.0.is_delta_table_location().await
    }

    fn config(&self) -> &LogStoreConfig {
        self.0.config()
    }

    fn object_store_url(&self) -> deltalake::datafusion::datasource::object_store::ObjectStoreUrl {
        self.0.object_store_url()
    }
}

/// The newest commit version among the log's files, listed whole.
async fn newest_listed(store: Arc<dyn ObjectStore>, log: &Path) -> DeltaResult<Option<Version>> {
    use futures::TryStreamExt;
    let mut newest = None;
    let mut files = store.list(Some(log));
    while let Some(meta) = files.try_next().await? {
        let name = meta.location.filename().unwrap_or_default();
        if let Some(v) = name
            .strip_suffix(".json")
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<Version>().ok())
        {
            newest = newest.max(Some(v));
        }
    }
    Ok(newest)
}

#[cfg(test)]
mod tests {
    use super::commit_id;

    #[test]
    fn a_commit_is_known_by_its_id() {
        let log = b"{\"add\":{\"path\":\"x\"}}\n{\"commitInfo\":{\"inlet.commit\":\"c-1\",\"operation\":\"WRITE\"}}\n";
        assert_eq!(commit_id(log).as_deref(), Some("c-1"));
        assert_eq!(
            commit_id(b"{\"commitInfo\":{\"operation\":\"WRITE\"}}"),
            None
        );
    }
}
