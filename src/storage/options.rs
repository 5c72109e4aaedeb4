//! Storage settings (credentials, endpoints, retries) and the object_store
//! builders for GCS and Azure; S3 lives in [`super::aws`].

use std::sync::Arc;
use std::time::Duration;

use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;

/// Credentials, endpoints and retry settings of a destination. Flattened
/// into the load config; every key is in the settings registry.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// Mage's bucket key: `s3://{bucket}` (or `gs://` with GCS credentials).
    pub bucket: Option<String>,
    /// Mage's Delta key: the table's URL (a destination when none is set).
    pub table_uri: Option<String>,
    /// S3 access key id.
    pub aws_access_key_id: Option<String>,
    /// S3 secret key.
    pub aws_secret_access_key: Option<String>,
    /// S3 session token.
    pub aws_session_token: Option<String>,
    /// S3 region.
    pub aws_region: Option<String>,
    /// S3-compatible endpoint URL.
    pub aws_endpoint: Option<String>,
    /// Named profile of ~/.aws/credentials and ~/.aws/config.
    pub aws_profile: Option<String>,
    /// Role to assume through STS.
    pub role_arn: Option<String>,
    /// Session name for the assumed role.
    pub role_session_name: Option<String>,
    /// External id for the assumed role.
    pub external_id: Option<String>,
    /// Virtual-hosted-style S3 addressing instead of path style.
    pub aws_virtual_hosted_style: bool,
    /// `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).
    pub aws_server_side_encryption: Option<String>,
    /// KMS key id for SSE-KMS.
    pub aws_sse_kms_key_id: Option<String>,
    /// `etag` (If-None-Match create-only puts) or `disabled`.
    pub aws_conditional_put: Option<String>,
    /// GCS service-account JSON file (or application default credentials file).
    pub google_application_credentials: Option<String>,
    /// GCS endpoint (an emulator or a private endpoint).
    pub gcs_endpoint: Option<String>,
    /// Azure storage account.
    pub account_name: Option<String>,
    /// Azure account key.
    pub access_key: Option<String>,
    /// Azure SAS token.
    pub sas_token: Option<String>,
    /// Azure service principal tenant.
    pub azure_tenant_id: Option<String>,
    /// Azure service principal / managed identity client id.
    pub azure_client_id: Option<String>,
    /// Azure service principal secret.
    pub azure_client_secret: Option<String>,
    /// Azure blob endpoint (Azurite, sovereign clouds, private endpoints).
    pub azure_endpoint: Option<String>,
    /// Managed-identity endpoint override.
    pub azure_msi_endpoint: Option<String>,
    /// OAuth authority for service principals (sovereign clouds).
    pub azure_authority_host: Option<String>,
    /// Talk to Azurite at its default address with its well-known account.
    pub azure_use_emulator: bool,
    /// Retries of a failing request.
    pub storage_max_retries: usize,
    /// Give up retrying a request after this long.
    pub storage_retry_timeout_seconds: u64,
    /// Timeout of one request.
    pub storage_request_timeout_seconds: u64,
    /// Timeout of connecting.
    pub storage_connect_timeout_seconds: u64,
    /// Files above this size go up as multipart uploads of this part size.
    pub multipart_part_size_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            bucket: None,
            table_uri: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            aws_region: None,
            aws_endpoint: None,
            aws_profile: None,
            role_arn: None,
            role_session_name: None,
            external_id: None,
            aws_virtual_hosted_style: false,
            aws_server_side_encryption: None,
            aws_sse_kms_key_id: None,
            aws_conditional_put: None,
            google_application_credentials: None,
            gcs_endpoint: None,
            account_name: None,
            access_key: None,
            sas_token: None,
            azure_tenant_id: None,
            azure_client_id: None,
            azure_client_secret: None,
            azure_endpoint: None,
            azure_msi_endpoint: None,
            azure_authority_host: None,
            azure_use_emulator: false,
            storage_max_retries: 10,
            storage_retry_timeout_seconds: 180,
            storage_request_timeout_seconds: 60,
            storage_connect_timeout_seconds: 10,
            multipart_part_size_mb: 32,
        }
    }
}

/// Debug that never shows a secret.
impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("StorageConfig")
            .field("bucket", &self.bucket)
            .field("aws_access_key_id", &self.aws_access_key_id)
            .field(
                "aws_secret_access_key",
                &secret(&self.aws_secret_access_key),
            )
            .field("aws_session_token", &secret(&self.aws_session_token))
            .field("aws_region", &self.aws_region)
            .field("aws_endpoint", &self.aws_endpoint)
            .field("aws_profile", &self.aws_profile)
            .field("role_arn", &self.role_arn)
            .field(
                "google_application_credentials",
                &self.google_application_credentials,
            )
            .field("gcs_endpoint", &self.gcs_endpoint)
            .field("account_name", &self.account_name)
            .field("access_key", &secret(&self.access_key))
            .field("sas_token", &secret(&self.sas_token))
            .field("azure_tenant_id", &self.azure_tenant_id)
            .field("azure_client_id", &self.azure_client_id)
            .field("azure_client_secret", &secret(&self.azure_client_secret))
            .field("azure_endpoint", &self.azure_endpoint)
            .finish_non_exhaustive()
    }
}

