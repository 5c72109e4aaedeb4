"""inlet load and inlet check on object storage (issue #3), against real servers on 127.0.0.1:
s3s-fs (S3 that verifies SigV4), moto_server (S3 + STS), Azurite, and the GCS XML-API fake of
tests/e2e/fakes. What inlet wrote is fetched with an independent client and compared row for
row; no secret may appear in any output."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pytest

from inlet_helpers import (
    data_files,
    err_text,
    explain,
    gen_singer,
    lines,
    ok,
    read_csv_file,
    read_parquet_files,
    record_msg,
    schema_msg,
    state_msg,
    stdout_states,
)
from storage_helpers import (
    BACKENDS,
    S3S_KEY,
    S3S_SECRET,
    assert_no_secrets,
    backend_config,
    fetch,
    server_env,
    unique,
)

@pytest.fixture
def run_inlet(run_inlet):
    """The conftest runner, plus: no secret of any backend in stdout or stderr, ever."""
    def run(*a, **kw):
        proc = run_inlet(*a, **kw)
        assert_no_secrets(proc)
        return proc

    return run


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "active": {"type": ["null", "boolean"]},
        "created_at": {"type": ["null", "string"], "format": "date-time"},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
    },
    "required": ["id"],
}


def make_input(n: int = 60) -> tuple[bytes, dict[str, list[dict]], list]:
    """Three interleaved streams with unicode, nulls, escapes; a STATE every 20 records."""
    streams = ["public-orders", "public-customers", "sales-items"]
    out = [schema_msg(s, SCHEMA) for s in streams]
    expect: dict[str, list[dict]] = {s: [] for s in streams}
    states = []
    for i in range(1, n + 1):
        s = streams[i % 3]
        rec = {
            "id": i,
            "name": None if i % 7 == 0 else f"naïve \"quoted\" ✓ {i}\nline2",
            "amount": None if i % 5 == 0 else i * 1.25,
            "active": i % 2 == 0,
            "created_at": f"2024-03-{1 + i % 28:02d}T10:00:00+02:00",
            "tags": ["a", f"t{i}"] if i % 4 else None,
        }
        expect[s].append(rec)
        out.append(record_msg(s, rec))
        if i % 20 == 0:
            states.append({"bookmarks": {"n": i}})
            out.append(state_msg(states[-1]))
    return lines(*out), expect, states


def table_dirs(layout: str) -> dict[str, str]:
    if layout == "lakexpress":
        return {"public-orders": "public/orders", "public-customers": "public/customers",
                "sales-items": "sales/items"}
    return {s: s for s in ("public-orders", "public-customers", "sales-items")}


def check_rows(mirror: Path, fmt: str, layout: str, expect: dict[str, list[dict]]):
    for stream, rel in table_dirs(layout).items():
        files = data_files(mirror, rel, ext=fmt)
        assert files, f"no .{fmt} files for {stream} under {rel}: {sorted(mirror.rglob('*'))}"
        want = expect[stream]
        if fmt == "parquet":
            t = read_parquet_files(files).sort_by("id")
            assert t.schema.field("id").type == pa.int64()
            assert t.schema.field("active").type == pa.bool_()
            assert pa.types.is_timestamp(t.schema.field("created_at").type)
            assert t.column("id").to_pylist() == [r["id"] for r in want]
            assert t.column("name").to_pylist() == [r["name"] for r in want]
            assert t.column("amount").to_pylist() == [r["amount"] for r in want]
            assert t.column("active").to_pylist() == [r["active"] for r in want]
            assert t.column("tags").to_pylist() == [r["tags"] for r in want]
            got_ts = [v.isoformat() for v in t.column("created_at").to_pylist()]
            want_ts = [datetime.fromisoformat(r["created_at"]).astimezone(timezone.utc).isoformat()
                       for r in want]
            assert got_ts == want_ts
        else:
            t = pa.concat_tables([read_csv_file(f) for f in files])
            rows = sorted(t.to_pylist(), key=lambda r: int(r["id"]))
            assert [int(r["id"]) for r in rows] == [r["id"] for r in want]
            assert [r["name"] for r in rows] == [r["name"] or None for r in want] or \
                [r["name"] for r in rows] == [r["name"] or "" for r in want]
            assert [r["active"] for r in rows] == ["true" if r["active"] else "false" for r in want]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("layout", ["mage", "lakexpress"])
def test_load_lands_every_row_on_every_backend(backend, fmt, layout, run_inlet, tmp_path):
    prefix = unique(f"load-{fmt}-{layout}")
    data, expect, states = make_input()
    cfg = {**backend_config(backend, prefix, tmp_path), "format": fmt, "layout": layout,
           "batch_max_rows": 25}
    proc = ok(run_inlet(cfg, data))
    assert_no_secrets(proc)
    assert stdout_states(proc)[-1] == states[-1]
    mirror = fetch(backend, prefix, tmp_path / "mirror", tmp_path)
    check_rows(mirror, fmt, layout, expect)
    if layout == "lakexpress":
        parts = sorted(p.name for p in (mirror / "public" / "orders").iterdir())
        assert parts[0] == f"part-00000.{fmt}", parts


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_passes_on_every_backend(backend, inlet_bin, tmp_path, child_env):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(backend_config(backend, unique("check"), tmp_path)))
    proc = subprocess.run([str(inlet_bin), "check", "--config", str(cfg)], capture_output=True,
                          env=child_env(), timeout=120)
    assert proc.returncode == 0, explain(proc)
    out = proc.stdout.decode()
    for step in ("put", "get", "list", "delete"):
        assert f"ok      {step}" in out, out
    assert "usable by inlet load" in out
    assert_no_secrets(proc)


def test_large_files_go_up_as_multipart(run_inlet, tmp_path):
    """A CSV file of ~10 MB with 5 MB parts goes up in parts (S3's ETag of a multipart
    object ends in -<parts>) and reads back whole, on S3 (moto), GCS (fake) and Azurite."""
    data = gen_singer("-n", "30000", "-p", "flat", "--seed", "7")
    for backend in ("moto", "gcs", "azurite"):
        prefix = unique("multipart")
        cfg = {**backend_config(backend, prefix), "format": "csv", "multipart_part_size_mb": 5}
        ok(run_inlet(cfg, data))
        mirror = fetch(backend, prefix, tmp_path / f"mirror-{backend}")
        files = data_files(mirror, "flat", ext="csv")
        assert len(files) == 1 and files[0].stat().st_size > 6 * 1024 * 1024, files
        assert read_csv_file(files[0]).num_rows == 30000
        if backend == "moto":
            import boto3

            s3 = boto3.client("s3", endpoint_url=server_env("INLET_MOTO_ENDPOINT"),
                              region_name="us-east-1", aws_access_key_id="r",
                              aws_secret_access_key="r")
            key = f"{prefix}/flat/{files[0].name}"
            etag = s3.head_object(Bucket="inlet-test", Key=key)["ETag"]
            parts = etag.strip('"').rpartition("-")[2]
            assert parts.isdigit() and int(parts) >= 2, etag


def test_mage_bucket_keys_build_the_s3_destination(run_inlet, tmp_path):
    prefix = unique("mage")
    s3 = backend_config("moto", prefix)
    cfg = {k: v for k, v in s3.items() if k != "destination"}
    cfg.update({"bucket": "inlet-test", "object_key_path": prefix, "table": "orders_tbl"})
    data, expect, _ = make_input(9)
    ok(run_inlet(cfg, data))
    mirror = fetch("moto", prefix, tmp_path / "m")
    files = data_files(mirror, "orders_tbl", ext="parquet")
    assert read_parquet_files(files).num_rows == 9


def test_mage_azure_keys(run_inlet, tmp_path):
    """Mage's delta_lake_azure keys: account_name + access_key + table_uri."""
    prefix = unique("mage-az")
    cfg = {"account_name": "devstoreaccount1", "access_key": server_env("INLET_AZURITE_KEY"),
           "table_uri": f"abfss://inlet-test@devstoreaccount1.dfs.core.windows.net/{prefix}",
           "azure_endpoint": server_env("INLET_AZURITE_ENDPOINT")}
    data, expect, _ = make_input(12)
    ok(run_inlet(cfg, data))
    check_rows(fetch("azurite", prefix, tmp_path / "m"), "parquet", "mage", expect)


