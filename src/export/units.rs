//! Work units: a relation read whole, or split into ctid block ranges that
//! separate connections read at once; a partitioned table is read through
//! its leaf partitions. Planned from the relation's size on disk, never from
//! `COUNT(*)`. An incremental read is one unit per table (or leaf) with
//! its row filter: the planner reads it through the column's index, which a
//! ctid range would defeat.

use crate::source::{ReadUnit, RowFilter};
use crate::source::{Relation, RelationKind};

/// The default range: 64 MiB (8192 pages of 8 KiB). Smaller relations are
/// read in one piece.
pub const SPLIT_PAGES: u64 = 8192;

/// The units of `r`, for `parallel` connections per table, in ranges of at
/// least `split_pages` pages. Ranges cover every block: the last one is
/// open-ended, so rows in blocks added since the size was read are not
/// missed. With a `filter` (an incremental run), each relation is one unit.
pub fn units(
    r: &Relation,
    parallel: usize,
    split_pages: u64,
    filter: Option<&RowFilter>,
) -> Vec<ReadUnit> {
    let split = split_pages.max(1);
    let parallel = if filter.is_some() { 1 } else { parallel };
    let mut units = match r.kind {
        RelationKind::Partitioned => r
            .leaves
            .iter()
            .flat_map(|l| table_units(l, parallel, split))
            .collect(),
        RelationKind::Table => table_units(r, parallel, split),
        _ => vec![ReadUnit {
            schema: r.schema.clone(),
            name: r.name.clone(),
            only: false,
            blocks: None,
            filter: None,
        }],
    };
    for u in &mut units {
        u.filter = filter.cloned();
    }
    units
}

fn table_units(r: &Relation, parallel: usize, split: u64) -> Vec<ReadUnit> {
    let unit = |blocks| ReadUnit {
        schema: r.schema.clone(),
        name: r.name.clone(),
        only: true,
        blocks,
        filter: None,
    };
    // a few ranges per connection evens out ranges of unequal density
    let n = (r.pages / split).min(parallel as u64 * 4).max(1);
    if parallel <= 1 || n == 1 {
        return vec![unit(None)];
    }
    let step = r.pages.div_ceil(n);
    (0..n)
        .map(|i| {
            let start = i * step;
            let end = (i + 1 < n).then_some((i + 1) * step);
            unit(Some((start, end)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(pages: u64, kind: RelationKind) -> Relation {
        Relation {
            oid: 1,
            schema: "s".into(),
            name: "t".into(),
            kind,
            pages,
            tuples: 0.0,
            readable: true,
            leaves: vec![],
            columns: vec![],
            primary_key: vec![],
        }
    }

    #[test]
    fn ranges_cover_every_block_once() {
        assert_eq!(
            units(&rel(100, RelationKind::Table), 4, SPLIT_PAGES, None)[0].blocks,
            None
        );
        let u = units(
            &rel(SPLIT_PAGES * 10 + 3, RelationKind::Table),
            2,
            SPLIT_PAGES,
            None,
        );
        assert_eq!(u.len(), 8);
        assert_eq!(u[0].blocks.unwrap().0, 0);
        for w in u.windows(2) {
            assert_eq!(w[0].blocks.unwrap().1, Some(w[1].blocks.unwrap().0));
        }
        assert_eq!(u.last().unwrap().blocks.unwrap().1, None);
        assert!(u.iter().all(|x| x.only));
        // one connection: one range
        assert_eq!(
            units(
                &rel(SPLIT_PAGES * 10, RelationKind::Table),
                1,
                SPLIT_PAGES,
                None
            )
            .len(),
            1
        );
        // views are read whole, without ONLY
        let v = units(
            &rel(SPLIT_PAGES * 10, RelationKind::View),
            4,
            SPLIT_PAGES,
            None,
        );
        assert_eq!(v.len(), 1);
        assert!(!v[0].only);
    }

    #[test]
    fn partitioned_tables_read_their_leaves() {
        let mut p = rel(0, RelationKind::Partitioned);
        for name in ["a", "b"] {
            let mut l = rel(10, RelationKind::Table);
            l.name = name.into();
            p.leaves.push(l);
        }
        let u = units(&p, 4, SPLIT_PAGES, None);
        assert_eq!(
            u.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