impl StorageConfig {
    /// The retry policy object_store applies to every request.
    pub fn retry(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                // connection refusals fail fast: back off enough that a server
                // restart of a few seconds is ridden out by the default retries
                init_backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(15),
                base: 3.0,
            },
            max_retries: self.storage_max_retries,
            retry_timeout: Duration::from_secs(self.storage_retry_timeout_seconds.max(1)),
        }
    }

    /// HTTP client options; `allow_http` only for an `http://` endpoint.
    pub fn client(&self, endpoint: Option<&str>) -> ClientOptions {
        ClientOptions::new()
            .with_timeout(Duration::from_secs(
                self.storage_request_timeout_seconds.max(1),
            ))
            .with_connect_timeout(Duration::from_secs(
                self.storage_connect_timeout_seconds.max(1),
            ))
            .with_allow_http(endpoint.is_some_and(|e| e.starts_with("http://")))
    }

    /// Multipart part size in bytes (S3 needs at least 5 MiB).
    pub fn part_size(&self) -> usize {
        (self.multipart_part_size_mb.clamp(5, 4096) as usize) << 20
    }

    /// Mage's `table_uri` or `bucket`, as a destination URL, when no destination is set.
    pub fn destination_from_bucket(&self) -> Option<String> {
        if let Some(t) = self
            .table_uri
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            return Some(t.to_string());
        }
        let bucket = self.bucket.as_deref()?.trim();
        if bucket.is_empty() {
            return None;
        }
        if bucket.contains("://") {
            return Some(bucket.to_string());
        }
        let scheme = if self.google_application_credentials.is_some() {
            "gs"
        } else {
            "s3"
        };
        Some(format!("{scheme}://{bucket}"))
    }

    /// A Google Cloud Storage bucket.
    pub fn gcs(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, String> {
        let mut b = GoogleCloudStorageBuilder::new()
            .with_bucket_name(bucket)
            .with_retry(self.retry())
            .with_client_options(self.client(self.gcs_endpoint.as_deref()));
        let creds = self
            .google_application_credentials
            .clone()
            .or_else(|| std::env::var("GOOGLE_APPLICATION_CREDENTIALS").ok())
            .filter(|p| !p.trim().is_empty());
        if let Some(path) = creds {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                format!("cannot read google_application_credentials file {path}: {e}")
            })?;
            let kind: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                format!("google_application_credentials file {path} is not JSON: {e}")
            })?;
            b = match kind.get("type").and_then(|t| t.as_str()) {
                Some("authorized_user") => b.with_application_credentials(path),
                _ => b.with_service_account_path(path),
            };
        }
        if let Some(url) = &self.gcs_endpoint {
            b = b.with_base_url(url.trim_end_matches('/'));
        }
        b.build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| format!("cannot set up Google Cloud Storage: {e}"))
    }

    /// An Azure container.
    pub fn azure(
        &self,
        account: Option<&str>,
        container: &str,
    ) -> Result<Arc<dyn ObjectStore>, String> {
        let mut b = MicrosoftAzureBuilder::new()
            .with_container_name(container)
            .with_retry(self.retry())
            .with_client_options(self.client(self.azure_endpoint.as_deref()));
        let account = account
            .map(String::from)
            .or_else(|| self.account_name.clone());
        if self.azure_use_emulator {
            b = b.with_use_emulator(true);
        } else if account.is_none() {
            return Err(format!(
                "no Azure storage account for container '{container}': set account_name, \
                 or write the destination as abfss://{container}@ACCOUNT.dfs.core.windows.net/…"
            ));
        }
        if let Some(a) = &account {
            b = b.with_account(a);
        }
        if let Some(e) = &self.azure_endpoint {
            b = b.with_endpoint(e.trim_end_matches('/').to_string());
        }
        if let Some(k) = &self.access_key {
            b = b.with_access_key(k);
        } else if let Some(sas) = &self.sas_token {
            let sas = sas.trim().trim_start_matches('?');
            if !sas.contains("sig=") {
                return Err("sas_token must be the SAS query string (sv=…&sig=…)".into());
            }
            // object_store's own parser percent-decodes each value ('+' stays '+')
            b = b.with_config(object_store::azure::AzureConfigKey::SasKey, sas);
        } else if let (Some(t), Some(c), Some(s)) = (
            &self.azure_tenant_id,
            &self.azure_client_id,
            &self.azure_client_secret,
        ) {
            b = b.with_client_secret_authorization(c, s, t);
            if let Some(h) = &self.azure_authority_host {
                b = b.with_authority_host(h);
            }
        } else {
            // managed identity (object_store's fallback); a user-assigned one by client id
            if let Some(c) = &self.azure_client_id {
                b = b.with_client_id(c);
            }
            if let Some(m) = &self.azure_msi_endpoint {
                b = b.with_msi_endpoint(m);
            }
        }
        b.build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|e| format!("cannot set up Azure Blob Storage: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let c = StorageConfig {
            aws_secret_access_key: Some("s3cr3t-value".into()),
            access_key: Some("azure-key-value".into()),
            sas_token: Some("sig=abc".into()),
            azure_client_secret: Some("sp-secret".into()),
            aws_session_token: Some("tok-value".into()),
            ..Default::default()
        };
        let d = format!("{c:?}");
        for s in [
            "s3cr3t-value",
            "azure-key-value",
            "sig=abc",
            "sp-secret",
            "tok-value",
        ] {
            assert!(!d.contains(s), "{d}");
        }
    }

    #[test]
    fn mage_bucket_becomes_a_url() {
        let mut c = StorageConfig {
            bucket: Some("lake".into()),
            ..Default::default()
        };
        assert_eq!(c.destination_from_bucket().as_deref(), Some("s3://lake"));
        c.google_application_credentials = Some("/k.json".into());
        assert_eq!(c.destination_from_bucket().as_deref(), Some("gs://lake"));
    }

    #[test]
    fn part_size_respects_the_s3_minimum() {
        let mut c = StorageConfig::default();
        assert_eq!(c.part_size(), 32 << 20);
        c.multipart_part_size_mb = 1;
        assert_eq!(c.part_size(), 5 << 20);
    }
}
