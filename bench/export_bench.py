#!/usr/bin/env python3
"""Benchmark `inlet export` against DuckDB's postgres extension and the binary COPY floor,
on TPC-H SF1 lineitem (6,001,215 rows) in the test PostgreSQL. A script, not a test; run it
through `bash bench/export.sh` (which sets up the venv, the server and the data).

Engines, interleaved, each its own process timed with `/usr/bin/time -v`:
  inlet        INLET_BIN export --source URL -i tpch.lineitem --output-dir OUT  (Parquet, snappy)
  duckdb       python -c: LOAD postgres_scanner (file path); SET threads = cores;
               ATTACH URL (TYPE postgres, READ_ONLY); COPY (SELECT * FROM pg.tpch.lineitem)
               TO OUT (FORMAT parquet, COMPRESSION snappy)
  copy_x1      psql -c 'COPY tpch.lineitem TO STDOUT (FORMAT binary)' > /dev/null
  copy_x2      the same twice at once, on the ctid halves of the table (the limit on 2 cores)
Rows are read back with pyarrow for inlet and DuckDB.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

GNU_TIME = "/usr/bin/time"


def timed(cmd, env=None, shell=False):
    """Runs cmd under GNU time; returns (wall s, peak RSS MiB, cpu s, returncode, stderr)."""
    full = [GNU_TIME, "-v"] + (["bash", "-c", cmd] if shell else cmd)
    t0 = time.time()
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", p.stderr).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", p.stderr).group(1))
    return wall, rss, user + sys_, p.returncode, p.stderr


def rows_of(folder):
    import pyarrow.parquet as pq
    files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs if f.endswith(".parquet")]
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files), sum(os.path.getsize(f) for f in files)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="postgresql:// URL of the database holding tpch.lineitem")
    ap.add_argument("--inlet", required=True)
    ap.add_argument("--inlet-prev", help="a second inlet binary (engine inlet_prev), to compare builds")
    ap.add_argument("--scanner", required=True, help="path of postgres_scanner.duckdb_extension")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--engines", default="inlet,duckdb,copy_x1,copy_x2")
    ap.add_argument("--table", default="tpch.lineitem")
    args = ap.parse_args()
    cores = os.cpu_count() or 2
    work = tempfile.mkdtemp(prefix="inlet-export-bench-")
    pages = int(subprocess.run(["psql", args.url, "-XAtc",
                                f"SELECT pg_relation_size('{args.table}') / 8192"],
                               capture_output=True, text=True, check=True).stdout)
    half = pages // 2
    dsn = args.url
    engines = {
        "inlet": lambda out: [args.inlet, "export", "--source", args.url, "-i", args.table,
                              "--output-dir", out],
        "inlet_prev": lambda out: [args.inlet_prev, "export", "--source", args.url, "-i", args.table,
                                   "--output-dir", out],
        "duckdb": lambda out: [sys.executable, "-c", (
            "import duckdb,sys; c=duckdb.connect(); "
            f"c.execute(\"LOAD '{args.scanner}'\"); c.execute('SET threads={cores}'); "
            f"c.execute(\"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)\"); "
            f"c.execute(\"COPY (SELECT * FROM pg.{args.table}) TO '{out}/out.parquet' "
            "(FORMAT parquet, COMPRESSION snappy)\")")],
        "copy_x1": lambda out: f"psql '{dsn}' -XAqc 'COPY {args.table} TO STDOUT (FORMAT binary)' > /dev/null",
        "copy_x2": lambda out: (
            f"psql '{dsn}' -XAqc \"COPY (SELECT * FROM {args.table} WHERE ctid < '({half},0)'::tid) TO STDOUT (FORMAT binary)\" > /dev/null & "
            f"psql '{dsn}' -XAqc \"COPY (SELECT * FROM {args.table} WHERE ctid >= '({half},0)'::tid) TO STDOUT (FORMAT binary)\" > /dev/null; wait"),
    }
    chosen = [e for e in args.engines.split(",") if e in engines and (e != "inlet_prev" or args.inlet_prev)]
    results = {e: [] for e in chosen}
    for run in range(args.runs):
        for e in chosen:
            out = os.path.join(work, f"{e}-{run}")
            os.makedirs(out)
            cmd = engines[e](out)
            wall, rss, cpu, rc, err = timed(cmd, shell=isinstance(cmd, str))
            if rc != 0:
                print(f"{e} run {run + 1} failed (exit {rc}):\n{err[-2000:]}", file=sys.stderr)
                continue
            rows, size = rows_of(out) if e in ("inlet", "inlet_prev", "duckdb") else (None, None)
            results[e].append((wall, rss, cpu, rows, size))
            print(f"{e:8} run {run + 1}/{args.runs}: {wall:6.2f} s, {rss:5.0f} MiB, cpu {cpu:5.2f} s"
                  + (f", rows {rows}, {size / 1e6:.1f} MB" if rows is not None else ""), file=sys.stderr)
            shutil.rmtree(out, ignore_errors=True)
    total = int(subprocess.run(["psql", args.url, "-XAtc", f"SELECT count(*) FROM {args.table}"],
                               capture_output=True, text=True, check=True).stdout)
    print(f"\n{args.table}: {total} rows, {pages} pages; {cores} cores; runs interleaved\n")
    print("| engine | runs (wall s) | median wall s | rows/s | peak RSS MiB | CPU s | parquet MB | rows read back |")
    print("|---|---|---|---|---|---|---|---|")
    med = {}
    for e in chosen:
        r = results[e]
        if not r:
            print(f"| {e} | failed | | | | | | |")
            continue
        w = statistics.median(x[0] for x in r)
        med[e] = w
        size = r[-1][4]
        print(f"| {e} | {', '.join(f'{x[0]:.2f}' for x in r)} | {w:.2f} | {total / w:,.0f} | "
              f"{max(x[1] for x in r):.0f} | {statistics.median(x[2] for x in r):.2f} | "
              f"{'' if size is None else f'{size / 1e6:.1f}'} | {'' if r[-1][3] is None else r[-1][3]} |")
    if "inlet" in med and "duckdb" in med:
        print(f"\ninlet / DuckDB rows/s: {med['duckdb'] / med['inlet']:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
