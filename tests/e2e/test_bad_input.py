"""The bad-input suite: every kind of bad line under each on_invalid_record policy
(fail / skip / quarantine), checking the message, the exit code, the files and the STATE
lines on stdout."""

from __future__ import annotations

import json
import re

import pytest

from inlet_helpers import (assert_no_temp_files, data_files, err_text, explain, gen_singer, lines, ok,
                           read_jsonl_file, read_parquet_files, record_msg, rel, schema_msg, state_msg,
                           stdout_states)

STREAM = "public-things"

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "created_at": {"type": ["null", "string"], "format": "date-time"},
        "address": {"type": ["null", "object"], "properties": {
            "city": {"type": "string"},
            "zip": {"type": ["null", "string"], "maxLength": 5},
        }},
        "status": {"type": ["null", "string"], "enum": ["new", "done", None]},
        "qty": {"type": ["null", "integer"], "minimum": 0},
        "ratio": {"type": ["null", "number"], "maximum": 1, "exclusiveMaximum": True},
        "lines": {"type": ["null", "array"], "items": {"type": "object", "properties": {
            "sku": {"type": "string"}, "qty": {"type": "integer"}}}},
    },
    "required": ["id", "name"],
}

HUGE = 50 * 1024 * 1024


def good(i: int) -> str:
    return record_msg(STREAM, {"id": i, "name": f"n{i}", "created_at": f"2024-01-01T00:00:{i:02d}Z",
                               "address": {"city": "Paris", "zip": "75001"}, "status": "new", "qty": i, "ratio": 0.5,
                               "lines": [{"sku": f"s{i}", "qty": i}]})


def bad_record(rec: dict) -> bytes:
    return record_msg(STREAM, rec).encode()


# kind -> (bad line bytes, stream named in the message / quarantine folder, field path in the message)
CASES = {
    "malformed_json": (b'{"type":"RECORD","stream":"public-things","record":{"id":99,"name":"trunc', None, None),
    "not_singer": (b'{"hello": "world"}', None, None),
    "record_before_schema": (record_msg("late", {"id": 99, "name": "x"}).encode(), "late", None),
    "unknown_stream": (record_msg("nope", {"id": 99, "name": "x"}).encode(), "nope", None),
    "wrong_type": (bad_record({"id": "abc", "name": "x"}), STREAM, "id"),
    "wrong_type_nested": (bad_record({"id": 99, "name": "x", "address": {"city": 5}}), STREAM, "address.city"),
    # the bad value comes after other fields of the same object / list were already decoded
    "wrong_type_in_list": (bad_record({"id": 99, "name": "x", "lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": "x"}]}),
                           STREAM, "lines[1].qty"),
    "missing_required": (bad_record({"id": 99}), STREAM, "name"),
    "null_not_allowed": (bad_record({"id": 99, "name": None}), STREAM, "name"),
    "unparsable_date": (bad_record({"id": 99, "name": "x", "created_at": "not a date"}), STREAM, "created_at"),
    "impossible_date": (bad_record({"id": 99, "name": "x", "created_at": "2024-02-30T00:00:00Z"}), STREAM, "created_at"),
    "enum": (bad_record({"id": 99, "name": "x", "status": "bogus"}), STREAM, "status"),
    "max_length": (bad_record({"id": 99, "name": "x", "address": {"city": "c", "zip": "123456"}}), STREAM, "address.zip"),
    "minimum": (bad_record({"id": 99, "name": "x", "qty": -1}), STREAM, "qty"),
    "exclusive_maximum_draft4": (bad_record({"id": 99, "name": "x", "ratio": 1}), STREAM, "ratio"),
    "integer_overflow": (b'{"type":"RECORD","stream":"public-things","record":{"id":99999999999999999999,"name":"x"}}', STREAM, "id"),
    "invalid_utf8": (b'{"type":"RECORD","stream":"public-things","record":{"id":99,"name":"bad \xff\xfe bytes"}}', None, None),
    "huge_malformed_line": (b'{"type":"RECORD","stream":"public-things","record":{"id":99,"name":"' + b"x" * HUGE, None, None),
}

BAD_LINE_NO = 10


def bad_input(bad: bytes) -> bytes:
    """SCHEMA; r1-r5 (one full batch); STATE n=5; r6, r7; BAD (line 10); r8-r10; STATE n=10;
    then the late stream's SCHEMA and a record of it."""
    ls = [schema_msg(STREAM, SCHEMA)]                       # 1
    ls += [good(i) for i in range(1, 6)]                    # 2-6
    ls += [state_msg({"n": 5})]                             # 7
    ls += [good(6), good(7)]                                # 8, 9
    ls += [bad]                                             # 10
    ls += [good(i) for i in range(8, 11)]                   # 11-13
    ls += [state_msg({"n": 10})]                            # 14
    ls += [schema_msg("late", SCHEMA), record_msg("late", {"id": 1, "name": "late one"})]
    ls += [state_msg({"n": "end"})]
    data = lines(*ls)
    assert data.split(b"\n")[BAD_LINE_NO - 1] == bad
    return data


