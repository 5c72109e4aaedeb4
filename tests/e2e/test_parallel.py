"""Decoding on several threads (`decode_threads`) must not change anything a user sees: the
same files with the same rows in the same order, the same STATE lines, the same errors as
decoding on one thread. The inputs are several MB so that many blocks are decoded in parallel,
with interleaved streams, a SCHEMA change mid-run, STATE lines and bad records in between."""

from __future__ import annotations

import json
import random

import pytest

from inlet_helpers import (
    data_files,
    err_text,
    explain,
    read_parquet_files,
    record_msg,
    schema_msg,
    state_msg,
    stdout_states,
)

SCHEMA_A = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "amount": {"type": ["null", "number"]},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "addr": {"type": ["null", "object"], "properties": {"city": {"type": ["null", "string"]}}},
        "at": {"type": ["null", "string"], "format": "date-time"},
    },
    "required": ["id"],
}
SCHEMA_A2 = json.loads(json.dumps(SCHEMA_A))
SCHEMA_A2["properties"]["extra"] = {"type": ["null", "integer"]}
SCHEMA_B = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "flag": {"type": "boolean"}},
    "required": ["id"],
}


def build_input(n: int, bad_every: int = 0, seed: int = 7) -> bytes:
    """Streams a and b interleaved at random, STATE every 500 lines, a's SCHEMA gains a
    column half-way, keys sometimes in another order, optional bad records."""
    rnd = random.Random(seed)
    out = [schema_msg("a", SCHEMA_A), schema_msg("b", SCHEMA_B)]
    for i in range(n):
        if i == n // 2:
            out.append(schema_msg("a", SCHEMA_A2))
        if i % 500 == 499:
            out.append(state_msg({"bookmarks": {"a": i}}))
        if bad_every and i % bad_every == bad_every - 1:
            out.append(record_msg("a", {"id": "not-an-int", "name": "bad"}))
            continue
        if rnd.random() < 0.7:
            rec = {
                "id": i,
                "name": rnd.choice(["Ann", "Bo", "Çelik", "名前", None, 'quote " and \\ back']),
                "amount": rnd.choice([None, round(rnd.random() * 1000, 2), 7]),
                "tags": rnd.choice([None, [], ["x", "y"]]),
                "addr": rnd.choice([None, {"city": "Oslo"}, {}]),
                "at": "2024-03-01T10:00:00+02:00",
                "padding": "p" * rnd.randrange(0, 300),  # undeclared: not written
            }
            if i >= n // 2:
                rec["extra"] = i
            if rnd.random() < 0.1:
                rec = dict(reversed(list(rec.items())))
            out.append(record_msg("a", rec, time_extracted="2024-03-01T08:00:00Z"))
        else:
            out.append(record_msg("b", {"id": i, "flag": i % 3 == 0}))
    out.append(state_msg({"bookmarks": {"a": n}}))
    return ("\n".join(out) + "\n").encode()


def files_and_rows(dest, stream):
    """Per file (in name order, which is write order within a second-stamped name only
    per run, so sorted by content instead): the list of ids."""
    files = data_files(dest, stream, "parquet")
    per_file = sorted(read_parquet_files([f]).column("id").to_pylist() for f in files)
    return per_file


def check_states(p1, p4, data: bytes):
    """Which intermediate STATEs go out depends on when files finish; both runs emit input
    STATEs in input order and end on the same one."""
    sent = [json.loads(ln)["value"] for ln in data.splitlines() if b'"STATE"' in ln]
    for p in (p1, p4):
        got = stdout_states(p)
        it = iter(sent)
        assert all(any(g == s for s in it) for g in got), "STATE lines out of input order"
    assert stdout_states(p1)[-1:] == stdout_states(p4)[-1:]


def load_both(run_inlet, tmp_path, cfg: dict, data: bytes):
    results = {}
    for threads in (1, 4):
        dest = tmp_path / f"lake-{threads}"
        dest.mkdir()
        p = run_inlet({**cfg, "destination": str(dest), "decode_threads": threads}, data,
                      args=("--log-level", "debug"))
        assert ("decoding records on 4 threads" in err_text(p)) == (threads == 4)
        results[threads] = (p, dest)
    return results


