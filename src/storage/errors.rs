//! object_store errors → messages that say what happened and what to fix:
//! the missing permission, a missing bucket, a wrong region or secret, an
//! unreachable endpoint. Signatures and SAS tokens are cut out of URLs.

use super::{Location, StorageError, Store};

/// The permission an operation needs on each backend.
fn permission(loc: &Location, op: &str) -> &'static str {
    match (loc, op) {
        (Location::S3 { .. }, "put") => "s3:PutObject",
        (Location::S3 { .. }, "get") => "s3:GetObject",
        (Location::S3 { .. }, "list") => "s3:ListBucket",
        (Location::S3 { .. }, _) => "s3:DeleteObject",
        (Location::Gcs { .. }, "put") => "storage.objects.create",
        (Location::Gcs { .. }, "get") => "storage.objects.get",
        (Location::Gcs { .. }, "list") => "storage.objects.list",
        (Location::Gcs { .. }, _) => "storage.objects.delete",
        (Location::Azure { .. }, "get") | (Location::Azure { .. }, "list") => {
            "read (Storage Blob Data Reader, or SAS permissions r and l)"
        }
        (Location::Azure { .. }, "put") => {
            "write (Storage Blob Data Contributor, or SAS permissions c and w)"
        }
        (Location::Azure { .. }, _) => {
            "delete (Storage Blob Data Contributor, or SAS permission d)"
        }
        (Location::Local { .. }, "put") => "write permission on the folder",
        (Location::Local { .. }, _) => "read permission on the folder",
        (Location::Memory, _) => "nothing (an in-memory store)",
    }
}

fn container_word(loc: &Location) -> &'static str {
    match loc {
        Location::Azure { .. } => "container",
        Location::Local { .. } | Location::Memory => "folder",
        _ => "bucket",
    }
}

fn container_name(loc: &Location) -> String {
    match loc {
        Location::S3 { bucket, .. } | Location::Gcs { bucket, .. } => bucket.clone(),
        Location::Azure { container, .. } => container.clone(),
        Location::Local { path } => path.clone(),
        Location::Memory => "memory".into(),
    }
}

/// Names both regions, or says how to find the bucket's one.
pub fn region_message(bucket: &str, configured: Option<&str>, actual: Option<&str>) -> String {
    let configured = configured.unwrap_or("(none)");
    match actual {
        Some(a) => format!(
            "bucket '{bucket}' is in region {a}, not in the configured region {configured}: \
             set aws_region: {a}"
        ),
        None => format!(
            "bucket '{bucket}' is not in the configured region {configured}: set aws_region to \
             the bucket's region (`aws s3api head-bucket --bucket {bucket}` prints it)"
        ),
    }
}

/// Builds the error for a failed operation on `path`.
pub fn explain(
    store: &Store,
    op: &'static str,
    path: &str,
    e: object_store::Error,
) -> StorageError {
    let loc = store.location();
    let raw = redact(&error_chain(&e));
    let word = container_word(loc);
    let name = container_name(loc);
    let mut perm = None;
    let refused = matches!(
        &e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || raw.contains("403 Forbidden")
        || raw.contains("401 Unauthorized");
    let detail = server_code(&raw).unwrap_or_else(|| raw.clone());
    let msg = match &e {
        _ if refused => {
            if raw.contains("SignatureDoesNotMatch") {
                "the server rejected the request signature (SignatureDoesNotMatch): \
                 aws_secret_access_key does not belong to aws_access_key_id"
                    .to_string()
            } else if raw.contains("InvalidAccessKeyId") {
                "the server does not know this access key id (InvalidAccessKeyId): \
                 check aws_access_key_id, or the endpoint it belongs to"
                    .to_string()
            } else if raw.contains("AuthenticationFailed") {
                "authentication failed: check access_key / sas_token for the account".to_string()
            } else {
                let p = permission(loc, op);
                perm = Some(p);
                format!("access denied: the credentials lack {p} on {word} '{name}' ({detail})")
            }
        }
        object_store::Error::NotFound { .. }
            if op != "get"
                && (raw.contains("NoSuchBucket")
                    || raw.contains("ContainerNotFound")
                    || raw.contains("bucket does not exist")
                    || op == "put") =>
        {
            format!(
                "{word} '{name}' does not exist{}: create it first, or fix the destination",
                match &store.region {
                    Some(r) => format!(" (region {r})"),
                    None => String::new(),
                }
            )
        }
        _ if raw.contains("redirect without LOCATION") || raw.contains("PermanentRedirect") => {
            // resolved into a message naming both regions by Store::with_region
            return StorageError::WrongRegion {
                op,
                path: redact(path),
                detail: raw,
            };
        }
        _ if raw.contains("error sending request")
            || raw.contains("Connection refused")
            || raw.contains("timed out")
            || raw.contains("dns error") =>
        {
            format!(
                "cannot reach the storage endpoint after retrying ({raw}); check the endpoint \
                 and the network, or raise storage_max_retries / storage_retry_timeout_seconds"
            )
        }
        _ => raw,
    };
    StorageError::Object {
        op,
        path: redact(path),
        msg,
        permission: perm,
    }
}

/// `Code: Message` of an S3/GCS/Azure XML error body, if the text has one.
fn server_code(raw: &str) -> Option<String> {
    let tag = |t: &str| {
        let open = format!("<{t}>");
        let start = raw.find(&open)? + open.len();
        let end = raw[start..].find(&format!("</{t}>"))? + start;
        Some(raw[start..end].to_string())
    };
    let code = tag("Code")?;
    Some(match tag("Message") {
        Some(m) => format!("{code}: {m}"),
        None => code,
    })
}

/// An error and its sources on one line, without repeats.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// Cuts signature-bearing query values (SAS `sig`, presigned S3 URLs) out of a message.
pub fn redact(msg: &str) -> String {
    const KEYS: [&str; 7] = [
        "sig=",
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
        "X-Goog-Signature=",
        "X-Goog-Credential=",
        "skoid=",
    ];
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    'outer: while !rest.is_empty() {
        for k in KEYS {
            if let Some(body) = rest.strip_prefix(k) {
                out.push_str(k);
                out.push_str("***");
                let end = body.find(['&', ' ', '"', '\'', ')']).unwrap_or(body.len());
                rest = &body[end..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_cut_out() {
        let m = "PUT https://a.blob.core.windows.net/c/x?sv=2021&sig=abc%2Fdef&se=1 failed";
        let r = redact(m);
        assert!(!r.contains("abc%2Fdef"), "{r}");
        assert!(r.contains("sig=***&se=1"), "{r}");
        assert_eq!(redact("no secrets here"), "no secrets here");
    }

    #[test]
    fn region_messages_name_both_regions() {
        let m = region_message("b", Some("us-east-1"), Some("eu-central-1"));
        assert!(m.contains("eu-central-1") && m.contains("us-east-1"), "{m}");
        let m = region_message("b", Some("us-east-1"), None);
        assert!(m.contains("head-bucket"), "{m}");
    }

    #[test]
    fn permissions_per_backend() {
        let s3 = Location::S3 {
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert_eq!(permission(&s3, "list"), "s3:ListBucket");
        let gcs = Location::Gcs {
            bucket: "b".into(),
            prefix: String::new(),
        };
        assert_eq!(permission(&gcs, "put"), "storage.objects.create");
    }
}