def _run(run_inlet, config, data):
    return run_inlet(config, data)


def ids_in(dest, stream):
    files = data_files(dest, stream, "parquet")
    return sorted(read_parquet_files(files).column("id").to_pylist()) if files else []


def cfg(dest, policy):
    return {"destination": str(dest), "on_invalid_record": policy, "batch_max_rows": 5}


@pytest.mark.parametrize("kind", list(CASES))
def test_fail(run_inlet, dest, kind):
    bad, stream, field = CASES[kind]
    proc = (run_huge if kind.startswith("huge") else _run)(run_inlet, cfg(dest, "fail"), bad_input(bad))
    assert proc.returncode == 4, explain(proc)
    e = err_text(proc)
    assert re.search(rf"\bline {BAD_LINE_NO}\b", e), e[-3000:]
    if stream:
        assert f"'{stream}'" in e or f'"{stream}"' in e, e[-3000:]
    if field:
        assert field in e, e[-3000:]
    # the flushed batch stays and its STATE went out; nothing from the failing batch is visible,
    # and no STATE from after the failure
    assert ids_in(dest, STREAM) == [1, 2, 3, 4, 5]
    assert ids_in(dest, "late") == []
    assert stdout_states(proc) == [{"n": 5}]
    assert not (dest / "_rejected").exists()
    assert_no_temp_files(dest)
    # the huge line is not echoed whole into the logs
    assert len(proc.stderr) < 1_000_000


@pytest.mark.parametrize("kind", list(CASES))
def test_skip(run_inlet, dest, kind):
    bad, stream, field = CASES[kind]
    proc = (run_huge if kind.startswith("huge") else _run)(run_inlet, cfg(dest, "skip"), bad_input(bad))
    assert proc.returncode == 0, explain(proc)
    e = err_text(proc)
    assert re.search(rf"\bline\D{{0,3}}{BAD_LINE_NO}\b", e), e[-3000:]
    if stream:
        assert stream in e, e[-3000:]
    if field:
        assert field in e, e[-3000:]
    assert ids_in(dest, STREAM) == list(range(1, 11))
    assert ids_in(dest, "late") == [1]
    # skipped lines are counted in the run summary
    finished = [l for l in e.splitlines() if "load finished" in l]
    assert finished and re.search(r"\brejected\W{1,3}1\b", finished[-1]), finished
    states = stdout_states(proc)
    assert states[-1] == {"n": "end"}
    assert all(s in ({"n": 5}, {"n": 10}, {"n": "end"}) for s in states)
    assert not (dest / "_rejected").exists()
    assert_no_temp_files(dest)
    assert len(proc.stderr) < 1_000_000


@pytest.mark.parametrize("kind", list(CASES))
def test_quarantine(run_inlet, dest, kind):
    bad, stream, field = CASES[kind]
    proc = (run_huge if kind.startswith("huge") else _run)(run_inlet, cfg(dest, "quarantine"), bad_input(bad))
    assert proc.returncode == 0, explain(proc)
    assert ids_in(dest, STREAM) == list(range(1, 11))
    assert ids_in(dest, "late") == [1]
    assert stdout_states(proc)[-1] == {"n": "end"}
    rejected = sorted((dest / "_rejected").rglob("*"))
    rejected = [p for p in rejected if p.is_file()]
    assert rejected, "no quarantine file"
    for p in rejected:
        assert re.fullmatch(r"_rejected/[^/]+/[^/]+\.jsonl", rel(dest, p)), rel(dest, p)
    entries = [(p, e) for p in rejected for e in read_jsonl_file(p)]
    assert len(entries) == 1, entries
    p, entry = entries[0]
    if stream:
        assert p.parent.name == stream, rel(dest, p)
        assert entry.get("stream") == stream
    assert entry["line"] == BAD_LINE_NO
    assert isinstance(entry["error"], str) and entry["error"]
    if field:
        assert field in entry["error"]
    if kind == "invalid_utf8":
        assert entry["raw"].startswith('{"type":"RECORD","stream":"public-things","record":{"id":99,"name":"bad ')
    elif kind == "huge_malformed_line":
        assert len(entry["raw"]) == len(bad)
    else:
        assert entry["raw"] == bad.decode()
    assert_no_temp_files(dest)


def test_fail_before_any_flush_writes_nothing(run_inlet, dest):
    data = lines(state_msg({"start": 1}), schema_msg(STREAM, SCHEMA), good(1), good(2),
                 bad_record({"id": "x", "name": "y"}), good(3), state_msg({"n": 3}))
    proc = run_inlet({"destination": str(dest)}, data)
    assert proc.returncode == 4, explain(proc)
    assert re.search(r"\bline 5\b", err_text(proc))
    assert data_files(dest) == []
    # the STATE that came before every record may go out; nothing after the failure does
    assert stdout_states(proc) in ([], [{"start": 1}])


