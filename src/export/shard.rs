//! `--shard K/N`: one export's work split among N processes (N machines,
//! Kubernetes Jobs, Airflow tasks) with no coordinator: each process computes
//! the same units and keeps those it owns. A table is cut into fixed ranges
//! of `--range-size` pages, closed at both ends (range `i` is blocks
//! `[i·S, (i+1)·S)`), so two processes that see a table at slightly different
//! sizes still cut it at the same blocks; range `i` of table `t` belongs to
//! shard `(hash(t) + i) mod N`. A process reads its ranges below the size it
//! saw after taking its snapshot: a row its snapshot sees lies below it.
//! Incremental tables go whole to one shard (their watermark is one value).
//!
//! Each shard has its own snapshot. Shards of one export share an id
//! (`--export-id`, new for each export), which tells their commits and part
//! lists from an earlier export's.

use crate::source::{ReadUnit, Relation, RelationKind, RowFilter};

/// This process's share of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub k: u32,
    /// Shards in all.
    pub n: u32,
    /// Shared by the N processes of one export.
    pub id: String,
}

/// Parses `K/N` (1 ≤ K ≤ N).
pub fn parse(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("--shard '{s}': write K/N with 1 ≤ K ≤ N, e.g. --shard 2/4");
    let (k, n) = s.split_once('/').ok_or_else(err)?;
    let (k, n) = (
        k.trim().parse::<u32>().map_err(|_| err())?,
        n.trim().parse::<u32>().map_err(|_| err())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(err());
    }
    Ok((k, n))
}

/// FNV-1a: the same on every machine and build (std's hasher is not).
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Shard {
    fn owns(&self, name: &str, i: u64) -> bool {
        (stable_hash(name).wrapping_add(i)) % u64::from(self.n) == u64::from(self.k - 1)
    }

    /// Whether this shard owns the first range of `r` (it commits the
    /// table even when its ranges hold no row).
    pub fn first(&self, r: &Relation) -> bool {
        self.owns(&r.qualified(), 0)
    }

    /// Whether this shard exports the incremental table `r` (whole).
    pub fn owns_whole(&self, r: &Relation) -> bool {
        self.first(r)
    }

    /// This shard's units of `r`, in ranges of `split` pages.
    pub fn units(&self, r: &Relation, split: u64, filter: Option<&RowFilter>) -> Vec<ReadUnit> {
        let split = split.max(1);
        let whole = |schema: &str, name: &str, only: bool| ReadUnit {
            schema: schema.to_string(),
            name: name.to_string(),
            only,
            blocks: None,
            filter: filter.cloned(),
        };
        if filter.is_some() {
            return match self.owns_whole(r) {
                true => vec![whole(
                    &r.schema,
                    &r.name,
                    !matches!(r.kind, RelationKind::Partitioned),
                )],
                false => Vec::new(),
            };
        }
        let leaves: Vec<&Relation> = match r.kind {
            RelationKind::Partitioned => r.leaves.iter().collect(),
            RelationKind::Table => vec![r],
            _ => {
                return match self.first(r) {
                    true => vec![whole(&r.schema, &r.name, false)],
                    false => Vec::new(),
                };
            }
        };
        let mut out = Vec::new();
        for leaf in leaves {
            let name = leaf.qualified();
            let ranges = leaf.pages.div_ceil(split).max(1);
            for i in (0..ranges).filter(|&i| self.owns(&name, i)) {
                out.push(ReadUnit {
                    schema: leaf.schema.clone(),
                    name: leaf.name.clone(),
                    only: true,
                    blocks: Some((i * split, Some((i + 1) * split))),
                    filter: None,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(name: &str, pages: u64) -> Relation {
        Relation {
            oid: 1,
            schema: "s".into(),
            name: name.into(),
            kind: RelationKind::Table,
            pages,
            tuples: 0.0,
            readable: true,
            leaves: vec![],
            columns: vec![],
            primary_key: vec![],
        }
    }

    fn shard(k: u32, n: u32) -> Shard {
        Shard {
            k,
            n,
            id: "x".into(),
        }
    }

    #[test]
    fn every_range_has_one_owner_whatever_size_each_shard_saw() {
        // four shards see the table at four sizes: ranges still cover each block once
        let seen = [1000u64, 1003, 1010, 1040];
        let mut owner = std::collections::HashMap::new();
        for k in 1..=4 {
            let r = rel("big", seen[k as usize - 1]);
            for u in shard(k, 4).units(&r, 100, None) {
                let (s, e) = u.blocks.unwrap();
                assert_eq!(e, Some(s + 100), "closed ranges of the split size");
                assert!(owner.insert(s, k).is_none(), "range at {s} owned twice");
            }
        }
        // every range below the smallest size is owned; ranges past a shard's size are
        // read by their owner only if it saw them
        for s in (0..1000).step_by(100) {
            assert!(owner.contains_key(&s), "range at {s} has no owner");
        }
        // small tables are spread over the shards, one owner each
        let owners: Vec<u32> = (0..10)
            .map(|t| {
                let r = rel(&format!("t{t}"), 3);
                let o: Vec<u32> = (1..=4)
                    .filter(|&k| !shard(k, 4).units(&r, 100, None).is_empty())
                    .collect();
                assert_eq!(o.len(), 1);
                o[0]
            })
            .collect();
        assert!(
            owners
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        );
    }

    #[test]
    fn shard_specs() {
        assert_eq!(parse("2/4"), Ok((2, 4)));
        assert!(parse("0/4").is_err() && parse("5/4").is_err() && parse("a").is_err());
    }
}
