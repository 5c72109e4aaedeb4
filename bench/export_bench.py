#!/usr/bin/env python3
"""Benchmark `inlet export` against DuckDB's postgres extension, ConnectorX, pg2parquet and the
binary COPY floor, on TPC-H SF1 lineitem (6,001,215 rows) and a 1M-row table of mixed types
(tpch.mixed: uuid, jsonb, numeric, text[], timestamptz) in the test PostgreSQL. A script, not a
test; run it through `bash bench/export.sh` (which sets up the venv, the server and the data).

Engines, interleaved, each its own process timed with `/usr/bin/time -v`:
  inlet        INLET_BIN export --source URL -i tpch.lineitem --output-dir OUT  (Parquet, snappy)
  inlet_p1     the same with --parallel 1 (one connection per table)
  inlet_tls    the same over TLS (sslmode=require)
  inlet_delta  the same into a Delta table (--format delta)
  (--inlet-args "..." adds arguments to every inlet engine, e.g. "--max-file-size 16MB")
  duckdb       python -c: LOAD postgres_scanner (file path); SET threads = cores;
               ATTACH URL (TYPE postgres, READ_ONLY); COPY (SELECT * FROM pg.tpch.lineitem)
               TO OUT (FORMAT parquet, COMPRESSION snappy)
  connectorx   python -c: cx.read_sql(URL, 'SELECT * FROM t', return_type='arrow',
               partition_on=<first column>, partition_num=cores); pq.write_table(snappy)
  pg2parquet   pg2parquet export ... -t t -o OUT --compression snappy --decimal-... (when installed:
               ~/.cache/inlet/bench-tools/bin/pg2parquet, `cargo install pg2parquet`)
  copy_x1      psql -c 'COPY t TO STDOUT (FORMAT binary)' > /dev/null
  copy_x2      the same twice at once, on the ctid halves of the table (the limit on 2 cores)
Rows are read back with pyarrow. "machine CPU" is the CPU time of the whole machine during the run
(/proc/stat): the client's and PostgreSQL's together, which share the cores. While each engine runs, pg_stat_activity is sampled every
0.1 s: "longest query" is the longest a transaction of the engine stayed open on the source
(what holds back vacuum on a busy primary).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

GNU_TIME = "/usr/bin/time"


def machine_cpu():
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def timed(cmd, env=None, shell=False):
    """Runs cmd under GNU time; returns (wall s, peak RSS MiB, cpu s, returncode, stderr, machine cpu s)."""
    full = [GNU_TIME, "-v"] + (["bash", "-c", cmd] if shell else cmd)
    t0, m0 = time.time(), machine_cpu()
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    wall, machine = time.time() - t0, machine_cpu() - m0
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", p.stderr).group(1))
    sys_ = float(re.search(r"System time \(seconds\): ([\d.]+)", p.stderr).group(1))
    return wall, rss, user + sys_, p.returncode, p.stderr, machine


class Harm:
    """Samples the longest open transaction of other sessions (one psql reading queries)."""

    QUERY = ("SELECT coalesce(max(extract(epoch FROM now() - xact_start)), 0) FROM pg_stat_activity "
             "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
             "AND xact_start IS NOT NULL;\n")

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", url, "-XAtq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.longest, self.on = 0.0, False
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            self.p.stdin.write(self.QUERY)
            v = float(self.p.stdout.readline() or 0)
            if self.on:
                self.longest = max(self.longest, v)
            time.sleep(0.1)

    def start(self):
        self.longest, self.on = 0.0, True

    def stop(self):
        self.on = False
        return self.longest


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
    ap.add_argument("--tables", default="tpch.lineitem,tpch.mixed")
    ap.add_argument("--inlet-args", default="", help="extra arguments for the inlet engines")
    ap.add_argument("--pg2parquet", default=os.path.expanduser("~/.cache/inlet/bench-tools/bin/pg2parquet"))
    args = ap.parse_args()
    harm = Harm(args.url)
    ratios = []
    for table in args.tables.split(","):
        ratios.append((table, bench_table(args, table, harm)))
    for table, r in ratios:
        if r:
            print(f"{table}: inlet / DuckDB rows/s {r:.2f}x")


def psql_value(url, sql):
    return subprocess.run(["psql", url, "-XAtc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


def bench_table(args, table, harm):
    cores = os.cpu_count() or 2
    work = tempfile.mkdtemp(prefix="inlet-export-bench-")
    pages = int(psql_value(args.url, f"SELECT pg_relation_size('{table}') / 8192"))
    first = psql_value(args.url, f"SELECT attname FROM pg_attribute WHERE attrelid = '{table}'::regclass "
                                 "AND attnum = 1")
    half = pages // 2
    dsn = args.url
    u = urlsplit(dsn)
    schema, name = table.split(".")
    env = {**os.environ, "PGPASSWORD": u.password or ""}
    tls_dsn = dsn.replace("sslmode=disable", "sslmode=require")

    def inlet(binary, url, out, *extra):
        return [binary, "export", "--source", url, "-i", table, "--output-dir", out, "--run-log", "none",
                *extra, *args.inlet_args.split()]

    engines = {
        "inlet": lambda out: inlet(args.inlet, dsn, out),
        "inlet_p1": lambda out: inlet(args.inlet, dsn, out, "--parallel", "1"),
        "inlet_tls": lambda out: inlet(args.inlet, tls_dsn, out),
        "inlet_delta": lambda out: inlet(args.inlet, dsn, out, "--format", "delta"),
        "inlet_prev": lambda out: inlet(args.inlet_prev, dsn, out),
        "duckdb": lambda out: [sys.executable, "-c", (
            "import duckdb,sys; c=duckdb.connect(); "
            f"c.execute(\"LOAD '{args.scanner}'\"); c.execute('SET threads={cores}'); "
            f"c.execute(\"ATTACH '{dsn}' AS pg (TYPE postgres, READ_ONLY)\"); "
            f"c.execute(\"COPY (SELECT * FROM pg.{table}) TO '{out}/out.parquet' "
            "(FORMAT parquet, COMPRESSION snappy)\")")],
        "connectorx": lambda out: [sys.executable, "-c", (
            "import connectorx as cx, pyarrow.parquet as pq; "
            f"t = cx.read_sql('{dsn}', 'SELECT * FROM {table}', return_type='arrow', "
            f"partition_on='{first}', partition_num={cores}); "
            f"pq.write_table(t, '{out}/out.parquet', compression='snappy')")],
        "pg2parquet": lambda out: [args.pg2parquet, "export", "--host", u.hostname, "--port", str(u.port),
                                   "--dbname", u.path[1:], "--user", u.username,
                                   "--query", f"SELECT * FROM {table}", "-o", f"{out}/out.parquet",
                                   "--compression", "snappy", "--sslmode", "disable", "--quiet",
                                   "--numeric-handling", "decimal", "--decimal-precision", "38",
                                   "--decimal-scale", "18"],
        "copy_x1": lambda out: f"psql '{dsn}' -XAqc 'COPY {table} TO STDOUT (FORMAT binary)' > /dev/null",
        "copy_x2": lambda out: (
            f"psql '{dsn}' -XAqc \"COPY (SELECT * FROM {table} WHERE ctid < '({half},0)'::tid) TO STDOUT (FORMAT binary)\" > /dev/null & "
            f"psql '{dsn}' -XAqc \"COPY (SELECT * FROM {table} WHERE ctid >= '({half},0)'::tid) TO STDOUT (FORMAT binary)\" > /dev/null; wait"),
    }
    have = {"inlet_prev": bool(args.inlet_prev), "pg2parquet": os.access(args.pg2parquet, os.X_OK)}
    chosen = [e for e in args.engines.split(",") if e in engines and have.get(e, True)]
    results = {e: [] for e in chosen}
    for run in range(args.runs):
        for e in chosen:
            out = os.path.join(work, f"{e}-{run}")
            os.makedirs(out)
            cmd = engines[e](out)
            harm.start()
            wall, rss, cpu, rc, err, machine = timed(cmd, shell=isinstance(cmd, str), env=env)
            held = harm.stop()
            if rc != 0:
                print(f"{table} {e} run {run + 1} failed (exit {rc}):\n{err[-2000:]}", file=sys.stderr)
                continue
            rows, size = (None, None) if e.startswith("copy") else rows_of(out)
            results[e].append((wall, rss, cpu, rows, size, held, machine))
            print(f"{table} {e:10} run {run + 1}/{args.runs}: {wall:6.2f} s, {rss:5.0f} MiB, cpu {cpu:5.2f} s, "
                  f"machine cpu {machine:5.2f} s, "
                  f"longest query {held:.1f} s"
                  + (f", rows {rows}, {size / 1e6:.1f} MB" if rows is not None else ""), file=sys.stderr)
            shutil.rmtree(out, ignore_errors=True)
    total = int(psql_value(args.url, f"SELECT count(*) FROM {table}"))
    print(f"\n{table}: {total} rows, {pages} pages; {cores} cores; runs interleaved\n")
    print("| engine | runs (wall s) | median wall s | rows/s | peak RSS MiB | CPU s | machine CPU s | longest query s | parquet MB | rows read back |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    med = {}
    for e in chosen:
        r = results[e]
        if not r:
            print(f"| {e} | failed | | | | | | | | |")
            continue
        w = statistics.median(x[0] for x in r)
        med[e] = w
        size = r[-1][4]
        print(f"| {e} | {', '.join(f'{x[0]:.2f}' for x in r)} | {w:.2f} | {total / w:,.0f} | "
              f"{max(x[1] for x in r):.0f} | {statistics.median(x[2] for x in r):.2f} | "
              f"{statistics.median(x[6] for x in r):.2f} | {max(x[5] for x in r):.1f} | "
              f"{'' if size is None else f'{size / 1e6:.1f}'} | {'' if r[-1][3] is None else r[-1][3]} |")
    shutil.rmtree(work, ignore_errors=True)
    if "inlet" in med and "duckdb" in med:
        return med["duckdb"] / med["inlet"]
    return None


if __name__ == "__main__":
    main()
