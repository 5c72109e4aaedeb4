"""Object-storage backends for the e2e tests: a config per backend pointing inlet at the
servers `scripts/servers.sh start` runs on 127.0.0.1, and an independent way to fetch what
inlet wrote (boto3 for moto, azure-storage-blob for Azurite, the plain files s3s-fs and the
GCS fake keep on disk) into a local mirror folder the usual readers can open."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

BACKENDS = ("local", "s3s", "moto", "azurite", "gcs")

S3S_KEY, S3S_SECRET = "inlet-test", "inlet-test-secret"
AZURITE_ACCOUNT = "devstoreaccount1"


def server_env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set: run `scripts/servers.sh start` and "
                    "`eval \"$(scripts/servers.sh env)\"` (scripts/test.sh does both)")
    return v


def secrets() -> list[str]:
    """Secret values the backends use: none may ever appear in inlet's output."""
    return [S3S_SECRET, server_env("INLET_AZURITE_KEY"), "fake-moto-secret"]


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def backend_config(backend: str, prefix: str, local_root: Path | None = None) -> dict:
    """Config keys that send inlet's output to `prefix` inside the test bucket of `backend`."""
    if backend == "local":
        assert local_root is not None
        return {"destination": str(local_root / prefix)}
    if backend == "s3s":
        return {
            "destination": f"s3://inlet-test/{prefix}",
            "aws_endpoint": server_env("INLET_S3S_ENDPOINT"),
            "aws_access_key_id": S3S_KEY,
            "aws_secret_access_key": S3S_SECRET,
            "aws_region": "us-east-1",
        }
    if backend == "moto":
        return {
            "destination": f"s3://inlet-test/{prefix}",
            "aws_endpoint": server_env("INLET_MOTO_ENDPOINT"),
            "aws_access_key_id": "fake-moto-key",
            "aws_secret_access_key": "fake-moto-secret",
            "aws_region": "us-east-1",
        }
    if backend == "azurite":
        return {
            "destination": f"az://inlet-test/{prefix}",
            "account_name": AZURITE_ACCOUNT,
            "access_key": server_env("INLET_AZURITE_KEY"),
            "azure_endpoint": server_env("INLET_AZURITE_ENDPOINT"),
        }
    if backend == "gcs":
        return {
            "destination": f"gs://inlet-test/{prefix}",
            "google_application_credentials": server_env("INLET_GCS_SA"),
            "gcs_endpoint": server_env("INLET_GCS_ENDPOINT"),
        }
    raise ValueError(backend)


def fetch(backend: str, prefix: str, into: Path, local_root: Path | None = None) -> Path:
    """Copies every object under `prefix` into the folder `into` (keys below the prefix become
    paths) with a client that is not inlet, and returns `into`."""
    into.mkdir(parents=True, exist_ok=True)
    if backend in ("local", "s3s", "gcs"):
        root = {
            "local": lambda: local_root,
            "s3s": lambda: Path(server_env("INLET_S3S_ROOT")) / "inlet-test",
            "gcs": lambda: Path(server_env("INLET_GCS_ROOT")) / "inlet-test",
        }[backend]()
        src = Path(root) / prefix
        if src.exists():
            shutil.copytree(src, into, dirs_exist_ok=True)
        return into
    if backend == "moto":
        import boto3

        s3 = boto3.client("s3", endpoint_url=server_env("INLET_MOTO_ENDPOINT"),
                          region_name="us-east-1", aws_access_key_id="reader",
                          aws_secret_access_key="reader")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="inlet-test",
                                                                  Prefix=prefix + "/"):
            for o in page.get("Contents", []):
                dest = into / o["Key"][len(prefix) + 1:]
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file("inlet-test", o["Key"], str(dest))
        return into
    if backend == "azurite":
        from azure.storage.blob import BlobServiceClient

        svc = BlobServiceClient.from_connection_string(
            server_env("INLET_AZURITE_CONNECTION_STRING"))
        cc = svc.get_container_client("inlet-test")
        for b in cc.list_blobs(name_starts_with=prefix + "/"):
            dest = into / b.name[len(prefix) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(cc.download_blob(b.name).readall())
        return into
    raise ValueError(backend)


def assert_no_secrets(proc, extra: list[str] = ()):
    out = proc.stdout if isinstance(proc.stdout, bytes) else (proc.stdout or "").encode()
    err = proc.stderr if isinstance(proc.stderr, bytes) else (proc.stderr or "").encode()
    for s in [*secrets(), *extra]:
        assert s.encode() not in out, f"secret {s[:4]}… printed on stdout"
        assert s.encode() not in err, f"secret {s[:4]}… printed on stderr"
