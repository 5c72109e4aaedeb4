"""`inlet.write` from Python (issue 16): 10M rows from an iterator of record batches written by
`inlet.write` (Parquet files and a Delta table), `deltalake.write_deltalake` (the same batches
as a RecordBatchReader, streamed) and `pyarrow.parquet.write_table` (which takes a whole
Table: the batches are gathered first, as its users do), each in a fresh process, with wall
time and peak RSS (for inlet: the Python process and the inlet binary, each, and their sum),
in one invocation so the ratios are of one machine at one time.

    python bench/python_write.py [--rows 10000000] [--runs 3] [--engines inlet_parquet,inlet_delta,deltalake,pyarrow]

Runs in a venv with the wheel installed (`pip install` a release wheel: `maturin build --release
--out dist`), pandas/deltalake/pyarrow beside it: `--python PATH` (default: this interpreter).
Every result is read back and its row count and id sum checked.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# The child: builds the batches (a 100k-row template whose ids are shifted per batch, so making
# data costs the same for every engine and holds one batch), writes them, prints a JSON line.
CHILD = r"""
import json, resource, sys, time
import numpy as np, pyarrow as pa, pyarrow.compute as pc
engine, out, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
B = 100_000
rng = np.random.default_rng(7)
tmpl = pa.record_batch({
    "id": pa.array(np.arange(B, dtype=np.int64)),
    "customer": pa.array([f"customer-{i % 1000:04d}" for i in range(B)]),
    "amount": pa.array(rng.uniform(0, 1000, B).round(2)),
    "qty": pa.array(rng.integers(1, 50, B, dtype=np.int32)),
    "created_at": pa.array(np.arange(B, dtype=np.int64) * 1_000_000 + 1_700_000_000_000_000,
                           pa.timestamp("us", tz="UTC")),
    "flag": pa.array(rng.integers(0, 2, B).astype(bool)),
})
def batches():
    for start in range(0, rows, B):
        n = min(B, rows - start)
        b = tmpl.slice(0, n)
        yield b.set_column(0, "id", pc.add(b.column(0), start))
t0 = time.perf_counter()
if engine == "inlet_parquet":
    import inlet
    inlet.write(batches(), destination=out, table="t", format="parquet", schema=tmpl.schema)
elif engine == "inlet_delta":
    import inlet
    inlet.write(batches(), destination=out, table="t", format="delta", schema=tmpl.schema)
elif engine == "deltalake":
    from deltalake import write_deltalake
    write_deltalake(out + "/t", pa.RecordBatchReader.from_batches(tmpl.schema, batches()))
elif engine == "pyarrow":
    import pyarrow.parquet as pq, os
    os.makedirs(out + "/t", exist_ok=True)
    pq.write_table(pa.Table.from_batches(list(batches()), tmpl.schema), out + "/t/part-0.parquet")
secs = time.perf_counter() - t0
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(json.dumps({"seconds": secs, "python_mb": own, "child_mb": child}))
"""


def check(out: Path, engine: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if engine in ("inlet_delta", "deltalake"):
        from deltalake import DeltaTable

        t = DeltaTable(str(out / "t")).to_pyarrow_table(columns=["id"])
    else:
        files = sorted((out / "t").rglob("*.parquet"))
        t = pa.concat_tables([pq.read_table(f, columns=["id"]) for f in files])
    assert t.num_rows == rows, (engine, t.num_rows)
    assert pc.sum(t.column("id")).as_py() == rows * (rows - 1) // 2, engine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engines", default="inlet_parquet,inlet_delta,deltalake,pyarrow")
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    engines = a.engines.split(",")
    results: dict[str, list[dict]] = {e: [] for e in engines}
    for run in range(a.runs):
        for e in engines:
            out = Path(tempfile.mkdtemp(prefix=f"pywrite-{e}-"))
            p = subprocess.run([a.python, "-c", CHILD, e, str(out), str(a.rows)], capture_output=True, text=True)
            if p.returncode != 0:
                print(p.stderr[-3000:], file=sys.stderr)
                return 1
            r = json.loads(p.stdout.strip().splitlines()[-1])
            check(out, e, a.rows)
            shutil.rmtree(out)
            results[e].append(r)
            print(f"run {run + 1} {e:14} {r['seconds']:7.2f} s  python {r['python_mb']:5} MB  "
                  f"inlet {r['child_mb']:5} MB", file=sys.stderr)
    print(f"\n{a.rows:,} rows, median of {a.runs} runs\n")
    print("| engine | seconds | rows/s | peak RSS python | peak RSS inlet | together |")
    print("|---|---|---|---|---|---|")
    for e in engines:
        secs = statistics.median(r["seconds"] for r in results[e])
        py = statistics.median(r["python_mb"] for r in results[e])
        ch = statistics.median(r["child_mb"] for r in results[e]) if e.startswith("inlet") else 0
        print(f"| {e} | {secs:.2f} | {a.rows / secs:,.0f} | {py:.0f} MB | {ch:.0f} MB |"
              f" {py + ch:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
