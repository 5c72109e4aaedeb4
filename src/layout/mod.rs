//! Where a file goes: Mage-style and LakeXpress-style folders, strftime date
//! folders, Hive partitions and user templates. Pure functions of names and
//! times, so every storage backend gets the same keys.

mod partition;

use chrono::{DateTime, Utc};

use serde::Deserialize;

pub use partition::{PartitionKey, partition_rows};

/// A `path_template` or `partition_keys` entry that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A `{` without its `}`.
    #[error("unclosed '{{' in '{0}'")]
    Unclosed(String),
    /// A placeholder the layout does not know.
    #[error(
        "unknown placeholder {{{0}}}; use {{stream}} {{table}} {{schema}} {{date:<strftime>}} {{timestamp}} {{uuid}} {{part}} {{ext}} {{partitions}}"
    )]
    Placeholder(String),
    /// Two files of one table could get the same name.
    #[error(
        "the template must contain {{uuid}} or {{part}} so that two flushes never write the same file"
    )]
    NotUnique,
    /// A partition key without a column.
    #[error("'{0}' names no column")]
    NoColumn(String),
    /// A date part that chrono cannot format.
    #[error("'{pattern}' is not a valid strftime pattern (in '{spec}')")]
    Strftime {
        /// The pattern.
        pattern: String,
        /// The whole partition key.
        spec: String,
    },
}

/// Folder naming scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// `{object_key_path}/{table}/[date/]{YYYYMMDD-HHMMSS}-{unique}.{ext}`
    Mage,
    /// `{base}/[{sub_path}/]{schema}/{table}/part-{NNNNN}.{ext}`
    Lakexpress,
}

/// The settings a [`Layout`] is made of (the load plan fills them in).
#[derive(Debug, Clone)]
pub struct LayoutSettings {
    /// Naming scheme.
    pub kind: LayoutKind,
    /// Prefix below the destination (Mage).
    pub object_key_path: String,
    /// One table name for every stream.
    pub table: Option<String>,
    /// strftime folder of processing time.
    pub date_format: Option<String>,
    /// LakeXpress sub path.
    pub sub_path: Option<String>,
    /// Schema of streams whose name has none.
    pub default_schema: String,
    /// Object path template (checked with [`check_template`]).
    pub template: Option<String>,
}

/// Placeholders a `path_template` may use.
const PLACEHOLDERS: &[&str] = &[
    "stream",
    "table",
    "schema",
    "timestamp",
    "uuid",
    "part",
    "ext",
    "partitions",
];

/// Checks a template's placeholders; it must make names unique.
pub fn check_template(t: &str) -> Result<(), LayoutError> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| LayoutError::Unclosed(t.to_string()))?
            + open;
        let name = &rest[open + 1..close];
        let ok =
            PLACEHOLDERS.contains(&name) || name.strip_prefix("date:").is_some_and(valid_strftime);
        if !ok {
            return Err(LayoutError::Placeholder(name.to_string()));
        }
        rest = &rest[close + 1..];
    }
    if !t.contains("{uuid}") && !t.contains("{part}") {
        return Err(LayoutError::NotUnique);
    }
    Ok(())
}

/// True when chrono accepts the strftime pattern.
pub fn valid_strftime(f: &str) -> bool {
    use chrono::format::{Item, StrftimeItems};
    !f.is_empty() && StrftimeItems::new(f).all(|i| !matches!(i, Item::Error))
}

/// The names a stream maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNames {
    /// Stream name as sent.
    pub stream: String,
    /// Table (folder) name.
    pub table: String,
    /// Schema (LakeXpress), from `schema-table` stream names.
    pub schema: String,
}

/// Path rules from the config.
#[derive(Debug, Clone)]
pub struct Layout {
    kind: LayoutKind,
    object_key_path: String,
    table: Option<String>,
    date_format: Option<String>,
    sub_path: Option<String>,
    default_schema: String,
    template: Option<String>,
    /// File extension.
    pub ext: String,
}

