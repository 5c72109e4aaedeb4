//! Destination URLs → which backend, which bucket/container, which prefix.
//!
//! Accepted: plain paths and `file://`, `s3://` / `s3a://`, `gs://`,
//! `az://` / `azure://`, `abfs[s]://container@account.dfs.core.windows.net/…`,
//! `https://account.blob.core.windows.net/container/…` (also `.dfs.`).

use std::fmt;

/// A destination that is not one of the accepted forms; the message says
/// which forms are.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(String);

/// Where a destination lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local folder.
    Local {
        /// The folder.
        path: String,
    },
    /// Amazon S3 or an S3-compatible server.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket ("" for the root).
        prefix: String,
    },
    /// Google Cloud Storage.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
    /// Azure Blob Storage / ADLS Gen2.
    Azure {
        /// Storage account, when the URL names it.
        account: Option<String>,
        /// Container (file system).
        container: String,
        /// Blob prefix.
        prefix: String,
    },
    /// An object store handed in whole (in-memory in tests); never parsed
    /// from a destination.
    Memory,
}

impl Location {
    /// Parses a destination; `Err` says which forms are accepted.
    pub fn parse(dest: &str) -> Result<Location, LocationError> {
        Self::parse_str(dest).map_err(LocationError)
    }

    fn parse_str(dest: &str) -> Result<Location, String> {
        let dest = dest.trim();
        if dest.is_empty() {
            return Err("the destination is empty".into());
        }
        let Some((scheme, rest)) = dest.split_once("://") else {
            return Ok(Location::Local { path: dest.into() });
        };
        if rest.contains('?') {
            // a SAS token or signed URL in the destination would end up in
            // object names and messages
            return Err(format!(
                "the destination {scheme}://… carries a query string ('?…'); give an Azure SAS \
                 token as sas_token, and credentials as their own keys"
            ));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = path.trim_matches('/').to_string();
        let need = |what: &str| -> Result<String, String> {
            if authority.is_empty() {
                Err(format!(
                    "'{dest}' names no {what}; write it as {scheme}://{what}/prefix"
                ))
            } else {
                Ok(authority.to_string())
            }
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => Ok(Location::Local {
                path: rest.to_string(),
            }),
            "s3" | "s3a" => Ok(Location::S3 {
                bucket: need("bucket")?,
                prefix,
            }),
            "gs" | "gcs" => Ok(Location::Gcs {
                bucket: need("bucket")?,
                prefix,
            }),
            "az" | "azure" | "abfs" | "abfss" => {
                let authority = need("container")?;
                match authority.split_once('@') {
                    Some((container, host)) => Ok(Location::Azure {
                        account: Some(account_of(host).ok_or_else(|| {
                            format!(
                                "'{dest}': expected container@ACCOUNT.dfs.core.windows.net or \
                                 container@ACCOUNT.blob.core.windows.net"
                            )
                        })?),
                        container: container.to_string(),
                        prefix,
                    }),
                    None => Ok(Location::Azure {
                        account: None,
                        container: authority,
                        prefix,
                    }),
                }
            }
            "https" | "http" => {
                let account = account_of(authority).ok_or_else(|| {
                    format!(
                        "'{dest}': only Azure https URLs are understood \
                         (https://ACCOUNT.blob.core.windows.net/container/prefix); \
                         for S3-compatible servers write s3://bucket/prefix and set aws_endpoint"
                    )
                })?;
                let (container, prefix) = path.split_once('/').unwrap_or((path, ""));
                if container.is_empty() {
                    return Err(format!("'{dest}' names no container after the account"));
                }
                Ok(Location::Azure {
                    account: Some(account),
                    container: container.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                })
            }
            other => Err(format!(
                "'{other}://' is not a destination inlet knows; use a local folder, s3://, gs://, \
                 az://, abfss:// or https://ACCOUNT.blob.core.windows.net/…"
            )),
        }
    }

    /// The backend's name, for messages.
    pub fn backend(&self) -> &'static str {
        match self {
            Location::Local { .. } => "local",
            Location::S3 { .. } => "s3",
            Location::Gcs { .. } => "gcs",
            Location::Azure { .. } => "azure",
            Location::Memory => "memory",
        }
    }

