//! Amazon S3 and S3-compatibles. Static keys go straight to object_store;
//! everything else (environment, profiles, SSO, web identity, container and
//! instance roles, `role_arn`) comes from the AWS SDK's own credential chain
//! (`aws-config`), fed to object_store through [`SdkCredentials`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential, S3ConditionalPut};
use object_store::{CredentialProvider, ObjectStore};
use tokio::sync::Mutex;

use super::errors::error_chain;
use super::options::StorageConfig;

/// What was resolved for an S3 destination (for messages).
#[derive(Debug, Clone)]
pub struct S3Info {
    /// Region used for signing.
    pub region: String,
    /// Custom endpoint, if any.
    pub endpoint: Option<String>,
    /// Where the credentials came from.
    pub credentials: &'static str,
}

/// Builds the S3 store for `bucket`; `Err` is a message saying what to fix.
pub async fn s3_store(
    bucket: &str,
    cfg: &StorageConfig,
) -> Result<(Arc<dyn ObjectStore>, S3Info), String> {
    let profile = cfg
        .aws_profile
        .clone()
        .filter(|p| !p.is_empty())
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
    let region = resolve_region(cfg, profile.as_deref()).await;
    let static_keys = match (&cfg.aws_access_key_id, &cfg.aws_secret_access_key) {
        (Some(k), Some(s)) if !k.is_empty() && !s.is_empty() => Some((k.clone(), s.clone())),
        (Some(_), None) | (None, Some(_)) => {
            return Err(
                "set both aws_access_key_id and aws_secret_access_key, or neither \
                 (to use the environment, a profile or an instance role)"
                    .into(),
            );
        }
        _ => None,
    };
    // The SDK config is loaded with the region fixed, so nothing asks the
    // instance metadata service for a region.
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.clone()));
    if let Some(p) = &profile {
        loader = loader.profile_name(p);
    }
    if let Some((k, s)) = &static_keys {
        loader = loader.credentials_provider(Credentials::new(
            k,
            s,
            cfg.aws_session_token.clone(),
            None,
            "inlet-config",
        ));
    }
    let sdk = loader.load().await;
    let endpoint = cfg
        .aws_endpoint
        .clone()
        .filter(|e| !e.is_empty())
        .or_else(|| sdk.endpoint_url().map(String::from));

    let mut b = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&region)
        .with_retry(cfg.retry())
        .with_client_options(cfg.client(endpoint.as_deref()))
        .with_virtual_hosted_style_request(cfg.aws_virtual_hosted_style);
    if let Some(e) = &endpoint {
        b = b.with_endpoint(e.trim_end_matches('/'));
    }
    match cfg.aws_conditional_put.as_deref() {
        None | Some("etag") => b = b.with_conditional_put(S3ConditionalPut::ETagMatch),
        Some("disabled") => b = b.with_conditional_put(S3ConditionalPut::Disabled),
        Some(other) => {
            return Err(format!(
                "aws_conditional_put must be 'etag' or 'disabled', got '{other}'"
            ));
        }
    }
    match cfg.aws_server_side_encryption.as_deref() {
        None | Some("") => {}
        Some("AES256") | Some("aes256") | Some("s3") => {
            let key: AmazonS3ConfigKey = "aws_server_side_encryption"
                .parse()
                .map_err(|e| format!("cannot set SSE-S3: {e}"))?;
            b = b.with_config(key, "AES256")
        }
        Some("aws:kms") | Some("kms") => {
            let key = cfg.aws_sse_kms_key_id.clone().ok_or(
                "aws_server_side_encryption 'aws:kms' needs aws_sse_kms_key_id (the KMS key id or ARN)",
            )?;
            b = b.with_sse_kms_encryption(key)
        }
        Some(other) => {
            return Err(format!(
                "aws_server_side_encryption must be 'AES256' or 'aws:kms', got '{other}'"
            ));
        }
    }

    let source = match (&static_keys, &cfg.role_arn) {
        (Some((k, s)), None) => {
            b = b.with_access_key_id(k).with_secret_access_key(s);
            if let Some(t) = &cfg.aws_session_token {
                b = b.with_token(t);
            }
            "static keys from the config"
        }
        (_, Some(role)) => {
            let mut ar = AssumeRoleProvider::builder(role)
                .region(aws_config::Region::new(region.clone()))
                .configure(&sdk);
            if let Some(n) = &cfg.role_session_name {
                ar = ar.session_name(n);
            }
            if let Some(x) = &cfg.external_id {
                ar = ar.external_id(x);
            }
            let provider = SharedCredentialsProvider::new(ar.build().await);
            b = b.with_credentials(Arc::new(SdkCredentials::new(provider)));
            "role_arn assumed through STS"
        }
        (None, None) => {
            let provider = sdk.credentials_provider().ok_or(
                "no AWS credential chain is available; set aws_access_key_id and \
                 aws_secret_access_key or aws_profile",
            )?;
            b = b.with_credentials(Arc::new(SdkCredentials::new(provider)));
            "the AWS credential chain (environment, profile, web identity, container or instance role)"
        }
    };
    let store = b
        .build()
        .map_err(|e| format!("cannot set up S3 bucket '{bucket}': {e}"))?;
    Ok((
        Arc::new(store),
        S3Info {
            region,
            endpoint,
            credentials: source,
        },
    ))
}