@pytest.mark.parametrize("how", ["config", "env"])
def test_gcs_service_account_file(how, run_inlet, tmp_path):
    """google_application_credentials, or the standard GOOGLE_APPLICATION_CREDENTIALS."""
    prefix = unique(f"gcs-sa-{how}")
    cfg = backend_config("gcs", prefix)
    env = None
    if how == "env":
        env = {"GOOGLE_APPLICATION_CREDENTIALS": cfg.pop("google_application_credentials")}
    proc = ok(run_inlet(cfg, make_input(6)[0], env=env))
    key = json.loads(Path(server_env("INLET_GCS_SA")).read_text())["private_key"]
    assert_no_secrets(proc, [key.splitlines()[1]])
    assert data_files(fetch("gcs", prefix, tmp_path / "m"), ext="parquet")


# ------------------------------------------------------------------ credentials

def test_wrong_secret_is_a_clear_403_and_no_state(run_inlet, tmp_path):
    cfg = {**backend_config("s3s", unique("wrong")), "aws_secret_access_key": "not-the-secret-x"}
    data, _, _ = make_input(30)
    proc = run_inlet(cfg, data)
    assert proc.returncode == 5, explain(proc)
    assert stdout_states(proc) == []
    err = err_text(proc)
    assert "SignatureDoesNotMatch" in err and "aws_secret_access_key" in err, err
    assert_no_secrets(proc, ["not-the-secret-x"])