    /// Key prefix inside the bucket/container ("" for local folders).
    pub fn prefix(&self) -> &str {
        match self {
            Location::Local { .. } | Location::Memory => "",
            Location::S3 { prefix, .. }
            | Location::Gcs { prefix, .. }
            | Location::Azure { prefix, .. } => prefix,
        }
    }
}

/// `account` from `account.dfs.core.windows.net` / `account.blob.core.windows.net`.
fn account_of(host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap_or(host);
    let (account, domain) = host.split_once('.')?;
    let ok = [
        "dfs.core.windows.net",
        "blob.core.windows.net",
        "dfs.fabric.microsoft.com",
        "blob.fabric.microsoft.com",
    ]
    .contains(&domain);
    (ok && !account.is_empty()).then(|| account.to_string())
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |base: String, prefix: &str| {
            if prefix.is_empty() {
                base
            } else {
                format!("{base}/{prefix}")
            }
        };
        match self {
            Location::Local { path } => write!(f, "{path}"),
            Location::Memory => write!(f, "memory://"),
            Location::S3 { bucket, prefix } => {
                write!(f, "{}", join(format!("s3://{bucket}"), prefix))
            }
            Location::Gcs { bucket, prefix } => {
                write!(f, "{}", join(format!("gs://{bucket}"), prefix))
            }
            Location::Azure {
                account,
                container,
                prefix,
            } => {
                let base = match account {
                    Some(a) => format!("az://{container}@{a}.blob.core.windows.net"),
                    None => format!("az://{container}"),
                };
                write!(f, "{}", join(base, prefix))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Location {
        Location::parse(s).unwrap()
    }

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(
            p("/tmp/out"),
            Location::Local {
                path: "/tmp/out".into()
            }
        );
        assert_eq!(
            p("file:///tmp/out"),
            Location::Local {
                path: "/tmp/out".into()
            }
        );
        let s3 = Location::S3 {
            bucket: "b".into(),
            prefix: "x/y".into(),
        };
        assert_eq!(p("s3://b/x/y/"), s3);
        assert_eq!(p("s3a://b/x/y"), s3);
        assert_eq!(
            p("gs://b"),
            Location::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        let az = |account: Option<&str>| Location::Azure {
            account: account.map(String::from),
            container: "c".into(),
            prefix: "p".into(),
        };
        assert_eq!(p("az://c/p"), az(None));
        assert_eq!(p("abfs://c/p"), az(None));
        assert_eq!(p("abfss://c@acct.dfs.core.windows.net/p"), az(Some("acct")));
        assert_eq!(
            p("https://acct.blob.core.windows.net/c/p"),
            az(Some("acct"))
        );
        assert_eq!(
            p("https://acct.dfs.core.windows.net/c/p/"),
            az(Some("acct"))
        );
    }

    #[test]
    fn bad_urls_say_what_is_accepted() {
        for (url, want) in [
            ("s3:///x", "names no bucket"),
            ("ftp://h/x", "not a destination inlet knows"),
            ("https://minio.local:9000/b", "aws_endpoint"),
            ("abfss://c@acct.example.com/p", "dfs.core.windows.net"),
            ("https://acct.blob.core.windows.net/", "no container"),
            (
                "https://acct.blob.core.windows.net/c/p?sv=1&sig=abc",
                "sas_token",
            ),
        ] {
            let e = Location::parse(url).unwrap_err();
            assert!(e.to_string().contains(want), "{url}: {e}");
        }
    }

    #[test]
    fn display_round_trips() {
        for url in ["s3://b/x/y", "gs://b", "az://c/p", "/tmp/x"] {
            assert_eq!(p(url).to_string(), url);
        }
    }
}