impl LayoutSettings {
    /// A layout of `kind` with nothing else set (no prefix, date folders,
    /// table name or template; schema `public`).
    pub fn of(kind: LayoutKind) -> Self {
        LayoutSettings {
            kind,
            object_key_path: String::new(),
            table: None,
            date_format: None,
            sub_path: None,
            default_schema: "public".into(),
            template: None,
        }
    }
}

/// A path segment safe for every object store (no separators or dot-only names).
pub fn safe_segment(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        format!("_{out}")
    } else {
        out
    }
}

fn trim_slashes(s: &str) -> String {
    s.split('/')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

impl Layout {
    /// Rules from `s`, for files ending in `ext`.
    pub fn new(s: LayoutSettings, ext: &str) -> Self {
        Layout {
            kind: s.kind,
            object_key_path: trim_slashes(&s.object_key_path),
            table: s.table.filter(|t| !t.is_empty()),
            date_format: s.date_format.filter(|f| !f.is_empty()),
            sub_path: s
                .sub_path
                .as_deref()
                .map(trim_slashes)
                .filter(|s| !s.is_empty()),
            default_schema: s.default_schema,
            template: s.template,
            ext: ext.to_string(),
        }
    }

    /// Table and schema names of a stream.
    pub fn names(&self, stream: &str) -> TableNames {
        let (schema, table) = match stream.split_once('-') {
            Some((s, t)) if !s.is_empty() && !t.is_empty() => (s.to_string(), t.to_string()),
            _ => (self.default_schema.clone(), stream.to_string()),
        };
        let table = match self.kind {
            LayoutKind::Mage => self.table.clone().unwrap_or_else(|| stream.to_string()),
            LayoutKind::Lakexpress => self.table.clone().unwrap_or(table),
        };
        TableNames {
            stream: stream.to_string(),
            table: safe_segment(&table),
            schema: safe_segment(&schema),
        }
    }

    /// Whether names carry LakeXpress part numbers.
    pub fn uses_parts(&self) -> bool {
        match &self.template {
            Some(t) => t.contains("{part}"),
            None => self.kind == LayoutKind::Lakexpress,
        }
    }

    /// The folder under which part numbers are counted.
    pub fn table_dir(&self, n: &TableNames) -> String {
        match &self.template {
            Some(t) => {
                let cut = t
                    .find('{')
                    .map_or(t.len(), |p| t[..p].rfind('/').map_or(0, |s| s + 1));
                let fixed = self.fill(&t[..cut], n, "", Utc::now(), None, "");
                let rest = &t[cut..];
                // include the stream/table/schema parts that precede anything variable
                let mut dir = fixed;
                for seg in rest
                    .split('/')
                    .take(rest.split('/').count().saturating_sub(1))
                {
                    if seg.contains("{date")
                        || seg.contains("{timestamp}")
                        || seg.contains("{uuid}")
                        || seg.contains("{part}")
                        || seg.contains("{partitions}")
                    {
                        break;
                    }
                    dir = join(&dir, &self.fill(seg, n, "", Utc::now(), None, ""));
                }
                trim_slashes(&dir)
            }
            None => match self.kind {
                LayoutKind::Mage => trim_slashes(&format!("{}/{}", self.object_key_path, n.table)),
                LayoutKind::Lakexpress => trim_slashes(&format!(
                    "{}/{}/{}",
                    self.sub_path.as_deref().unwrap_or(""),
                    n.schema,
                    n.table
                )),
            },
        }
    }

    /// The object path of one file, relative to the destination.
    pub fn file_path(
        &self,
        n: &TableNames,
        partitions: &str,
        now: DateTime<Utc>,
        part: Option<u64>,
        unique: &str,
    ) -> String {
        let path = match &self.template {
            Some(t) => {
                let p = self.fill(t, n, partitions, now, part, unique);
                if !partitions.is_empty() && !t.contains("{partitions}") {
                    match p.rsplit_once('/') {
                        Some((dir, file)) => format!("{dir}/{partitions}/{file}"),
                        None => format!("{partitions}/{p}"),
                    }
                } else {
                    p
                }
            }
            None => {
                let dir = self.table_dir(n);
                let date = self
                    .date_format
                    .as_ref()
                    .map(|f| now.format(f).to_string())
                    .unwrap_or_default();
                let file = match self.kind {
                    LayoutKind::Mage => {
                        format!("{}-{unique}.{}", now.format("%Y%m%d-%H%M%S"), self.ext)
                    }
                    LayoutKind::Lakexpress => format!("part-{:05}.{}", part.unwrap_or(0), self.ext),
                };
                [dir.as_str(), date.as_str(), partitions, file.as_str()]
                    .iter()
                    .fold(String::new(), |acc, s| join(&acc, s))
            }
        };
        trim_slashes(&path)
    }

    fn fill(
        &self,
        t: &str,
        n: &TableNames,
        partitions: &str,
        now: DateTime<Utc>,
        part: Option<u64>,
        unique: &str,
    ) -> String {
        let mut out = String::with_capacity(t.len() + 32);
        let mut rest = t;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}').map(|c| c + open) else {
                break;
            };
            let name = &rest[open + 1..close];
            match name {
                "stream" => out.push_str(&safe_segment(&n.stream)),
                "table" => out.push_str(&n.table),
                "schema" => out.push_str(&n.schema),
                "timestamp" => out.push_str(&now.format("%Y%m%d-%H%M%S").to_string()),
                "uuid" => out.push_str(unique),
                "part" => out.push_str(&format!("{:05}", part.unwrap_or(0))),
                "ext" => out.push_str(&self.ext),
                "partitions" => out.push_str(partitions),
                d => out.push_str(
                    &now.format(d.strip_prefix("date:").unwrap_or(""))
                        .to_string(),
                ),
            }
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// Parses the part number out of a file name (`part-00012.parquet` → 12).
pub fn part_number(name: &str) -> Option<u64> {
    let file = name.rsplit('/').next()?;
    let digits = file.strip_prefix("part-")?;
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn layout(json: serde_json::Value) -> Layout {
        let (cfg, _) =
            crate::config::LoadConfig::from_map(json.as_object().unwrap().clone()).unwrap();
        Layout::new(crate::load::plan::layout_settings(&cfg), "parquet")
    }

    #[test]
    fn mage_and_lakexpress_paths() {
        let now = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).unwrap();
        let m = layout(
            serde_json::json!({"object_key_path": "/raw/", "date_partition_format": "%Y%m%d"}),
        );
        let n = m.names("public-orders");
        assert_eq!(
            m.file_path(&n, "", now, None, "abc"),
            "raw/public-orders/20240305/20240305-070809-abc.parquet"
        );
        let l = layout(serde_json::json!({"layout": "lakexpress", "sub_path": "a/b"}));
        let n = l.names("public-orders");
        assert_eq!(
            l.file_path(&n, "country=FR", now, Some(7), "x"),
            "a/b/public/orders/country=FR/part-00007.parquet"
        );
        assert_eq!(l.table_dir(&n), "a/b/public/orders");
        assert_eq!(l.names("orders").schema, "public");
    }

    #[test]
    fn templates() {
        let now = Utc.with_ymd_and_hms(2024, 3, 5, 7, 8, 9).unwrap();
        let t = layout(
            serde_json::json!({"path_template": "lake/{schema}/{table}/{date:%Y/%m}/{timestamp}-{uuid}.{ext}"}),
        );
        let n = t.names("public-orders");
        assert_eq!(
            t.file_path(&n, "k=v", now, None, "u1"),
            "lake/public/public-orders/2024/03/k=v/20240305-070809-u1.parquet"
        );
        assert!(check_template("{table}/{bogus}-{uuid}").is_err());
        assert!(check_template("{table}/{timestamp}.{ext}").is_err());
        assert_eq!(part_number("x/part-00012.parquet"), Some(12));
        assert_eq!(part_number("x/other.parquet"), None);
    }
}