def tables(dest, stream):
    """Each file's rows (processing-time stamps dropped), files ordered by their first id."""
    out = []
    for f in data_files(dest, stream, "parquet"):
        t = read_parquet_files([f])
        out.append(t.drop_columns([c for c in t.column_names if c.startswith("_inlet_")]))
    return sorted(out, key=lambda t: t.column("id")[0].as_py())


def same_tables(d1, d4, stream):
    t1, t4 = tables(d1, stream), tables(d4, stream)
    assert len(t1) == len(t4)
    for a, b in zip(t1, t4):
        assert a.schema == b.schema
        assert a.to_pylist() == b.to_pylist()
    return t4


@pytest.mark.parametrize("limits", [{"batch_max_rows": 7000}, {"batch_max_bytes": 3_000_000}])
def test_parallel_decoding_writes_the_same_files_rows_and_states(run_inlet, tmp_path, limits):
    data = build_input(60_000)
    assert len(data) > 8 << 20, "several blocks per thread"
    res = load_both(run_inlet, tmp_path, {"format": "parquet", **limits}, data)
    (p1, d1), (p4, d4) = res[1], res[4]
    assert p1.returncode == 0, explain(p1)
    assert p4.returncode == 0, explain(p4)
    check_states(p1, p4, data)
    assert stdout_states(p4)[-1] == {"bookmarks": {"a": 60_000}}
    for stream in ("a", "b"):
        # same flush points: the same ids in the same files, in the same order
        assert files_and_rows(d1, stream) == files_and_rows(d4, stream)
        same_tables(d1, d4, stream)
    last = tables(d4, "a")[-1]
    assert "padding" not in last.column_names and "extra" in last.column_names
    # the undeclared property is warned about once per SCHEMA, not once per thread
    assert err_text(p4).count("'padding'") == err_text(p1).count("'padding'") >= 1


def test_parallel_decoding_skips_the_same_bad_records(run_inlet, tmp_path):
    data = build_input(30_000, bad_every=997)
    res = load_both(run_inlet, tmp_path, {"format": "parquet", "on_invalid_record": "skip"}, data)
    (p1, d1), (p4, d4) = res[1], res[4]
    assert p1.returncode == 0 and p4.returncode == 0, explain(p4)
    check_states(p1, p4, data)
    rows = 0
    for stream in ("a", "b"):
        rows += sum(t.num_rows for t in same_tables(d1, d4, stream))
    assert rows == 30_000 - 30_000 // 997


def test_parallel_decoding_fails_on_the_same_line(run_inlet, tmp_path):
    data = build_input(40_000, bad_every=25_000)
    res = load_both(run_inlet, tmp_path, {"format": "parquet", "batch_max_rows": 5000}, data)
    (p1, d1), (p4, d4) = res[1], res[4]
    assert p1.returncode == 4 and p4.returncode == 4, explain(p4)
    line = [ln for ln in err_text(p4).splitlines() if "input line" in ln]
    assert line and line[0].split("input line", 1)[1] in err_text(p1)
    check_states(p1, p4, data)
    for stream in ("a", "b"):
        # every batch flushed before the bad line, nothing after it
        assert files_and_rows(d1, stream) == files_and_rows(d4, stream)


def test_decode_threads_is_checked(run_inlet, dest):
    p = run_inlet({"destination": str(dest), "decode_threads": 1000}, b"")
    assert p.returncode == 3
    assert "decode_threads" in err_text(p)


def test_parallel_decoding_with_a_state_after_every_record(run_inlet, tmp_path):
    """Taps that checkpoint after each record: STATE lines between every two decoded rows."""
    out = [schema_msg("a", SCHEMA_B)]
    for i in range(40_000):
        out.append(record_msg("a", {"id": i, "flag": i % 2 == 0, "pad": "x" * 100}))
        out.append(state_msg({"a": i}))
    data = ("\n".join(out) + "\n").encode()
    res = load_both(run_inlet, tmp_path, {"format": "parquet", "batch_max_rows": 15_000}, data)
    (p1, d1), (p4, d4) = res[1], res[4]
    assert p1.returncode == 0 and p4.returncode == 0, explain(p4)
    check_states(p1, p4, data)
    assert stdout_states(p4)[-1] == {"a": 39_999}
    assert files_and_rows(d1, "a") == files_and_rows(d4, "a")
    assert sorted(len(ids) for ids in files_and_rows(d4, "a")) == [10_000, 15_000, 15_000]
