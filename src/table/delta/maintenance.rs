//! Looking after a Delta table: the STATE it stores, its history, compaction
//! and vacuum. The CLI parses arguments and prints; the work is here.

use deltalake::operations::optimize::OptimizeType;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use serde_json::Value;

use super::{Cause, DeltaError, open_table, table_url};
use crate::storage::Store;

/// What `optimize` did.
#[derive(Debug)]
pub struct Optimized {
    /// The table's version after it.
    pub version: Option<u64>,
    /// Files written.
    pub files_added: u64,
    /// Files replaced.
    pub files_removed: u64,
    /// Partitions compacted.
    pub partitions_optimized: u64,
}

/// An existing table at the root of `store`, or why not.
pub fn open_existing(store: &Store) -> Result<DeltaTable, DeltaError> {
    super::open::register_logstores();
    let url = table_url(store, "")?;
    let table = store.block_on(open_table(store, &url))?;
    if table.version().is_none() {
        return Err(DeltaError::Table {
            url,
            context: None,
            cause: Cause::Refused("not a Delta table (no _delta_log there)".into()),
        });
    }
    Ok(table)
}

/// After a commit: on the versions delta-rs writes a checkpoint at (every
/// `delta.checkpointInterval`, 100 by default), remove log files past
/// `delta.logRetentionDuration` unless the table turned cleanup off. Other
/// commits list nothing.
pub(super) async fn after_commit(table: &DeltaTable) -> Result<(), Cause> {
    use deltalake::table::config::TablePropertiesExt as _;
    let Some(version) = table.version() else {
        return Ok(());
    };
    let snapshot = table.snapshot()?;
    let config = snapshot.table_config();
    if version == 0 || (version + 1) % config.checkpoint_interval().get() != 0 {
        return Ok(());
    }
    if config.enable_expired_log_cleanup() {
        let n = deltalake::checkpoints::cleanup_metadata(table, None).await?;
        tracing::debug!(table = %table.table_url(), version, removed = n, "expired log files removed after a checkpoint");
    }
    Ok(())
}

fn failed(table: &DeltaTable, context: &str, e: DeltaTableError) -> DeltaError {
    DeltaError::Table {
        url: table.table_url().to_string(),
        context: Some(context.to_string()),
        cause: e.into(),
    }
}

/// The Singer STATE of the newest commit that carries one.
pub fn last_state(store: &Store, table: &DeltaTable) -> Result<Option<Value>, DeltaError> {
    store.block_on(async {
        let mut commits = table.history(None);
        while let Some(c) = commits
            .try_next()
            .await
            .map_err(|e| failed(table, "reading the history", e))?
        {
            if let Some(s) = c.info.get("inlet.state") {
                return Ok(Some(s.clone()));
            }
        }
        Ok(None)
    })
}

/// The newest `limit` commits, newest first, as JSON.
pub fn history(store: &Store, table: &DeltaTable, limit: usize) -> Result<Vec<Value>, DeltaError> {
    store.block_on(async {
        let mut out = Vec::new();
        let mut commits = table.history(Some(limit));
        while let Some(c) = commits
            .try_next()
            .await
            .map_err(|e| failed(table, "reading the history", e))?
        {
            let v = serde_json::to_value(&c)
                .map_err(|e| failed(table, "reading the history", e.into()))?;
            out.push(v);
        }
        Ok(out)
    })
}

/// Compacts small files, or z-orders them by `zorder` when given.
pub fn optimize(
    store: &Store,
    table: DeltaTable,
    zorder: &[String],
    target_size: Option<u64>,
) -> Result<Optimized, DeltaError> {
    let url = table.table_url().to_string();
    let r = store.block_on(async {
        let mut b = table.optimize().with_type(match zorder.is_empty() {
            true => OptimizeType::Compact,
            false => OptimizeType::ZOrder(zorder.to_vec()),
        });
        if let Some(n) = target_size.and_then(std::num::NonZeroU64::new) {
            b = b.with_target_size(n);
        }
        b.await
    });
    match r {
        Ok((t, m)) => Ok(Optimized {
            version: t.version(),
            files_added: m.num_files_added,
            files_removed: m.num_files_removed,
            partitions_optimized: m.partitions_optimized,
        }),
        Err(e) => Err(DeltaError::Table {
            url,
            context: Some("optimize".into()),
            cause: e.into(),
        }),
    }
}

/// Deletes data files no longer in the table and removed more than
/// `retain_hours` ago (lists them only, with `dry_run`); returns their paths.
pub fn vacuum(
    store: &Store,
    table: DeltaTable,
    retain_hours: i64,
    dry_run: bool,
) -> Result<Vec<String>, DeltaError> {
    let url = table.table_url().to_string();
    store
        .block_on(
            table
                .vacuum()
                .with_retention_period(chrono::Duration::hours(retain_hours))
                .with_enforce_retention_duration(false)
                .with_dry_run(dry_run)
                .into_future(),
        )
        .map(|(_, m)| m.files_deleted)
        .map_err(|e| DeltaError::Table {
            url,
            context: Some("vacuum".into()),
            cause: e.into(),
        })
}
