//! Which relations an export takes: `--include` / `--exclude` patterns
//! (`schema.table`, `*` or `%` for any run of characters, `_` for one, as
//! SQL `LIKE` and LakeXpress have them). By default every table of every
//! non-system schema the user can read; views only when named or asked for.

use crate::source::Relation;

use super::ExportError;

/// A `schema.table` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    schema: String,
    table: String,
}

impl Pattern {
    /// Parses `schema.table`, or `table` (any schema).
    pub fn parse(text: &str) -> Pattern {
        let t = text.trim();
        let (schema, table) = match t.split_once('.') {
            Some((s, n)) => (s.to_string(), n.to_string()),
            None => ("%".to_string(), t.to_string()),
        };
        Pattern {
            text: t.to_string(),
            schema,
            table,
        }
    }

    /// Comma-separated patterns (LakeXpress's `-i a.%,b.c`).
    pub fn list(values: &[String]) -> Vec<Pattern> {
        values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|p| !p.trim().is_empty())
            .map(Pattern::parse)
            .collect()
    }

    /// Whether it matches `r`.
    pub fn matches(&self, r: &Relation) -> bool {
        like(&self.schema, &r.schema) && like(&self.table, &r.name)
    }

    /// No `*` or `%`: it names one relation (`_` is far more often part
    /// of a name than a wildcard).
    pub fn is_exact(&self) -> bool {
        !self.text.contains(['*', '%']) && self.text.contains('.')
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// SQL `LIKE` with `*` as a second spelling of `%`.
fn like(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    // iterative matching with one backtrack point (the last `%`)
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < s.len() {
        match p.get(i) {
            Some('%' | '*') => {
                star = Some((i, j));
                i += 1;
            }
            Some('_') => {
                i += 1;
                j += 1;
            }
            Some(c) if *c == s[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|c| matches!(c, '%' | '*'))
}

/// The relations to export, in catalog order. A pattern that matches
/// nothing is an error naming it.
pub fn select(
    all: Vec<Relation>,
    include: &[Pattern],
    exclude: &[Pattern],
    include_views: bool,
) -> Result<Vec<Relation>, ExportError> {
    for p in include {
        if !all.iter().any(|r| p.matches(r)) {
            return Err(ExportError::NoMatch(p.to_string()));
        }
    }
    let mut out = Vec::new();
    for r in all {
        if exclude.iter().any(|p| p.matches(&r)) {
            continue;
        }
        let named = include.iter().any(|p| p.is_exact() && p.matches(&r));
        let wanted = match include.is_empty() {
            true => r.readable,
            false => include.iter().any(|p| p.matches(&r)),
        };
        // views and foreign tables only by name or with --include-views
        if wanted && (r.kind.is_table() || include_views || named) {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(ExportError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::RelationKind;

    fn rel(schema: &str, name: &str, kind: RelationKind) -> Relation {
        Relation {
            oid: 1,
            schema: schema.into(),
            name: name.into(),
            kind,
            pages: 0,
            tuples: 0.0,
            readable: true,
            leaves: vec![],
            columns: vec![],
            primary_key: vec![],
        }
    }

    #[test]
    fn like_patterns() {
        assert!(like("order%", "orders"));
        assert!(like("*", "anything"));
        assert!(like("o_ders", "orders"));
        assert!(like("%s", "orders"));
        assert!(like("a%b%c", "axxbyyc"));
        assert!(!like("a%b%c", "axxbyy"));
        assert!(!like("orders", "orders2"));
        assert!(like("Mixed Case", "Mixed Case"));
        assert!(!like("mixed case", "Mixed Case"));
    }

    #[test]
    fn selection_rules() {
        let all = || {
            vec![
                rel("public", "orders", RelationKind::Table),
                rel("public", "order_view", RelationKind::View),
                rel("sales", "orders", RelationKind::Partitioned),
            ]
        };
        let names = |v: Vec<Relation>| v.iter().map(Relation::qualified).collect::<Vec<_>>();
        assert_eq!(
            names(select(all(), &[], &[], false).unwrap()),
            ["public.orders", "sales.orders"]
        );
        let inc = Pattern::list(&["public.order%".into()]);
        assert_eq!(
            names(select(all(), &inc, &[], false).unwrap()),
            ["public.orders"]
        );
        assert_eq!(
            names(select(all(), &inc, &[], true).unwrap()),
            ["public.orders", "public.order_view"]
        );
        // a view named exactly is taken
        let inc = Pattern::list(&["public.order_view".into()]);
        assert_eq!(
            names(select(all(), &inc, &[], false).unwrap()),
            ["public.order_view"]
        );
        let exc = Pattern::list(&["sales.*".into()]);
        assert_eq!(
            names(select(all(), &[], &exc, false).unwrap()),
            ["public.orders"]
        );
        let inc = Pattern::list(&["public.orders,nope.x".into()]);
        let e = select(all(), &inc, &[], false).unwrap_err();
        assert!(e.to_string().contains("nope.x"), "{e}");
    }
}