def test_fail_keeps_other_streams_flushed_batches(run_inlet, dest):
    schema = {"type": "object", "properties": {"id": {"type": "integer"}}}
    ls = [schema_msg("a", schema), schema_msg("b", schema)]
    ls += [record_msg("a", {"id": i}) for i in range(3)]       # a: one full batch of 3
    ls += [record_msg("b", {"id": 0})]                           # b: 1 of 3 buffered
    ls += [state_msg({"s": 1})]
    ls += [record_msg("b", {"id": "bad"})]
    proc = run_inlet({"destination": str(dest), "batch_max_rows": 3}, lines(*ls))
    assert proc.returncode == 4, explain(proc)
    assert ids_in(dest, "a") == [0, 1, 2]
    assert ids_in(dest, "b") == []
    # the STATE waited on b's open batch too, which never became durable
    assert stdout_states(proc) == []


# A 50 MB line must not take long: taps write through a pipe, which delivers 64 KB per read.
HUGE_TIMEOUT = 20


def run_huge(run_inlet, config, data):
    import subprocess
    try:
        return run_inlet(config, data, timeout=HUGE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"inlet took more than {HUGE_TIMEOUT}s on a 50 MB line read from a pipe "
                    "(it takes ~2 s with the same input as a file: --input)")


def test_50mb_valid_line_loads(run_inlet, dest):
    policy = "fail"
    big = "\u00e9" * (HUGE // 2)  # 50 MB of UTF-8
    data = lines(schema_msg(STREAM, SCHEMA), good(1),
                 record_msg(STREAM, {"id": 2, "name": big}), good(3), state_msg({"n": 3}))
    proc = run_huge(run_inlet, {"destination": str(dest), "on_invalid_record": policy}, data)
    assert proc.returncode == 0, explain(proc)
    assert stdout_states(proc) == [{"n": 3}]
    t = read_parquet_files(data_files(dest, STREAM, "parquet"))
    rows = {r["id"]: r["name"] for r in t.select(["id", "name"]).to_pylist()}
    assert sorted(rows) == [1, 2, 3]
    assert rows[2] == big
    assert not (dest / "_rejected").exists()


def _gen_bad():
    data = gen_singer("-n", "1000", "-s", "2", "--bad-every", "100",
                      "--bad-kinds", "wrong_type,invalid_json,missing_key,unknown_stream", "--state-every", "250")
    bad_lines = [i + 1 for i, l in enumerate(data.split(b"\n"))
                 if b"not-an-int" in l or b"truncated" in l or b"no id here" in l or b"no_such_stream" in l]
    return data, bad_lines


def test_generated_bad_lines_fail_at_the_first(run_inlet, dest):
    data, bad_lines = _gen_bad()
    proc = run_inlet({"destination": str(dest)}, data)
    assert proc.returncode == 4, explain(proc)
    assert re.search(rf"\bline {bad_lines[0]}\b", err_text(proc)), err_text(proc)[-2000:]
    assert data_files(dest) == []  # one batch per stream, never flushed
    assert stdout_states(proc) == []


@pytest.mark.parametrize("policy", ["skip", "quarantine"])
def test_generated_bad_lines_skip_and_quarantine(run_inlet, dest, policy):
    data, bad_lines = _gen_bad()
    assert len(bad_lines) == 10
    proc = ok(run_inlet({"destination": str(dest), "on_invalid_record": policy, "batch_max_rows": 100}, data))
    for s in ("flat_0", "flat_1"):
        assert ids_in(dest, s) == list(range(1, 501)), s
    assert stdout_states(proc)[-1]["bookmarks"]["flat_0"]["replication_key_value"]
    quarantined = [e for p in (dest / "_rejected").rglob("*.jsonl") for e in read_jsonl_file(p)] \
        if (dest / "_rejected").exists() else []
    if policy == "skip":
        assert quarantined == []
    else:
        assert sorted(e["line"] for e in quarantined) == bad_lines
        dirs = {p.parent.name for p in (dest / "_rejected").rglob("*.jsonl")}
        assert {"flat_1", "no_such_stream"} <= dirs, dirs


def test_invalid_schema_message_is_input_error(run_inlet, dest):
    data = lines(schema_msg("s", {"type": "object", "properties": {"id": {"$ref": "#/definitions/missing"}}}),
                 record_msg("s", {"id": 1}))
    proc = run_inlet({"destination": str(dest)}, data)
    assert proc.returncode == 4, explain(proc)
    e = err_text(proc)
    assert "line 1" in e and "'s'" in e and "#/definitions/missing" in e


def test_validation_off_accepts_what_it_can_store(run_inlet, dest):
    # maxLength / enum / minimum are not checked, the values still land
    data = lines(schema_msg(STREAM, SCHEMA),
                 bad_record({"id": 1, "name": "x", "status": "bogus", "qty": -5, "address": {"city": "c", "zip": "1234567"}}))
    ok(run_inlet({"destination": str(dest), "validate_records": False}, data))
    t = read_parquet_files(data_files(dest, STREAM, "parquet")).to_pylist()
    assert t[0]["status"] == "bogus" and t[0]["qty"] == -5 and t[0]["address"]["zip"] == "1234567"
