"""The command line as Meltano and users run it: --about, --version, the target-inlet name,
config files (repeatable, JSON and YAML), environment overrides, `inlet check`, exit codes,
BATCH / ACTIVATE_VERSION / LOG messages, --input, logs and secrets."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from inlet_helpers import (all_files, data_files, err_text, explain, lines, ok, read_jsonl_file,
                           read_parquet_files, record_msg, rel, schema_msg, state_msg, stdout_states, clean_env)

# Every setting of README.md (configuration reference) and src/config/settings.rs
SETTINGS = [
    "destination", "format", "compression", "row_group_size", "csv_delimiter", "layout", "object_key_path",
    "table", "date_partition_format", "sub_path", "default_schema", "partition_keys", "path_template",
    "add_metadata_columns", "metadata_column_prefix", "column_header_format", "validate_records",
    "on_invalid_record", "batch_max_bytes", "maximum_batch_size_mb", "batch_max_rows", "batch_max_age_seconds",
    "state_file", "log_format",
]

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": ["null", "string"]},
                                           "flag": {"type": ["null", "boolean"]}}}


def simple_input(n=5, stream="s") -> bytes:
    return lines(schema_msg(stream, SCHEMA), *[record_msg(stream, {"id": i, "name": f"n{i}", "flag": i % 2 == 0})
                                                for i in range(n)], state_msg({"n": n}))


def run(inlet_bin, *args, input=b"", env=None, argv0=None, cwd=None, timeout=120):
    cmd = [str(argv0 or inlet_bin), *map(str, args)]
    return subprocess.run(cmd, input=input, capture_output=True, env=clean_env(env), cwd=cwd, timeout=timeout)


def exts(dest):
    return sorted({f.name.split(".", 1)[1] for f in data_files(dest)})


# ---------------------------------------------------------------- about / version


def test_about_json_lists_every_setting(inlet_bin):
    p = ok(run(inlet_bin, "load", "--about", "--format", "json"))
    about = json.loads(p.stdout)
    assert about["name"] == "target-inlet"
    caps = set(about["capabilities"])
    assert {"about", "batch"} <= caps
    by_name = {s["name"]: s for s in about["settings"]}
    missing = [k for k in SETTINGS if k not in by_name]
    assert not missing, missing
    for s in about["settings"]:
        assert s.get("type") in {"string", "integer", "boolean", "array", "options", "object", "password", "number"}, s
        assert "default" in s or s["name"] == "destination", s
        assert s.get("description"), s
    assert by_name["format"]["default"] == "parquet"
    assert by_name["on_invalid_record"]["default"] == "fail"
    assert set(o if isinstance(o, str) else o.get("value") for o in by_name["on_invalid_record"]["options"]) == {"fail", "skip", "quarantine"}


def test_about_markdown_lists_every_setting(inlet_bin):
    p = ok(run(inlet_bin, "load", "--about", "--format", "markdown"))
    md = p.stdout.decode()
    for k in SETTINGS:
        assert f"`{k}`" in md, k
    assert ok(run(inlet_bin, "load", "--about")).stdout.decode() == md  # markdown is the default


def test_version(inlet_bin, tmp_path):
    v = ok(run(inlet_bin, "--version")).stdout.decode().strip()
    assert re.fullmatch(r"inlet \d+\.\d+\.\d+\S*", v), v
    assert ok(run(inlet_bin, "load", "--version")).stdout.decode().strip().endswith(v.split()[-1])


@pytest.fixture
def target_inlet(inlet_bin, tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    link = d / "target-inlet"
    link.symlink_to(inlet_bin)
    return link


def test_target_inlet_symlink_is_inlet_load(inlet_bin, target_inlet, tmp_path, dest):
    cfg = tmp_path / "meltano.json"
    cfg.write_text(json.dumps({"destination": str(dest)}))
    p = ok(run(inlet_bin, "--config", cfg, input=simple_input(), argv0=target_inlet, cwd=tmp_path))
    assert stdout_states(p) == [{"n": 5}]
    assert sorted(read_parquet_files(data_files(dest, "s")).column("id").to_pylist()) == list(range(5))
    about = json.loads(ok(run(inlet_bin, "--about", "--format=json", argv0=target_inlet)).stdout)
    assert about["name"] == "target-inlet"
    assert re.search(r"\d+\.\d+\.\d+", ok(run(inlet_bin, "--version", argv0=target_inlet)).stdout.decode())


# ---------------------------------------------------------------- config files and environment


def test_config_repeatable_later_wins_json_and_yaml(inlet_bin, tmp_path, dest):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"destination": str(dest / "wrong"), "format": "csv", "object_key_path": "keep"}))
    b = tmp_path / "b.yaml"
    b.write_text(f"# YAML config\ndestination: {dest}\nformat: jsonl\ncompression: gzip\n")
    ok(run(inlet_bin, "load", "--config", a, "--config", b, input=simple_input()))
    files = data_files(dest)
    assert [rel(dest, f).split("/")[:2] for f in files] == [["keep", "s"]]
    assert files[0].name.endswith(".jsonl.gz")
    assert not (dest / "wrong").exists()
    rows = read_jsonl_file(files[0])
    assert [r["id"] for r in rows] == list(range(5)) and rows[0]["flag"] is True and rows[1]["flag"] is False


def test_yaml_only_config(inlet_bin, tmp_path, dest):
    y = tmp_path / "c.yml"
    y.write_text(f"destination: '{dest}'\nformat: csv\npartition_keys:\n  - flag\nbatch_max_rows: 2\n"
                 f"add_metadata_columns: false\n")
    ok(run(inlet_bin, "load", "--config", y, input=simple_input()))
    paths = sorted(rel(dest, f) for f in data_files(dest))
    assert all(re.fullmatch(r"s/flag=(true|false)/\d{8}-\d{6}-\w+\.csv", p) for p in paths), paths
    assert len(paths) == 5  # 3 flushes: (0,1) (2,3) (4) -> 2 + 2 + 1 files


def test_env_overrides_config(inlet_bin, tmp_path, dest):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(dest), "format": "parquet", "batch_max_rows": 0}))
    ok(run(inlet_bin, "load", "--config", c, input=simple_input(), env={"INLET_FORMAT": "csv", "INLET_BATCH_MAX_ROWS": "2"}))
    assert exts(dest) == ["csv"] and len(data_files(dest)) == 3
    d2 = tmp_path / "d2"
    ok(run(inlet_bin, "load", "--config", c, input=simple_input(),
           env={"TARGET_INLET_DESTINATION": str(d2), "TARGET_INLET_FORMAT": "jsonl",
                "TARGET_INLET_ADD_METADATA_COLUMNS": "false", "TARGET_INLET_PARTITION_KEYS": '["flag"]'}))
    assert exts(d2) == ["jsonl"]
    assert {rel(d2, f).split("/")[1] for f in data_files(d2)} == {"flag=true", "flag=false"}
    assert set(read_jsonl_file(data_files(d2)[0])[0]) == {"id", "name", "flag"}


def test_env_only_config(inlet_bin, tmp_path, dest):
    p = ok(run(inlet_bin, "load", input=simple_input(), env={"INLET_DESTINATION": str(dest)}))
    assert stdout_states(p) == [{"n": 5}]
    assert len(data_files(dest)) == 1


def test_meltano_style_env_with_target_inlet(inlet_bin, target_inlet, tmp_path, dest):
    cfg = tmp_path / "meltano-generated.json"
    cfg.write_text(json.dumps({"destination": str(tmp_path / "from-file")}))
    ok(run(inlet_bin, "--config", cfg, input=simple_input(), argv0=target_inlet,
           env={"TARGET_INLET_DESTINATION": str(dest), "TARGET_INLET_FORMAT": "csv"}))
    assert exts(dest) == ["csv"]
    assert not data_files(tmp_path / "from-file")


# ---------------------------------------------------------------- exit codes and messages


def test_missing_destination_is_config_error(inlet_bin, tmp_path):
    c = tmp_path / "c.json"
    c.write_text("{}")
    p = run(inlet_bin, "load", "--config", c, input=simple_input())
    assert p.returncode == 3, explain(p)
    assert "destination" in err_text(p)
    assert p.stdout == b""


@pytest.mark.parametrize("bad", [
    {"on_invalid_record": "explode"}, {"format": "xml"}, {"compression": "brotli"},
    {"format": "csv", "compression": "zstd"}, {"csv_delimiter": ";;"}, {"batch_max_rows": "many"},
    {"layout": "hive"}, {"partition_keys": ["created_at:%Q"]},
])
def test_bad_config_values_exit_3_naming_the_key(inlet_bin, tmp_path, dest, bad):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(dest), **bad}))
    p = run(inlet_bin, "load", "--config", c, input=simple_input())
    assert p.returncode == 3, explain(p)
    key = next(iter(bad))
    e = err_text(p)
    assert key in e or str(bad[key]) in e, e
    assert data_files(dest) == []


def test_unreadable_or_invalid_config_file(inlet_bin, tmp_path):
    p = run(inlet_bin, "load", "--config", tmp_path / "nope.json", input=b"")
    assert p.returncode == 3, explain(p)
    assert "nope.json" in err_text(p)
    bad = tmp_path / "bad.json"
    bad.write_text('{"destination": ')
    p = run(inlet_bin, "load", "--config", bad, input=b"")
    assert p.returncode == 3, explain(p)
    assert "bad.json" in err_text(p)


def test_usage_error_exit_2(inlet_bin):
    assert run(inlet_bin, "load", "--no-such-flag").returncode == 2
    assert run(inlet_bin, "frobnicate").returncode == 2


def test_unwritable_destination_exit_5(inlet_bin, tmp_path):
    f = tmp_path / "a-file"
    f.write_text("not a folder")
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(f / "sub")}))
    p = run(inlet_bin, "load", "--config", c, input=simple_input())
    assert p.returncode == 5, explain(p)
    assert str(f) in err_text(p)
    assert p.stdout == b""


def test_unknown_keys_warn_but_load(inlet_bin, tmp_path, dest):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(dest), "some_mage_only_key": 1}))
    p = ok(run(inlet_bin, "load", "--config", c, input=simple_input()))
    assert "some_mage_only_key" in err_text(p)


def test_no_secret_in_any_output(inlet_bin, tmp_path, dest):
    c = tmp_path / "c.json"
    secret = "SuPeRsEcReT-4242-abcdef"
    c.write_text(json.dumps({"destination": str(dest), "aws_secret_access_key": secret, "password": secret,
                             "on_invalid_record": "explode"}))
    p = run(inlet_bin, "load", "--config", c, "--log-level", "trace", input=simple_input())
    assert p.returncode == 3
    assert secret.encode() not in p.stdout + p.stderr
    c.write_text(json.dumps({"destination": str(dest), "aws_secret_access_key": secret}))
    p = ok(run(inlet_bin, "load", "--config", c, "--log-level", "trace", input=simple_input()))
    assert secret.encode() not in p.stdout + p.stderr


def test_logs_plain_when_not_a_terminal_and_json_on_request(inlet_bin, tmp_path, dest):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(dest)}))
    p = ok(run(inlet_bin, "load", "--config", c, input=simple_input()))
    assert b"\x1b[" not in p.stderr, "ANSI colour codes on a stderr that is not a terminal"
    assert p.stderr.strip(), "no summary on stderr"
    p = ok(run(inlet_bin, "load", "--config", c, "--log-format", "json", input=simple_input()))
    logs = [json.loads(l) for l in p.stderr.decode().splitlines() if l.strip()]
    assert logs and all(isinstance(x, dict) for x in logs)
    c.write_text(json.dumps({"destination": str(dest), "log_format": "json"}))
    p = ok(run(inlet_bin, "load", "--config", c, input=simple_input()))
    assert all(json.loads(l) for l in p.stderr.decode().splitlines() if l.strip())


# ---------------------------------------------------------------- inlet check


def test_check_ok_on_local_folder(inlet_bin, tmp_path, dest):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(dest / "new" / "folder")}))
    p = ok(run(inlet_bin, "check", "--config", c))
    out = p.stdout.decode() + p.stderr.decode()
    for step in ("put", "get", "delete"):
        assert step in out, out
    assert all_files(dest) == [], "inlet check left its probe behind"


def test_check_fails_on_unwritable_destination(inlet_bin, tmp_path):
    f = tmp_path / "a-file"
    f.write_text("x")
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(f / "under" / "a" / "file")}))
    p = run(inlet_bin, "check", "--config", c)
    assert p.returncode == 5, explain(p)
    msg = (p.stdout + p.stderr).decode()
    assert str(f) in msg and re.search(r"(?i)not a directory|cannot create|exists", msg), msg


def test_check_with_env_only(inlet_bin, dest):
    ok(run(inlet_bin, "check", env={"INLET_DESTINATION": str(dest)}))


# ---------------------------------------------------------------- messages


def test_activate_version_log_and_case_insensitive_types(run_inlet, dest):
    data = lines(
        '{"type":"LOG","level":"INFO","message":"mage says hi"}',
        '{"type":"schema","stream":"s","schema":' + json.dumps(SCHEMA) + ',"key_properties":["id"]}',
        '{"type":"ACTIVATE_VERSION","stream":"s","version":1700000000000}',
        '{"type":"Record","stream":"s","record":{"id":1,"name":"a","flag":false},"version":1700000000000}',
        '{"type":"RECORD","stream":"s","record":{"id":2,"name":"b","flag":true}}',
        '{"type":"SOMETHING_NEW","x":1}',
        "",
        '{"type":"ACTIVATE_VERSION","stream":"s","version":1700000000000}',
        '{"type":"state","value":{"v":1}}',
    )
    p = ok(run_inlet({"destination": str(dest)}, data))
    assert stdout_states(p) == [{"v": 1}]
    t = read_parquet_files(data_files(dest, "s")).sort_by("id")
    assert t.column("id").to_pylist() == [1, 2] and t.column("flag").to_pylist() == [False, True]


def test_input_file_and_gzip(inlet_bin, tmp_path, dest):
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"destination": str(dest)}))
    plain = tmp_path / "in.singer.jsonl"
    plain.write_bytes(simple_input(7, "a"))
    gz = tmp_path / "in.singer.jsonl.gz"
    gz.write_bytes(gzip.compress(simple_input(9, "b")))
    ok(run(inlet_bin, "load", "--config", c, "--input", plain))
    p = ok(run(inlet_bin, "load", "--config", c, "--input", gz))
    assert stdout_states(p) == [{"n": 9}]
    assert read_parquet_files(data_files(dest, "a")).num_rows == 7
    assert read_parquet_files(data_files(dest, "b")).num_rows == 9
    p = run(inlet_bin, "load", "--config", c, "--input", tmp_path / "missing.jsonl")
    assert p.returncode == 4 and "missing.jsonl" in err_text(p)


BATCH_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": ["null", "string"]}, "flag": {"type": ["null", "boolean"]},
    "at": {"type": ["null", "string"], "format": "date-time"},
    "obj": {"type": ["null", "object"], "properties": {"k": {"type": "integer"}}}}}


def _batch_records(start, n):
    return [{"id": i, "name": f"b{i}", "flag": i % 2 == 0, "at": f"2024-01-01T00:00:{i % 60:02d}+01:00",
             "obj": {"k": i}} for i in range(start, start + n)]


def test_batch_messages_jsonl_gzip_and_parquet(run_inlet, dest, tmp_path):
    d = tmp_path / "batches"
    d.mkdir()
    f1 = d / "part1.jsonl"
    f1.write_text("\n".join(json.dumps(r) for r in _batch_records(0, 10)) + "\n")
    f2 = d / "part2.jsonl.gz"
    f2.write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in _batch_records(10, 10)) + "\n").encode()))
    f3 = d / "part3.parquet"
    recs3 = _batch_records(20, 10)
    pq.write_table(pa.Table.from_pylist([{**r, "obj": json.dumps(r["obj"])} for r in recs3]).drop(["obj"]), f3)
    msgs = [
        schema_msg("b", BATCH_SCHEMA),
        json.dumps({"type": "BATCH", "stream": "b", "encoding": {"format": "jsonl", "compression": "none"},
                    "manifest": [f1.as_uri()]}),
        json.dumps({"type": "BATCH", "stream": "b", "encoding": {"format": "jsonl", "compression": "gzip"},
                    "manifest": [f2.as_uri()]}),
        json.dumps({"type": "BATCH", "stream": "b", "encoding": {"format": "parquet", "compression": "none"},
                    "manifest": [f3.as_uri()]}),
        record_msg("b", _batch_records(30, 1)[0]),
        state_msg({"batches": 3}),
    ]
    p = ok(run_inlet({"destination": str(dest)}, lines(*msgs)))
    assert stdout_states(p) == [{"batches": 3}]
    t = read_parquet_files(data_files(dest, "b")).sort_by("id")
    assert t.column("id").to_pylist() == list(range(31))
    assert t.schema.field("at").type == pa.timestamp("us", tz="UTC")
    rows = t.to_pylist()
    assert [r["flag"] for r in rows] == [i % 2 == 0 for i in range(31)]
    assert rows[5]["obj"] == {"k": 5} and rows[15]["obj"] == {"k": 15} and rows[25]["obj"] is None
    assert rows[3]["at"].isoformat() == "2023-12-31T23:00:03+00:00"


def test_batch_message_missing_file_is_input_error(run_inlet, dest, tmp_path):
    msgs = [schema_msg("b", BATCH_SCHEMA),
            json.dumps({"type": "BATCH", "stream": "b", "encoding": {"format": "jsonl"},
                        "manifest": [(tmp_path / "gone.jsonl").as_uri()]})]
    p = run_inlet({"destination": str(dest)}, lines(*msgs))
    assert p.returncode == 4, explain(p)
    assert "gone.jsonl" in err_text(p) and "line 2" in err_text(p)


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_batch_file_with_invalid_utf8_is_a_rejected_record(run_inlet, dest, tmp_path, policy):
    f = tmp_path / "bad.jsonl"
    good = [json.dumps(r).encode() for r in _batch_records(0, 3)]
    bad = b'{"id": 99, "name": "caf\xe9"}'  # Latin-1, not UTF-8
    f.write_bytes(b"\n".join([good[0], bad, *good[1:]]) + b"\n")
    msgs = [schema_msg("b", BATCH_SCHEMA),
            json.dumps({"type": "BATCH", "stream": "b", "encoding": {"format": "jsonl"},
                        "manifest": [f.as_uri()]})]
    p = run_inlet({"destination": str(dest), "on_invalid_record": policy}, lines(*msgs))
    assert "bad.jsonl line 2: invalid UTF-8" in err_text(p), explain(p)
    if policy == "fail":
        assert p.returncode == 4, explain(p)
        assert data_files(dest, "b") == []
    else:
        assert p.returncode == 0, explain(p)
        assert read_parquet_files(data_files(dest, "b")).column("id").to_pylist() == [0, 1, 2]