def test_missing_bucket_names_the_bucket(run_inlet):
    cfg = backend_config("moto", "x")
    cfg["destination"] = "s3://no-such-bucket-inlet/x"
    proc = run_inlet(cfg, make_input(5)[0])
    assert proc.returncode == 5, explain(proc)
    assert "bucket 'no-such-bucket-inlet' does not exist" in err_text(proc)


def test_unreachable_endpoint_bounded_retries(run_inlet):
    cfg = {**backend_config("s3s", "x"), "aws_endpoint": "http://127.0.0.1:9",
           "storage_max_retries": 2, "storage_retry_timeout_seconds": 5}
    t = time.monotonic()
    proc = run_inlet(cfg, make_input(5)[0], timeout=120)
    assert proc.returncode == 5, explain(proc)
    assert time.monotonic() - t < 60
    err = err_text(proc)
    assert "cannot reach the storage endpoint" in err and "storage_max_retries" in err, err
    assert stdout_states(proc) == []


def test_profile_with_endpoint_url(run_inlet, tmp_path):
    """A named profile from the AWS files supplies keys, region and the S3-compatible endpoint."""
    creds = tmp_path / "credentials"
    creds.write_text(f"[lake]\naws_access_key_id = {S3S_KEY}\naws_secret_access_key = {S3S_SECRET}\n")
    conf = tmp_path / "config"
    conf.write_text(f"[profile lake]\nregion = eu-west-3\nendpoint_url = {server_env('INLET_S3S_ENDPOINT')}\n")
    prefix = unique("profile")
    cfg = {"destination": f"s3://inlet-test/{prefix}", "aws_profile": "lake"}
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_CONFIG_FILE": str(conf)}
    proc = ok(run_inlet(cfg, make_input(12)[0], env=env, args=["--log-level", "debug"]))
    assert "eu-west-3" in err_text(proc)
    assert_no_secrets(proc)
    files = data_files(fetch("s3s", prefix, tmp_path / "m"), ext="parquet")
    assert sum(read_parquet_files([f]).num_rows for f in files) == 12


def test_standard_environment_variables(run_inlet, tmp_path):
    prefix = unique("envcreds")
    env = {"AWS_ACCESS_KEY_ID": S3S_KEY, "AWS_SECRET_ACCESS_KEY": S3S_SECRET,
           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": server_env("INLET_S3S_ENDPOINT")}
    proc = ok(run_inlet({"destination": f"s3://inlet-test/{prefix}"}, make_input(6)[0], env=env))
    assert_no_secrets(proc)
    assert data_files(fetch("s3s", prefix, tmp_path / "m"), ext="parquet")


class _QuietHandler(BaseHTTPRequestHandler):
    """A loopback fake: no access log on stderr; `_drain` reads a request body away."""

    def log_message(self, *a):
        pass

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)


