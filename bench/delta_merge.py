"""MERGE at scale (issue 15): a batch of 1M rows (half updates of existing keys, half new keys)
upserted into a 10M-row Delta table, by `inlet load` (mode merge, the batch as Singer records,
one flush) and by the `deltalake` package's `DeltaTable.merge` (the batch as an Arrow table,
`when_matched_update_all().when_not_matched_insert_all()`), each on its own copy of the same
table, with wall time and peak RSS; both results are checked against the expected rows.

    python bench/delta_merge.py [--rows 10000000] [--batch 1000000] [--cases spread,recent]

  spread  updated keys drawn from the whole table (every data file holds some)
  recent  updated keys from the newest 10 % of the table (files of older keys are skipped)

Needs a release build (INLET_BIN, default $CARGO_TARGET_DIR/release/inlet) and the test venv.
The 10M-row table is built once under ~/.cache/inlet/bench-data/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("amount", pa.float64()),
                    ("qty", pa.int64()), ("ts", pa.timestamp("us", tz="UTC")), ("region", pa.string())])
SINGER_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": ["null", "string"]},
    "amount": {"type": ["null", "number"]}, "qty": {"type": ["null", "integer"]},
    "ts": {"type": ["null", "string"], "format": "date-time"}, "region": {"type": ["null", "string"]}},
    "required": ["id"]}
FILE_ROWS = 1_000_000


def rows(ids: np.ndarray, version: int) -> pa.Table:
    rng = np.random.default_rng(int(ids[0]) + version)
    n = len(ids)
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "name": pa.array([f"n{i}-v{version}" for i in ids.tolist()]),
        "amount": pa.array(np.round(rng.random(n) * 1000, 2)),
        "qty": pa.array(rng.integers(0, 100, n), pa.int64()),
        "ts": pa.array((1_700_000_000_000_000 + ids * 1_000_000).astype("datetime64[us]"),
                       pa.timestamp("us", tz="UTC")),
        "region": pa.array(np.array(["north", "south", "east", "west", "centre"])[ids % 5]),
    }, schema=SCHEMA)


def base_table(n: int) -> Path:
    from deltalake import write_deltalake
    root = Path(os.environ.get("INLET_BENCH_DATA", os.path.expanduser("~/.cache/inlet/bench-data")))
    path = root / f"merge-base-{n}"
    if (path / "_delta_log").exists():
        return path
    tmp = path.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for start in range(0, n, FILE_ROWS):
        write_deltalake(str(tmp), rows(np.arange(start, min(n, start + FILE_ROWS)), 0), mode="append")
    tmp.rename(path)
    return path


def batch_ids(n: int, batch: int, case: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    lo = 0 if case == "spread" else n - n // 10
    updates = rng.choice(np.arange(lo, n), batch // 2, replace=False)
    inserts = np.arange(n, n + batch - batch // 2)
    ids = np.concatenate([updates, inserts])
    rng.shuffle(ids)
    return ids


def singer(t: pa.Table, out: Path):
    with open(out, "w") as f:
        f.write(json.dumps({"type": "SCHEMA", "stream": "t", "schema": SINGER_SCHEMA,
                            "key_properties": ["id"]}) + "\n")
        ts = pa.compute.strftime(t["ts"], format="%Y-%m-%dT%H:%M:%SZ").to_pylist()
        for r, s in zip(t.to_pylist(), ts):
            r["ts"] = s
            f.write(json.dumps({"type": "RECORD", "stream": "t", "record": r}) + "\n")
        f.write(json.dumps({"type": "STATE", "value": {"done": True}}) + "\n")


def timed(cmd: list[str], env=None) -> tuple[float, int]:
    t = subprocess.run(["/usr/bin/time", "-f", "%e %M", *cmd], capture_output=True, text=True, env=env)
    if t.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{t.stderr[-3000:]}")
    wall, rss = t.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss) // 1024


def check(path: Path, want: dict):
    import duckdb
    from deltalake import DeltaTable
    t = DeltaTable(str(path)).to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("t", t)
    n, distinct, sum_id, amount, batch = con.execute(
        "SELECT count(*), count(DISTINCT id), sum(id), sum(amount), "
        "sum(CASE WHEN name LIKE '%-v1' THEN 1 ELSE 0 END) FROM t").fetchone()
    assert (n, distinct, int(sum_id), int(batch)) == (want["rows"], want["rows"], want["sum_id"], want["batch"])
    assert abs(amount - want["sum_amount"]) < 1.0, (amount, want["sum_amount"])


def python_merge(table: str, batch: str):
    """The reference engine, run in its own process so that its peak RSS is its own."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable
    src = pq.read_table(batch)
    (DeltaTable(table).merge(source=src, predicate="t.id = s.id", source_alias="s", target_alias="t")
     .when_matched_update_all().when_not_matched_insert_all().execute())


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--python-merge":
        return python_merge(sys.argv[2], sys.argv[3])
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--batch", type=int, default=1_000_000)
    ap.add_argument("--cases", default="spread,recent")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/inlet/target"))
    binary = os.environ.get("INLET_BIN", f"{target}/release/inlet")
    base = base_table(a.rows)
    work = Path(tempfile.mkdtemp(prefix="inlet-merge-"))
    print(f"merge of {a.batch:,} rows (half updates, half inserts) into {a.rows:,} rows "
          f"({len(list(base.glob('*.parquet')))} data files); load1 {open('/proc/loadavg').read().split()[0]}")
    print("| case | engine | wall s | peak RSS MB |\n|---|---|---|---|")
    try:
        for case in a.cases.split(","):
            ids = batch_ids(a.rows, a.batch, case)
            b = rows(ids, 1)
            import pyarrow.parquet as pq
            pq.write_table(b, work / "batch.parquet")
            singer(b, work / "batch.singer.jsonl")
            kept = np.setdiff1d(np.arange(a.rows), ids)
            # the base's amounts, regenerated chunk by chunk as base_table wrote them
            amounts = np.concatenate([rows(np.arange(s, min(a.rows, s + FILE_ROWS)), 0)["amount"].to_numpy()
                                      for s in range(0, a.rows, FILE_ROWS)])
            base_amount = float(amounts[kept].sum())
            want = {"rows": a.rows + a.batch - a.batch // 2,
                    "sum_id": int(kept.sum() + ids.sum()),
                    "sum_amount": round(base_amount + pa.compute.sum(b["amount"]).as_py(), 2),
                    "batch": a.batch}
            for engine in ("inlet", "deltalake"):
                dest = work / engine
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(base, dest / "t")
                if engine == "inlet":
                    cfg = work / "cfg.json"
                    cfg.write_text(json.dumps({"destination": str(dest), "format": "delta",
                                               "mode": "merge", "add_metadata_columns": False,
                                               "batch_max_rows": a.batch + 1,
                                               "batch_max_bytes": 1_500_000_000}))
                    wall, rss = timed([binary, "load", "--config", str(cfg), "--input",
                                       str(work / "batch.singer.jsonl")])
                else:
                    wall, rss = timed([sys.executable, __file__, "--python-merge", str(dest / "t"),
                                       str(work / "batch.parquet")])
                check(dest / "t", want)
                print(f"| {case} | {engine} | {wall:.2f} | {rss} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
