"""Rows go to the writer while their batch is still filling (chunks of 16,384 rows are encoded
as soon as they are cut). A user must not see any of it: a batch is still one complete file per
partition, published only when the batch is sealed, with one header, one stamp and every row in
input order; a failure after some of a batch's rows were handed over publishes nothing of that
batch."""

from __future__ import annotations

import pytest

from inlet_helpers import (
    data_files,
    explain,
    read_csv_file,
    read_jsonl_file,
    read_parquet_files,
    record_msg,
    schema_msg,
    state_msg,
    stdout_states,
)

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "cat": {"type": "string"},
        "note": {"type": ["null", "string"]},
    },
    "required": ["id"],
}
CATS = ["a", "b", "c"]
CHUNK = 16_384


def note(i: int) -> str | None:
    return None if i % 7 == 0 else f"héllo \"{i}\"\n,ok"


def build(n: int, bad_at: int | None = None, state_every: int = 0) -> bytes:
    out = [schema_msg("s", SCHEMA)]
    for i in range(n):
        if i == bad_at:
            out.append(record_msg("s", {"id": "not a number", "cat": "a"}))
            continue
        out.append(record_msg("s", {"id": i, "cat": CATS[i % 3], "note": note(i)}))
        if state_every and i % state_every == state_every - 1:
            out.append(state_msg({"n": i}))
    return ("\n".join(out) + "\n").encode()


N = 2 * CHUNK + 10_000  # three chunks in one batch


@pytest.mark.parametrize("fmt,compression,ext", [
    ("parquet", None, "parquet"),
    ("csv", None, "csv"),
    ("jsonl", "gzip", "jsonl.gz"),
])
def test_a_batch_of_several_chunks_is_one_complete_file(run_inlet, dest, fmt, compression, ext):
    cfg = {"destination": str(dest), "format": fmt}
    if compression:
        cfg["compression"] = compression
    p = run_inlet(cfg, build(N))
    assert p.returncode == 0, explain(p)
    files = data_files(dest, "s", ext)
    assert len(files) == 1, files
    f = files[0]
    if fmt == "parquet":
        rows = read_parquet_files([f]).to_pylist()
    elif fmt == "csv":
        text = f.read_text(encoding="utf-8")
        assert text.count("id,cat,note,") == 1, "one header row for the whole file"
        rows = read_csv_file(f).to_pylist()
    else:
        rows = read_jsonl_file(f)  # a gzip stream finished once, after the last chunk
    assert [int(r["id"]) for r in rows] == list(range(N))
    for i in (0, 1, CHUNK - 1, CHUNK, N - 2, N - 1):  # both sides of the chunk cuts
        assert rows[i]["note"] == note(i) or (fmt == "csv" and note(i) is None), (i, rows[i])
    assert len({str(r["_inlet_created_at"]) for r in rows}) == 1, "one stamp per batch"


def test_partitions_span_chunks_one_file_each(run_inlet, dest):
    cfg = {"destination": str(dest), "partition_keys": ["cat"]}
    p = run_inlet(cfg, build(N))
    assert p.returncode == 0, explain(p)
    files = data_files(dest, "s", "parquet")
    assert sorted(f.parent.name for f in files) == ["cat=a", "cat=b", "cat=c"]
    for f in files:
        cat = f.parent.name.split("=")[1]
        t = read_parquet_files([f])
        ids = t.column("id").to_pylist()
        assert ids == [i for i in range(N) if CATS[i % 3] == cat], f"{f}: rows in input order"


def test_many_partitions_each_get_one_complete_file(run_inlet, dest):
    # more partitions than the writer encodes at once: the rest wait as rows, same result
    out = [schema_msg("s", SCHEMA)]
    n = 3 * CHUNK
    for i in range(n):
        out.append(record_msg("s", {"id": i, "cat": f"p{i % 150:03d}", "note": note(i)}))
    p = run_inlet({"destination": str(dest), "partition_keys": ["cat"], "format": "csv"},
                  ("\n".join(out) + "\n").encode())
    assert p.returncode == 0, explain(p)
    files = data_files(dest, "s", "csv")
    assert len(files) == 150
    for f in files:
        part = int(f.parent.name.removeprefix("cat=p"))
        ids = [int(x) for x in read_csv_file(f).column("id").to_pylist()]
        assert ids == list(range(part, n, 150)), f


def test_a_failure_after_rows_were_handed_over_publishes_nothing_of_that_batch(run_inlet, dest):
    # batch 1: ids 0..99,999 (two chunks handed over, then sealed); batch 2 fails at 180,000,
    # after its first chunk was already encoded
    data = build(250_000, bad_at=180_000, state_every=10_000)
    p = run_inlet({"destination": str(dest), "batch_max_rows": 100_000}, data)
    assert p.returncode == 4, explain(p)
    bad_line = next(i for i, ln in enumerate(data.split(b"\n"), 1) if b"not a number" in ln)
    assert f"input line {bad_line} " in p.stderr.decode(), explain(p)
    files = data_files(dest, "s", "parquet")
    assert len(files) == 1, files
    assert read_parquet_files(files).column("id").to_pylist() == list(range(100_000))
    states = stdout_states(p)
    assert states and states[-1] == {"n": 99_999}, states
    assert all(s["n"] < 100_000 for s in states)