class _FakeImds(_QuietHandler):
    """IMDSv2 on loopback, handing out the s3s-fs keys as instance-role credentials."""
    calls: list[str] = []

    def _send(self, body: str, status=200, headers=None):
        b = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_PUT(self):
        _FakeImds.calls.append("PUT " + self.path)
        self._send("fake-imds-token", headers={"x-aws-ec2-metadata-token-ttl-seconds": "21600"})

    def do_GET(self):
        _FakeImds.calls.append("GET " + self.path)
        if self.headers.get("x-aws-ec2-metadata-token") != "fake-imds-token":
            return self._send("", 401)
        if self.path.rstrip("/") == "/latest/meta-data/iam/security-credentials":
            return self._send("inlet-role")
        if self.path == "/latest/meta-data/iam/security-credentials/inlet-role":
            exp = (datetime.now(timezone.utc) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
            return self._send(json.dumps({"Code": "Success", "Type": "AWS-HMAC",
                                          "AccessKeyId": S3S_KEY, "SecretAccessKey": S3S_SECRET,
                                          "Token": "fake-session-token", "Expiration": exp}))
        self._send("", 404)


def test_instance_role_from_a_fake_metadata_service(run_inlet, tmp_path):
    """No keys at all: the AWS chain reaches the instance metadata service — a fake on
    127.0.0.1 here (AWS_EC2_METADATA_SERVICE_ENDPOINT), never 169.254.169.254."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _FakeImds)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _FakeImds.calls.clear()
    try:
        prefix = unique("imds")
        cfg = {"destination": f"s3://inlet-test/{prefix}",
               "aws_endpoint": server_env("INLET_S3S_ENDPOINT"), "aws_region": "us-east-1"}
        env = {"AWS_EC2_METADATA_DISABLED": "false",
               "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{srv.server_port}"}
        proc = ok(run_inlet(cfg, make_input(6)[0], env=env))
        assert_no_secrets(proc, ["fake-session-token"])
    finally:
        srv.shutdown()
    assert any("security-credentials/inlet-role" in c for c in _FakeImds.calls), _FakeImds.calls
    assert data_files(fetch("s3s", prefix, tmp_path / "m"), ext="parquet")


def test_role_arn_assumed_through_sts(run_inlet, tmp_path):
    """role_arn: base keys from the config, the role assumed with moto's STS."""
    prefix = unique("role")
    cfg = {**backend_config("moto", prefix), "role_arn": "arn:aws:iam::123456789012:role/inlet",
           "role_session_name": "inlet-test", "external_id": "ext-1"}
    env = {"AWS_ENDPOINT_URL_STS": server_env("INLET_MOTO_ENDPOINT")}
    proc = ok(run_inlet(cfg, make_input(6)[0], env=env, args=["--log-level", "debug"]))
    assert "role_arn assumed through STS" in err_text(proc)
    assert_no_secrets(proc)
    assert data_files(fetch("moto", prefix, tmp_path / "m"), ext="parquet")


def test_azure_sas_token_and_abfss_url(run_inlet, tmp_path):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas("devstoreaccount1", "inlet-test",
                                 account_key=server_env("INLET_AZURITE_KEY"),
                                 permission=ContainerSasPermissions(read=True, write=True,
                                                                    create=True, list=True),
                                 expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    sig = dict(p.split("=", 1) for p in sas.split("&"))["sig"]
    prefix = unique("sas")
    cfg = {"destination": f"abfss://inlet-test@devstoreaccount1.dfs.core.windows.net/{prefix}",
           "sas_token": sas, "azure_endpoint": server_env("INLET_AZURITE_ENDPOINT")}
    data, expect, _ = make_input(30)
    proc = ok(run_inlet(cfg, data, args=["--log-level", "debug"]))
    assert_no_secrets(proc, [sig, urllib.parse.unquote(sig)])
    check_rows(fetch("azurite", prefix, tmp_path / "m"), "parquet", "mage", expect)


def test_gcs_check_names_the_missing_permission(inlet_bin, tmp_path, child_env):
    gcs = server_env("INLET_GCS_ENDPOINT")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(backend_config("gcs", unique("deny"))))
    deny = lambda ops: urllib.request.urlopen(  # noqa: E731
        urllib.request.Request(f"{gcs}/_fake/deny?ops={ops}", method="POST", data=b""))
    deny("list,delete")
    try:
        proc = subprocess.run([str(inlet_bin), "check", "--config", str(cfg)],
                              capture_output=True, env=child_env(), timeout=120)
    finally:
        deny("")
    out = proc.stdout.decode()
    assert proc.returncode == 5, explain(proc)
    assert "FAILED  list" in out and "storage.objects.list" in out, out
    # delete is not needed by inlet load: a warning, not a failure
    assert "WARNING delete" in out and "storage.objects.delete" in out, out


# ------------------------------------------------------------------ LakeXpress options

def test_auth_file_with_env_secret_and_sub_path(inlet_bin, tmp_path, child_env):
    prefix = unique("auth")
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({
        "s3_01": {"storage_type": "s3", "info": {
            "bucket": "inlet-test", "base_path": prefix, "region": "us-east-1",
            "endpoint_url": server_env("INLET_S3S_ENDPOINT"),
            "aws_access_key_id": S3S_KEY, "aws_secret_access_key": "$env{LAKE_SECRET}"}},
        "other": {"storage_type": "gcs", "info": {"bucket": "x"}},
    }))
    data, expect, states = make_input(30)
    proc = subprocess.run([str(inlet_bin), "load", "--auth", str(auth), "--target-storage-id",
                           "s3_01", "--sub-path", "daily/2024"], input=data, capture_output=True,
                          env=child_env({"LAKE_SECRET": S3S_SECRET}), timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert_no_secrets(proc)
    assert stdout_states(proc)[-1] == states[-1]
    mirror = fetch("s3s", prefix, tmp_path / "m")
    assert (mirror / "daily/2024/public/orders/part-00000.parquet").is_file(), \
        sorted(mirror.rglob("*"))
    check_rows(mirror / "daily/2024", "parquet", "lakexpress", expect)


def test_auth_file_errors(inlet_bin, tmp_path, child_env):
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"s3_01": {"storage_type": "s3", "info": {
        "bucket": "b", "aws_secret_access_key": "$env{NOT_SET_ANYWHERE}"}}}))

    def run(*args):
        return subprocess.run([str(inlet_bin), "load", *args], input=b"", capture_output=True,
                              env=child_env(), timeout=60)

    p = run("--auth", str(auth), "--target-storage-id", "nope")
    assert p.returncode == 3 and "no such storage id" in err_text(p) and "s3_01" in err_text(p)
    p = run("--auth", str(auth), "--target-storage-id", "s3_01")
    assert p.returncode == 3 and "NOT_SET_ANYWHERE" in err_text(p), explain(p)
    p = run("--auth", str(auth), "--target-storage-id", "s3_01", "--output-dir", str(tmp_path))
    assert p.returncode == 2 and "--output-dir" in err_text(p), explain(p)
    p = run("--auth", str(auth))
    assert p.returncode == 2 and "--target-storage-id" in err_text(p), explain(p)


