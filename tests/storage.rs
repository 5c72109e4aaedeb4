//! One storage conformance suite, run against every backend: a local folder,
//! S3 (s3s-fs, which verifies SigV4, and moto_server), Azure (Azurite) and
//! the GCS XML-API fake. `scripts/servers.sh start` starts the servers and
//! `scripts/servers.sh env` exports where they are; with
//! `INLET_REQUIRE_SERVERS=1` (as `scripts/test.sh` sets) a missing server
//! fails the suite instead of skipping that backend.

use bytes::Bytes;
use inlet::storage::{StorageConfig, StorageError, Store, check};

fn env(name: &str) -> Option<String> {
    let v = std::env::var(name).ok().filter(|v| !v.is_empty());
    if v.is_none() && std::env::var("INLET_REQUIRE_SERVERS").as_deref() == Ok("1") {
        panic!(
            "{name} is not set: start the servers with scripts/servers.sh start and eval scripts/servers.sh env"
        );
    }
    v
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// Retries kept short so a broken server fails the test quickly.
fn base() -> StorageConfig {
    StorageConfig {
        storage_max_retries: 2,
        storage_retry_timeout_seconds: 10,
        multipart_part_size_mb: 5,
        ..Default::default()
    }
}

fn s3s() -> Option<(String, StorageConfig)> {
    let endpoint = env("INLET_S3S_ENDPOINT")?;
    Some((
        format!("s3://inlet-test/conformance-{}", unique()),
        StorageConfig {
            aws_endpoint: Some(endpoint),
            aws_access_key_id: Some("inlet-test".into()),
            aws_secret_access_key: Some("inlet-test-secret".into()),
            aws_region: Some("us-east-1".into()),
            ..base()
        },
    ))
}

fn moto() -> Option<(String, StorageConfig)> {
    let endpoint = env("INLET_MOTO_ENDPOINT")?;
    Some((
        format!("s3://inlet-test/conformance-{}", unique()),
        StorageConfig {
            aws_endpoint: Some(endpoint),
            aws_access_key_id: Some("fake-key".into()),
            aws_secret_access_key: Some("fake-secret".into()),
            aws_region: Some("us-east-1".into()),
            ..base()
        },
    ))
}

fn azurite() -> Option<(String, StorageConfig)> {
    let endpoint = env("INLET_AZURITE_ENDPOINT")?;
    Some((
        format!("az://inlet-test/conformance-{}", unique()),
        StorageConfig {
            azure_endpoint: Some(endpoint),
            account_name: Some("devstoreaccount1".into()),
            access_key: env("INLET_AZURITE_KEY"),
            ..base()
        },
    ))
}

fn gcs() -> Option<(String, StorageConfig)> {
    let endpoint = env("INLET_GCS_ENDPOINT")?;
    Some((
        format!("gs://inlet-test/conformance-{}", unique()),
        StorageConfig {
            gcs_endpoint: Some(endpoint),
            google_application_credentials: env("INLET_GCS_SA"),
            ..base()
        },
    ))
}

/// put (create-only), multipart put, get, list, delete, errors.
fn conformance(name: &str, url: &str, cfg: &StorageConfig) {
    let store = Store::open_with(url, cfg).unwrap_or_else(|e| panic!("{name}: open: {e}"));
    let small = Bytes::from_static(b"hello, lake");
    store
        .block_on(store.put_new("t/a.txt", small.clone()))
        .unwrap_or_else(|e| panic!("{name}: put: {e}"));
    // create-only: a second put under the same name is refused, the first stays
    match store.block_on(store.put_new("t/a.txt", Bytes::from_static(b"other"))) {
        Err(StorageError::AlreadyExists(p)) => assert!(p.ends_with("t/a.txt"), "{name}: {p}"),
        other => panic!("{name}: second put of t/a.txt: {other:?}"),
    }
    assert_eq!(
        store.block_on(store.get("t/a.txt")).unwrap(),
        small,
        "{name}"
    );

    // 11 MiB with 5 MiB parts: a three-part multipart upload
    let big: Vec<u8> = (0..11 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let big = Bytes::from(big);
    store
        .block_on(store.put_new("t/big.bin", big.clone()))
        .unwrap_or_else(|e| panic!("{name}: multipart put: {e}"));
    let back = store.block_on(store.get("t/big.bin")).unwrap();
    assert_eq!(back.len(), big.len(), "{name}: multipart size");
    assert!(back == big, "{name}: multipart content differs");
    match store.block_on(store.put_new("t/big.bin", big.clone())) {
        Err(StorageError::AlreadyExists(_)) => {}
        other => panic!("{name}: multipart put over an existing object: {other:?}"),
    }

    let mut listed = store.block_on(store.list("t")).unwrap();
    listed.sort();
    assert_eq!(
        listed,
        vec!["t/a.txt".to_string(), "t/big.bin".to_string()],
        "{name}"
    );

    store.block_on(store.delete("t/a.txt")).unwrap();
    let gone = store
        .block_on(store.get("t/a.txt"))
        .unwrap_err()
        .to_string();
    assert!(gone.contains("t/a.txt"), "{name}: {gone}");
    assert_eq!(
        store.block_on(store.list("t")).unwrap(),
        vec!["t/big.bin".to_string()]
    );

    let steps = store.block_on(check(&store));
    assert!(
        steps.len() == 4 && steps.iter().all(|s| s.result.is_ok()),
        "{name}: check: {steps:?}"
    );
}

/// A bucket that does not exist is named in the error, with what to do.
fn missing_bucket(name: &str, url: &str, cfg: &StorageConfig) {
    let missing = url.replacen("inlet-test", &format!("no-such-{}", unique()), 1);
    let store = Store::open_with(&missing, cfg).unwrap();
    let e = store
        .block_on(store.put_new("x.txt", Bytes::from_static(b"x")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not exist") && e.contains("no-such-"),
        "{name}: {e}"
    );
}

#[test]
fn local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("lake").display().to_string();
    conformance("local", &url, &base());
}

#[test]
fn s3_s3s_fs_verifies_signatures() {
    let Some((url, cfg)) = s3s() else { return };
    conformance("s3s-fs", &url, &cfg);
    // (no missing-bucket case here: s3s-fs creates the folder of any bucket it is
    // written to; moto answers NoSuchBucket like S3 does)
    let wrong = StorageConfig {
        aws_secret_access_key: Some("not-the-secret".into()),
        ..cfg
    };
    let store = Store::open_with(&url, &wrong).unwrap();
    let e = store
        .block_on(store.put_new("x.txt", Bytes::from_static(b"x")))
        .unwrap_err()
        .to_string();
    assert!(e.contains("aws_secret_access_key"), "{e}");
    assert!(!e.contains("not-the-secret"), "secret in error: {e}");
}

#[test]
fn s3_moto() {
    let Some((url, cfg)) = moto() else { return };
    conformance("moto", &url, &cfg);
    missing_bucket("moto", &url, &cfg);
}

#[test]
fn azure_azurite() {
    let Some((url, cfg)) = azurite() else { return };
    conformance("azurite", &url, &cfg);
    missing_bucket("azurite", &url, &cfg);
}

#[test]
fn gcs_xml_fake() {
    let Some((url, cfg)) = gcs() else { return };
    conformance("gcs-fake", &url, &cfg);
    missing_bucket("gcs-fake", &url, &cfg);
}

#[test]
fn unreachable_endpoint_fails_after_bounded_retries() {
    // port 9 (discard) on loopback: nothing listens, connections are refused
    let cfg = StorageConfig {
        aws_endpoint: Some("http://127.0.0.1:9".into()),
        aws_access_key_id: Some("k".into()),
        aws_secret_access_key: Some("s".into()),
        aws_region: Some("us-east-1".into()),
        storage_max_retries: 2,
        storage_retry_timeout_seconds: 5,
        ..Default::default()
    };
    let store = Store::open_with("s3://b/p", &cfg).unwrap();
    let t = std::time::Instant::now();
    let e = store
        .block_on(store.put_new("x.txt", Bytes::from_static(b"x")))
        .unwrap_err()
        .to_string();
    assert!(t.elapsed().as_secs() < 30, "retries took {:?}", t.elapsed());
    assert!(
        e.contains("cannot reach the storage endpoint") && e.contains("storage_max_retries"),
        "{e}"
    );
}