/// The region S3 says `bucket` is in: the `x-amz-bucket-region` header of a
/// HEAD on the bucket (answered even without credentials).
pub async fn bucket_region(endpoint: Option<&str>, bucket: &str) -> Option<String> {
    let url = match endpoint {
        Some(e) => format!("{}/{bucket}", e.trim_end_matches('/')),
        None => format!("https://s3.amazonaws.com/{bucket}"),
    };
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let resp = client.head(url).send().await.ok()?;
    let region = resp.headers().get("x-amz-bucket-region")?.to_str().ok()?;
    Some(region.to_string())
}

/// Config, then AWS_REGION / AWS_DEFAULT_REGION, then the profile's region,
/// then us-east-1. Never the metadata service.
async fn resolve_region(cfg: &StorageConfig, profile: Option<&str>) -> String {
    if let Some(r) = cfg.aws_region.clone().filter(|r| !r.is_empty()) {
        return r;
    }
    for var in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Ok(r) = std::env::var(var)
            && !r.is_empty()
        {
            return r;
        }
    }
    let mut p = ProfileFileRegionProvider::builder();
    if let Some(name) = profile {
        p = p.profile_name(name);
    }
    match p.build().region().await {
        Some(r) => r.to_string(),
        None => "us-east-1".to_string(),
    }
}

/// The AWS SDK credential chain as an object_store credential provider,
/// cached until five minutes before the credentials expire.
#[derive(Debug)]
pub struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl SdkCredentials {
    fn new(provider: SharedCredentialsProvider) -> Self {
        SdkCredentials {
            provider,
            cached: Mutex::new(None),
        }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((c, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|e| {
                e.duration_since(SystemTime::now())
                    .is_ok_and(|left| left > Duration::from_secs(300))
            });
            if fresh {
                return Ok(Arc::clone(c));
            }
        }
        let creds = self.provider.provide_credentials().await.map_err(|e| {
            object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "no AWS credentials: {} — set aws_access_key_id/aws_secret_access_key, \
                     aws_profile, or the AWS_* environment variables",
                    error_chain(&e)
                )
                .into(),
            }
        })?;
        let c = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_string(),
            secret_key: creds.secret_access_key().to_string(),
            token: creds.session_token().map(String::from),
        });
        *cached = Some((Arc::clone(&c), creds.expiry()));
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn half_a_key_pair_is_a_clear_error() {
        let cfg = StorageConfig {
            aws_access_key_id: Some("AKIA".into()),
            aws_region: Some("eu-west-1".into()),
            ..Default::default()
        };
        let e = s3_store("b", &cfg).await.err().unwrap();
        assert!(e.contains("aws_secret_access_key"), "{e}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn static_keys_and_endpoint() {
        let cfg = StorageConfig {
            aws_access_key_id: Some("AKIA".into()),
            aws_secret_access_key: Some("secret".into()),
            aws_region: Some("eu-west-1".into()),
            aws_endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let (_, info) = s3_store("b", &cfg).await.unwrap();
        assert_eq!(info.region, "eu-west-1");
        assert_eq!(info.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(info.credentials, "static keys from the config");
    }
}