def test_output_dir_uses_the_lakexpress_layout(inlet_bin, tmp_path, child_env):
    out = tmp_path / "export"
    data, expect, _ = make_input(15)
    proc = subprocess.run([str(inlet_bin), "load", "--output-dir", str(out), "--sub-path", "a/b"],
                          input=data, capture_output=True, env=child_env(), timeout=60)
    assert proc.returncode == 0, explain(proc)
    assert (out / "a/b/sales/items/part-00000.parquet").is_file(), sorted(out.rglob("*"))
    check_rows(out / "a/b", "parquet", "lakexpress", expect)


# ------------------------------------------------------------------ faults

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_s3s(root: Path, port: int) -> subprocess.Popen:
    exe = Path(os.environ.get("INLET_TOOLS_DIR", Path.home() / ".cache/inlet/tools")) / "bin/s3s-fs"
    p = subprocess.Popen([str(exe), "--host", "127.0.0.1", "--port", str(port), "--access-key",
                          S3S_KEY, "--secret-key", S3S_SECRET, str(root)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p
        except OSError:
            time.sleep(0.1)
    p.kill()
    pytest.fail("s3s-fs did not start")


def _fault_run(inlet_bin, child_env, tmp_path, restart: bool):
    """Streams 600 records in slices of 100 (a flush and a STATE each); the S3 server dies after
    the second STATE. With `restart`, it comes back 2 s later."""
    root = tmp_path / "s3root"
    (root / "bkt").mkdir(parents=True)
    port = _free_port()
    server = _start_s3s(root, port)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({
        "destination": "s3://bkt/fault", "aws_endpoint": f"http://127.0.0.1:{port}",
        "aws_access_key_id": S3S_KEY, "aws_secret_access_key": S3S_SECRET,
        "aws_region": "us-east-1", "batch_max_rows": 100,
        "storage_max_retries": 8 if restart else 2,
        "storage_retry_timeout_seconds": 30 if restart else 4,
        "storage_connect_timeout_seconds": 1}))
    proc = subprocess.Popen([str(inlet_bin), "load", "--config", str(cfg)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    states: list = []
    reader = threading.Thread(target=lambda: states.extend(
        json.loads(x) for x in proc.stdout), daemon=True)
    reader.start()
    proc.stdin.write(lines(schema_msg("public-t", SCHEMA)))
    try:
        for b in range(6):
            recs = [record_msg("public-t", {"id": b * 100 + i + 1}) for i in range(100)]
            proc.stdin.write(lines(*recs, state_msg({"n": (b + 1) * 100})))
            proc.stdin.flush()
            if b == 1:
                deadline = time.monotonic() + 30
                while len(states) < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert len(states) >= 2, "no STATE after the first two flushes"
                server.send_signal(signal.SIGKILL)
                server.wait()
            if restart and b == 3:
                time.sleep(2)
                server = _start_s3s(root, port)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # inlet gave up while we were still writing: that is the no-restart case
    rc = proc.wait(timeout=180)
    reader.join(timeout=10)
    err = proc.stderr.read().decode()
    server.kill()
    files = sorted((root / "bkt" / "fault").rglob("*.parquet"))
    rows = sum(read_parquet_files([f]).num_rows for f in files)
    return rc, states, rows, err


def test_s3_server_restart_mid_load_is_retried(inlet_bin, child_env, tmp_path):
    rc, states, rows, err = _fault_run(inlet_bin, child_env, tmp_path, restart=True)
    assert rc == 0, err
    assert rows == 600, err
    assert states[-1] == {"n": 600}


def test_s3_server_gone_fails_with_no_state_beyond_the_files(inlet_bin, child_env, tmp_path):
    rc, states, rows, err = _fault_run(inlet_bin, child_env, tmp_path, restart=False)
    assert rc == 5, err
    assert "cannot reach the storage endpoint" in err, err
    # every STATE emitted is covered by rows that are in complete files
    assert states and states[-1]["n"] <= rows, (states, rows)
    assert states[-1]["n"] < 600


# ------------------------------------------------------------------ region, encryption

class _OtherRegionS3(_QuietHandler):
    """Answers like S3 does for a bucket in another region: 301 without Location, and the
    bucket's region in x-amz-bucket-region."""

    def _answer(self):
        self._drain()
        body = b"" if self.command == "HEAD" else (
            b"<?xml version='1.0'?><Error><Code>PermanentRedirect</Code><Message>The bucket you "
            b"are attempting to access must be addressed using the specified endpoint.</Message>"
            b"</Error>")
        self.send_response(301)
        self.send_header("x-amz-bucket-region", "eu-central-1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    do_PUT = do_GET = do_HEAD = do_POST = _answer


def test_bucket_in_another_region_names_both_regions(run_inlet):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _OtherRegionS3)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        cfg = {**backend_config("s3s", "x"), "aws_endpoint": f"http://127.0.0.1:{srv.server_port}",
               "aws_region": "us-east-1", "storage_max_retries": 1}
        proc = run_inlet(cfg, make_input(3)[0], timeout=60)
    finally:
        srv.shutdown()
    assert proc.returncode == 5, explain(proc)
    err = err_text(proc)
    assert "is in region eu-central-1, not in the configured region us-east-1" in err, err
    assert "aws_region: eu-central-1" in err


@pytest.mark.parametrize("sse,extra,want", [
    ("AES256", {}, ("AES256", None)),
    ("aws:kms", {"aws_sse_kms_key_id": "arn:aws:kms:us-east-1:123456789012:key/inlet-test"},
     ("aws:kms", "arn:aws:kms:us-east-1:123456789012:key/inlet-test")),
])
def test_server_side_encryption(run_inlet, sse, extra, want):
    import boto3

    prefix = unique("sse")
    cfg = {**backend_config("moto", prefix), "aws_server_side_encryption": sse, **extra}
    ok(run_inlet(cfg, make_input(3)[0]))
    s3 = boto3.client("s3", endpoint_url=server_env("INLET_MOTO_ENDPOINT"),
                      region_name="us-east-1", aws_access_key_id="r", aws_secret_access_key="r")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="inlet-test", Prefix=prefix)["Contents"]]
    for k in keys:
        h = s3.head_object(Bucket="inlet-test", Key=k)
        assert h.get("ServerSideEncryption") == want[0], h
        if want[1]:
            assert h.get("SSEKMSKeyId") == want[1], h


def test_kms_without_a_key_id_is_a_config_error(run_inlet):
    cfg = {**backend_config("moto", "x"), "aws_server_side_encryption": "aws:kms"}
    proc = run_inlet(cfg, make_input(3)[0])
    assert proc.returncode == 3 and "aws_sse_kms_key_id" in err_text(proc), explain(proc)


# ------------------------------------------------------------------ more credential chains
# Every metadata / token endpoint below is a fake on 127.0.0.1, set through the variables the
# SDKs read for that purpose; 169.254.169.254 is never contacted.

class _Recorder(_QuietHandler):
    """Answers from a route table {(method, path-prefix): (status, headers, body)}; records
    (method, path, headers with lower-case names) of every request."""
    routes: dict = {}
    seen: list = []

    def _answer(self):
        self._drain()
        type(self).seen.append((self.command, self.path,
                                {k.lower(): v for k, v in self.headers.items()}))
        for (method, prefix), (status, headers, body) in type(self).routes.items():
            if method == self.command and self.path.startswith(prefix):
                b = body() if callable(body) else body
                b = b.encode() if isinstance(b, str) else b
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(b)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer


def _serve(routes: dict):
    handler = type("Fake", (_Recorder,), {"routes": routes, "seen": []})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, handler


def _in_hours(h: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_container_role_credentials(run_inlet, tmp_path):
    creds = lambda: json.dumps({"AccessKeyId": S3S_KEY, "SecretAccessKey": S3S_SECRET,  # noqa: E731
                                "Token": "fake-container-token", "Expiration": _in_hours(6)})
    srv, h = _serve({("GET", "/creds"): (200, {"Content-Type": "application/json"}, creds)})
    try:
        prefix = unique("ecs")
        cfg = {"destination": f"s3://inlet-test/{prefix}",
               "aws_endpoint": server_env("INLET_S3S_ENDPOINT"), "aws_region": "us-east-1"}
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{srv.server_port}/creds"}
        proc = ok(run_inlet(cfg, make_input(6)[0], env=env))
        assert_no_secrets(proc, ["fake-container-token"])
    finally:
        srv.shutdown()
    assert any(p == "/creds" for _, p, _ in h.seen)
    assert data_files(fetch("s3s", prefix, tmp_path / "m"), ext="parquet")


def test_web_identity_role_through_sts(run_inlet, tmp_path):
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbmxldCJ9.c2ln")
    prefix = unique("webid")
    cfg = {"destination": f"s3://inlet-test/{prefix}",
           "aws_endpoint": server_env("INLET_MOTO_ENDPOINT"), "aws_region": "us-east-1"}
    env = {"AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
           "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/inlet-web",
           "AWS_ROLE_SESSION_NAME": "inlet-test",
           "AWS_ENDPOINT_URL_STS": server_env("INLET_MOTO_ENDPOINT")}
    ok(run_inlet(cfg, make_input(6)[0], env=env))
    assert data_files(fetch("moto", prefix, tmp_path / "m"), ext="parquet")


def test_gcs_metadata_server_when_no_file_is_given(run_inlet, tmp_path):
    token = json.dumps({"access_token": "ya29.fake-metadata-token", "expires_in": 3600,
                        "token_type": "Bearer"})
    srv, h = _serve({("GET", "/computeMetadata/v1/instance/service-accounts/default/"):
                     (200, {"Content-Type": "application/json", "Metadata-Flavor": "Google"},
                      token)})
    try:
        prefix = unique("gce")
        cfg = {"destination": f"gs://inlet-test/{prefix}",
               "gcs_endpoint": server_env("INLET_GCS_ENDPOINT")}
        host = f"127.0.0.1:{srv.server_port}"
        # HOME without gcloud files: no application default credentials, so the metadata server
        env = {"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "HOME": str(tmp_path)}
        proc = ok(run_inlet(cfg, make_input(6)[0], env=env))
        assert_no_secrets(proc, ["ya29.fake-metadata-token"])
    finally:
        srv.shutdown()
    calls = [(p, hd) for m, p, hd in h.seen if "/token" in p]
    assert calls and calls[0][1].get("metadata-flavor") == "Google", h.seen
    assert data_files(fetch("gcs", prefix, tmp_path / "m"), ext="parquet")


def _fake_blob_routes() -> dict:
    head = {"ETag": '"0x1"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    return {("PUT", "/acct/"): (201, head, b"")}


@pytest.mark.parametrize("kind", ["managed_identity", "service_principal"])
def test_azure_token_credentials_reach_the_blob_service(kind, inlet_bin, tmp_path, child_env):
    """Azurite takes OAuth only over HTTPS, so these two paths are checked against fakes: the
    token endpoint hands out a token and the blob PUT must carry it as a Bearer token."""
    expires_on = str(int(time.time()) + 3600)
    routes = _fake_blob_routes()
    routes[("GET", "/msi")] = (200, {"Content-Type": "application/json"},
                               json.dumps({"access_token": "msi-token-x", "expires_on": expires_on,
                                           "token_type": "Bearer"}))
    routes[("POST", "/tenant-1/oauth2/v2.0/token")] = (
        200, {"Content-Type": "application/json"},
        json.dumps({"access_token": "sp-token-y", "expires_in": 3600, "token_type": "Bearer"}))
    srv, h = _serve(routes)
    base = f"http://127.0.0.1:{srv.server_port}"
    cfg = {"destination": "az://lake/p", "account_name": "acct", "azure_endpoint": f"{base}/acct",
           "storage_max_retries": 0}
    if kind == "managed_identity":
        cfg["azure_msi_endpoint"] = f"{base}/msi"
        want = "Bearer msi-token-x"
    else:
        cfg.update({"azure_tenant_id": "tenant-1", "azure_client_id": "client-1",
                    "azure_client_secret": "sp-secret-z", "azure_authority_host": base})
        want = "Bearer sp-token-y"
    cfile = tmp_path / "c.json"
    cfile.write_text(json.dumps(cfg))
    try:
        proc = subprocess.run([str(inlet_bin), "check", "--config", str(cfile)],
                              capture_output=True, env=child_env(), timeout=60)
    finally:
        srv.shutdown()
    puts = [hd for m, p, hd in h.seen if m == "PUT" and p.startswith("/acct/lake/p/_inlet_check/")]
    assert puts, (h.seen, explain(proc))
    assert puts[0].get("authorization") == want, puts[0]
    assert "ok      put" in proc.stdout.decode(), explain(proc)
    assert_no_secrets(proc, ["sp-secret-z", "msi-token-x", "sp-token-y"])
