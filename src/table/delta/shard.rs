//! A shard's share of a copy (`inlet export --shard K/N`): N processes
//! commit to one table at the same time. The first shard of an export to
//! commit replaces the table — it removes exactly the files of earlier
//! exports, named in the table's snapshot, never a sibling's — and the others
//! add their files. Every commit is built on the snapshot it read and carries
//! explicit removes, so two shards that both think they are first conflict
//! (they remove the same files) and the loser, retrying, sees its sibling and
//! adds. (delta-rs' `CREATE OR REPLACE` would remove whatever the table holds
//! when it commits, a sibling's files included.)

use std::collections::HashSet;

use arrow_schema::SchemaRef;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, MetadataExt as _};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};

use super::copy::append;
use super::{Cause, DeltaError, DeltaSettings, open, schema_check};
use crate::storage::Store;

/// Which shard of which export commits.
pub(super) struct Shard<'a> {
    /// The export's id.
    pub id: &'a str,
    /// 1-based.
    pub k: u64,
    /// A resumed run: its own earlier commit is not an error.
    pub resumed: bool,
}

/// What this export's shards committed so far: which shards, which files.
struct Siblings {
    shards: Vec<u64>,
    files: HashSet<String>,
}

/// Commits a shard's files (`adds`) to the table at `url`.
pub(super) async fn commit(
    store: &Store,
    url: &str,
    schema: &SchemaRef,
    adds: Vec<Action>,
    props: CommitProperties,
    settings: &DeltaSettings,
    shard: Shard<'_>,
) -> Result<(), DeltaError> {
    let Shard { id, k, resumed } = shard;
    let fail = |cause| DeltaError::Table {
        url: url.to_string(),
        context: Some(format!("committing shard {k} of export {id}")),
        cause,
    };
    let mut attempt = 0;
    loop {
        let table = open::open_table(store, url).await?;
        let exists = table.version().is_some();
        let siblings = match exists {
            true => siblings(&table, id).await?,
            false => Siblings {
                shards: Vec::new(),
                files: HashSet::new(),
            },
        };
        if siblings.shards.contains(&k) {
            if resumed {
                tracing::info!(table = %url, "shard {k} of export {id} committed this table before it stopped");
                return Ok(());
            }
            return Err(fail(Cause::Refused(format!(
                "shard {k} of export {id} already committed this table; give each export its own \
                 --export-id (or --resume the run that stopped)"
            ))));
        }
        let result = match (exists, siblings.shards.is_empty()) {
            (false, _) => create(&table, schema, adds.clone(), props.clone(), settings).await,
            (true, true) => replace(&table, schema, adds.clone(), props.clone(), &siblings).await,
            (true, false) => append(&table, schema, adds.clone(), props.clone(), settings).await,
        };
        match result {
            Ok(()) => return Ok(()),
            // a sibling committed first (or created the table): look again
            Err(c) if (c.is_conflict() || !exists) && attempt < 10 => {
                attempt += 1;
                tracing::debug!(table = %url, attempt, "another shard committed first: {c}");
            }
            Err(c) => return Err(fail(c)),
        }
    }
}

/// The shards of export `id` (and their files) that committed since the
/// last export before it.
async fn siblings(table: &DeltaTable, id: &str) -> Result<Siblings, DeltaError> {
    use futures::TryStreamExt;
    let mut found = Siblings {
        shards: Vec::new(),
        files: HashSet::new(),
    };
    let mut commits = table.history(None);
    while let Some(c) = commits.try_next().await.map_err(|e| DeltaError::Table {
        url: table.table_url().to_string(),
        context: Some("reading the history".into()),
        cause: e.into(),
    })? {
        let Some(copy) = c.info.get("inlet.copy") else {
            continue;
        };
        if copy["shard"]["id"].as_str() != Some(id) {
            break;
        }
        found.shards.extend(copy["shard"]["k"].as_u64());
        let files = copy["shard"]["files"].as_array().into_iter().flatten();
        found
            .files
            .extend(files.filter_map(|f| f.as_str().map(String::from)));
    }
    Ok(found)
}

/// The first commit of a new table; fails if a sibling created it first.
async fn create(
    table: &DeltaTable,
    schema: &SchemaRef,
    adds: Vec<Action>,
    props: CommitProperties,
    s: &DeltaSettings,
) -> Result<(), Cause> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let columns: deltalake::kernel::StructType = schema.as_ref().try_into_kernel()?;
    CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_columns(columns.fields().cloned())
        .with_partition_columns(s.partition_columns.clone())
        .with_save_mode(SaveMode::ErrorIfExists)
        // a sibling that created the table first makes this fail (not a second create
        // committed on top): the retry then adds to it
        .with_commit_properties(props.with_max_retries(0))
        .with_actions(adds)
        .await?;
    Ok(())
}

/// Replaces the files of earlier exports with this shard's, on the
/// snapshot it read; the schema becomes the source's.
async fn replace(
    table: &DeltaTable,
    schema: &SchemaRef,
    adds: Vec<Action>,
    props: CommitProperties,
    siblings: &Siblings,
) -> Result<(), Cause> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel as _;
    let snapshot = table.snapshot()?;
    let mut actions: Vec<Action> = snapshot
        .log_data()
        .iter()
        .filter(|f| !siblings.files.contains(f.path().as_ref()))
        .map(|f| Action::Remove(f.remove_action(true)))
        .collect();
    if schema_check::compatible(table, schema).is_err() {
        let columns: deltalake::kernel::StructType = schema.as_ref().try_into_kernel()?;
        let metadata = snapshot
            .metadata()
            .clone()
            .with_schema(&columns)
            .map_err(deltalake::DeltaTableError::from)?;
        actions.push(Action::Metadata(metadata));
    }
    actions.extend(adds);
    let partition_by = snapshot.metadata().partition_columns().to_vec();
    CommitBuilder::from(props)
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: (!partition_by.is_empty()).then_some(partition_by),
                predicate: None,
            },
        )
        .await?;
    Ok(())
}
