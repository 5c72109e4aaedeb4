//! LakeXpress-style auth files: named storage entries selected with
//! `--target-storage-id`, turned into ordinary config keys.
//!
//! ```json
//! {"aws_s3_01": {"storage_type": "s3", "info": {"bucket": "lake", "base_path": "raw",
//!   "region": "eu-west-1", "profile": "etl"}},
//!  "gcs_01": {"storage_type": "gcs", "info": {"bucket": "lake", "base_path": "raw",
//!   "credentials_file": "/keys/sa.json"}}}
//! ```
//!
//! Any string may be `"$env{VAR}"` (or contain it) to read a secret from the
//! environment.

use std::path::Path;

use serde_json::{Map, Value};

/// Auth file errors (config errors, exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file cannot be read or parsed.
    #[error("auth file {path}: {msg}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// The entry is missing or incomplete.
    #[error("auth file {path}, entry '{id}': {msg}")]
    Entry {
        /// The file.
        path: String,
        /// The storage id.
        id: String,
        /// What is wrong.
        msg: String,
    },
}

/// Entry `id` of the auth file at `path`: the value of its `kind_key`
/// (`storage_type`, or `ds_type` for a database) and its `info` with every
/// `$env{VAR}` resolved; `kinds` lists the values `kind_key` may take.
pub fn entry_info(
    path: &Path,
    id: &str,
    env: &[(String, String)],
    kind_key: &str,
    kinds: &str,
) -> Result<(String, Map<String, Value>), AuthError> {
    let shown = path.display().to_string();
    let file_err = |msg: String| AuthError::File {
        path: shown.clone(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read: {e}")))?;
    let root: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| file_err(format!("not valid JSON: {e}")))?
    } else {
        serde_yaml::from_str(&text).map_err(|e| file_err(format!("not valid YAML: {e}")))?
    };
    let Value::Object(entries) = root else {
        return Err(file_err("the top level must map ids to entries".into()));
    };
    let entry_err = |msg: String| AuthError::Entry {
        path: shown.clone(),
        id: id.to_string(),
        msg,
    };
    let entry = entries.get(id).ok_or_else(|| {
        let known: Vec<&str> = entries.keys().map(String::as_str).collect();
        entry_err(format!(
            "no such storage id; the file has: {}",
            if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            }
        ))
    })?;
    let kind = entry
        .get(kind_key)
        .and_then(Value::as_str)
        .ok_or_else(|| entry_err(format!("missing \"{kind_key}\" ({kinds})")))?
        .to_ascii_lowercase();
    let info = match entry.get("info") {
        Some(Value::Object(m)) => m.clone(),
        None => Map::new(),
        Some(_) => return Err(entry_err("\"info\" must be an object".into())),
    };
    let mut info_s = Map::new();
    for (k, v) in info {
        let v = match v {
            Value::String(s) => Value::String(expand_env(&s, env).map_err(&entry_err)?),
            other => other,
        };
        info_s.insert(k, v);
    }
    Ok((kind, info_s))
}

