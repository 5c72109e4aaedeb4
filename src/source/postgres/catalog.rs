//! The catalog: which relations exist, their size in pages, the leaves of
//! partitioned tables, and each column's type (read through domains, arrays
//! and composites) — all inside the run's snapshot.

use std::future::Future;
use std::pin::Pin;

use tokio_postgres::Client;

use super::PgError;
use super::types::{Cast, ColumnType, PgType, TypeOptions, scalar};
use crate::source::{Relation, RelationKind, SourceColumn};

const RELATIONS: &str = "
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text,
       (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8,
       c.reltuples::float8,
       has_table_privilege(c.oid, 'SELECT')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
ORDER BY 2, 3";

const LEAVES: &str = "
SELECT c.oid, n.nspname::text, c.relname::text,
       (pg_relation_size(c.oid) / current_setting('block_size')::int8)::int8, c.reltuples::float8
FROM pg_partition_tree($1::oid::regclass) t
JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.isleaf ORDER BY 2, 3";

const COLUMNS: &str = "
SELECT a.attname::text, a.atttypid, a.atttypmod, a.attndims, a.attnotnull
FROM pg_attribute a
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

const PRIMARY_KEY: &str = "
SELECT a.attname::text
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = $1 AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)";

/// An index (or a partitioned index) whose first column is the column.
const LEADING_INDEX: &str = "
SELECT EXISTS (
  SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = $1 AND a.attname = $2 AND i.indpred IS NULL)";

const TYPE: &str = "
SELECT t.typname::text, t.typtype::text, t.typelem, t.typbasetype, t.typtypmod, t.typrelid,
       t.typcategory::text, n.nspname::text
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = $1";

/// Every relation of a non-system schema (partitions are not listed: their
/// partitioned table is).
pub async fn relations(client: &Client) -> Result<Vec<Relation>, PgError> {
    let rows = client
        .query(RELATIONS, &[])
        .await
        .map_err(PgError::catalog)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let kind = match r.get::<_, String>(3).as_str() {
            "r" => RelationKind::Table,
            "p" => RelationKind::Partitioned,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            _ => RelationKind::Foreign,
        };
        out.push(Relation {
            oid: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            kind,
            pages: r.get::<_, i64>(4).max(0) as u64,
            tuples: r.get(5),
            readable: r.get(6),
            leaves: Vec::new(),
            columns: Vec::new(),
            primary_key: Vec::new(),
        });
    }
    Ok(out)
}

/// The leaf partitions of a partitioned table.
pub async fn leaves(client: &Client, rel: &Relation) -> Result<Vec<Relation>, PgError> {
    let rows = client
        .query(LEAVES, &[&rel.oid])
        .await
        .map_err(PgError::catalog)?;
    Ok(rows
        .into_iter()
        .map(|r| Relation {
            oid: r.get(0),
            schema: r.get(1),
            name: r.get(2),
            kind: RelationKind::Table,
            pages: r.get::<_, i64>(3).max(0) as u64,
            tuples: r.get(4),
            readable: true,
            leaves: Vec::new(),
            columns: Vec::new(),
            primary_key: Vec::new(),
        })
        .collect())
}

/// The primary key's columns, in key order (empty: none).
pub async fn primary_key(client: &Client, oid: u32) -> Result<Vec<String>, PgError> {
    let rows = client
        .query(PRIMARY_KEY, &[&oid])
        .await
        .map_err(PgError::catalog)?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// True when an index leads with `column` (an incremental run's range scan
/// can use it).
pub async fn has_leading_index(client: &Client, oid: u32, column: &str) -> Result<bool, PgError> {
    let row = client
        .query_one(LEADING_INDEX, &[&oid, &column])
        .await
        .map_err(PgError::catalog)?;
    Ok(row.get(0))
}

/// The columns of a relation, each with how it is read.
pub async fn columns(
    client: &Client,
    oid: u32,
    opts: TypeOptions,
) -> Result<Vec<SourceColumn>, PgError> {
    let rows = client
        .query(COLUMNS, &[&oid])
        .await
        .map_err(PgError::catalog)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let name: String = r.get(0);
        let ty = resolve(client, r.get(1), r.get(2), r.get::<_, i32>(3), opts).await?;
        out.push(SourceColumn {
            name,
            not_null: r.get(4),
            ty,
        });
    }
    Ok(out)
}

type Resolved<'a> = Pin<Box<dyn Future<Output = Result<ColumnType, PgError>> + Send + 'a>>;

/// How a value of type `oid` (with `typmod`, in `dims` dimensions) is read.
fn resolve(client: &Client, oid: u32, typmod: i32, dims: i32, opts: TypeOptions) -> Resolved<'_> {
    Box::pin(async move {
        let row = client
            .query_one(TYPE, &[&oid])
            .await
            .map_err(PgError::catalog)?;
        let name: String = row.get(0);
        let typtype: String = row.get(1);
        let elem: u32 = row.get(2);
        let base: u32 = row.get(3);
        let base_mod: i32 = row.get(4);
        let relid: u32 = row.get(5);
        let category: String = row.get(6);
        let schema: String = row.get(7);
        let text = |name: String| ColumnType {
            ty: PgType::Text,
            cast: Cast::Text,
            pg_name: name,
        };
        Ok(match typtype.as_str() {
            // a domain reads as its base type (with the domain's modifier)
            "d" => {
                let m = if typmod >= 0 { typmod } else { base_mod };
                let mut t = resolve(client, base, m, dims, opts).await?;
                t.pg_name = format!("{name} ({})", t.pg_name);
                t
            }
            "b" if category == "A" && elem != 0 => {
                let e = resolve(client, elem, typmod, 0, opts).await?;
                let dims = dims.max(1) as usize;
                match e.cast {
                    Cast::None => ColumnType {
                        ty: PgType::Array {
                            elem: Box::new(e.ty),
                            dims,
                        },
                        cast: Cast::None,
                        pg_name: format!("{}[]", e.pg_name),
                    },
                    // elements read as text: the whole array as text[]
                    _ => ColumnType {
                        ty: PgType::Array {
                            elem: Box::new(PgType::Text),
                            dims,
                        },
                        cast: Cast::TextArray,
                        pg_name: format!("{}[]", e.pg_name),
                    },
                }
            }
            "b" if schema == "pg_catalog" => {
                scalar(&name, typmod, opts).unwrap_or_else(|| text(name))
            }
            "e" => ColumnType {
                ty: PgType::Text,
                cast: Cast::None,
                pg_name: name,
            },
            "c" => {
                let fields = client
                    .query(COLUMNS, &[&relid])
                    .await
                    .map_err(PgError::catalog)?;
                let mut out = Vec::with_capacity(fields.len());
                let mut exact = true;
                for f in fields {
                    let t = resolve(client, f.get(1), f.get(2), f.get::<_, i32>(3), opts).await?;
                    exact &= t.cast == Cast::None;
                    out.push((f.get::<_, String>(0), t.ty));
                }
                match exact {
                    true => ColumnType {
                        ty: PgType::Composite(out),
                        cast: Cast::None,
                        pg_name: name,
                    },
                    // a field that needs a cast cannot be cast inside the record
                    false => text(name),
                }
            }
            _ => text(name),
        })
    })
}