/// Reads entry `id` of the auth file at `path` as config keys
/// (`destination` plus credentials), resolving `$env{VAR}`.
pub fn entry_config(
    path: &Path,
    id: &str,
    env: &[(String, String)],
) -> Result<Map<String, Value>, AuthError> {
    let entry_err = |msg: String| AuthError::Entry {
        path: path.display().to_string(),
        id: id.to_string(),
        msg,
    };
    let (kind, info_s) = entry_info(path, id, env, "storage_type", "s3, gcs, azure or local")?;
    let get = |k: &str| info_s.get(k).and_then(Value::as_str).map(str::to_string);
    let base = get("base_path").unwrap_or_default();
    let join = |scheme: &str, root: &str| {
        let base = base.trim_matches('/');
        if base.is_empty() {
            format!("{scheme}://{root}")
        } else {
            format!("{scheme}://{root}/{base}")
        }
    };
    let need =
        |k: &str| get(k).ok_or_else(|| entry_err(format!("info.{k} is required for {kind}")));
    let mut out = Map::new();
    // info keys map onto inlet's config keys; the rest pass through as they are
    let renames: &[(&str, &str)] = &[
        ("region", "aws_region"),
        ("profile", "aws_profile"),
        ("endpoint_url", "aws_endpoint"),
        ("credentials_file", "google_application_credentials"),
        ("account_key", "access_key"),
        ("tenant_id", "azure_tenant_id"),
        ("client_id", "azure_client_id"),
        ("client_secret", "azure_client_secret"),
    ];
    for (k, v) in &info_s {
        if ["bucket", "base_path", "container", "path"].contains(&k.as_str()) {
            continue;
        }
        let key = renames
            .iter()
            .find(|(from, _)| from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(key.to_string(), v.clone());
    }
    let dest = match kind.as_str() {
        "s3" | "aws_s3" | "minio" => join("s3", &need("bucket")?),
        "gcs" | "gs" => join("gs", &need("bucket")?),
        "azure" | "adls" | "abfs" | "azure_blob" => {
            let container = get("container")
                .or_else(|| get("bucket"))
                .ok_or_else(|| entry_err("info.container is required for azure".into()))?;
            match get("account_name") {
                Some(a) => join("abfss", &format!("{container}@{a}.dfs.core.windows.net")),
                None => join("az", &container),
            }
        }
        "local" | "file" => {
            let p = need("path")?;
            let base = base.trim_matches('/');
            if base.is_empty() {
                p
            } else {
                format!("{}/{base}", p.trim_end_matches('/'))
            }
        }
        other => {
            return Err(entry_err(format!(
                "storage_type '{other}' is not known; use s3, gcs, azure or local"
            )));
        }
    };
    out.insert("destination".into(), Value::String(dest));
    Ok(out)
}

/// Replaces every `$env{VAR}` with the variable's value.
fn expand_env(s: &str, env: &[(String, String)]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$env{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 5..];
        let end = after.find('}').ok_or_else(|| {
            format!(
                "unclosed $env{{ in a value starting '{}'",
                &rest[i..].chars().take(12).collect::<String>()
            )
        })?;
        let var = &after[..end];
        let val = env
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| {
                format!("environment variable {var} (named by $env{{{var}}}) is not set")
            })?;
        out.push_str(val);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn s3_entry_with_env_secret() {
        let f = write(
            r#"{"aws_s3_01": {"storage_type": "s3", "info": {"bucket": "lake", "base_path": "/raw/x/",
              "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9000",
              "aws_access_key_id": "AK", "aws_secret_access_key": "$env{MY_SECRET}"}}}"#,
        );
        let env = vec![("MY_SECRET".to_string(), "shh".to_string())];
        let m = entry_config(f.path(), "aws_s3_01", &env).unwrap();
        assert_eq!(m["destination"], "s3://lake/raw/x");
        assert_eq!(m["aws_region"], "eu-west-1");
        assert_eq!(m["aws_endpoint"], "http://127.0.0.1:9000");
        assert_eq!(m["aws_secret_access_key"], "shh");
    }

    #[test]
    fn gcs_azure_local_entries() {
        let f = write(
            r#"{"g": {"storage_type": "gcs", "info": {"bucket": "b", "base_path": "p", "credentials_file": "/k.json"}},
                "a": {"storage_type": "azure", "info": {"container": "c", "account_name": "acct", "account_key": "k"}},
                "l": {"storage_type": "local", "info": {"path": "/data", "base_path": "lake"}}}"#,
        );
        let g = entry_config(f.path(), "g", &[]).unwrap();
        assert_eq!(g["destination"], "gs://b/p");
        assert_eq!(g["google_application_credentials"], "/k.json");
        let a = entry_config(f.path(), "a", &[]).unwrap();
        assert_eq!(a["destination"], "abfss://c@acct.dfs.core.windows.net");
        assert_eq!(a["access_key"], "k");
        let l = entry_config(f.path(), "l", &[]).unwrap();
        assert_eq!(l["destination"], "/data/lake");
    }

    #[test]
    fn errors_name_the_problem() {
        let f = write(
            r#"{"x": {"storage_type": "s3", "info": {"aws_secret_access_key": "$env{NOPE}"}}}"#,
        );
        let e = entry_config(f.path(), "y", &[]).unwrap_err().to_string();
        assert!(e.contains("no such storage id") && e.contains('x'), "{e}");
        let e = entry_config(f.path(), "x", &[]).unwrap_err().to_string();
        assert!(e.contains("NOPE"), "{e}");
        let f = write(r#"{"x": {"storage_type": "s3", "info": {}}}"#);
        let e = entry_config(f.path(), "x", &[]).unwrap_err().to_string();
        assert!(e.contains("info.bucket"), "{e}");
    }
}
