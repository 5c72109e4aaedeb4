"""Many `inlet load` processes appending to one Delta table at once (issue 15).

For each backend and each writer count N, N processes each load RECORDS records (the first
RECORDS of a Singer dataset, one commit per --batch rows) into the same table; the script
reports wall time, records/s over all writers, commits and the conflict retries inlet logged,
then checks the table with the deltalake package: every commit present, every file distinct,
every record there.

    bash scripts/servers.sh start; eval "$(scripts/servers.sh env)"
    python bench/delta_writers.py [--backends moto,azurite] [--writers 1,2,4,8,16]
                                  [--records 50000] [--batch 10000]

Needs a release build (INLET_BIN, default $CARGO_TARGET_DIR/release/inlet), the test venv and
the servers of scripts/servers.sh; datasets come from bench/run.sh.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from storage_helpers import backend_config, fetch  # noqa: E402


def config(backend: str, prefix: str, batch: int) -> dict:
    cfg = {**backend_config(backend, prefix), "format": "delta", "table": "t",
           "batch_max_rows": batch}
    if backend == "azurite":
        del cfg["azure_endpoint"]
        cfg["azure_use_emulator"] = True
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default="moto,azurite")
    ap.add_argument("--writers", default="1,2,4,8,16")
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--dataset", default="flat_1m")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/inlet/target"))
    binary = os.environ.get("INLET_BIN", f"{target}/release/inlet")
    data = Path(os.environ.get("INLET_BENCH_DATA", os.path.expanduser("~/.cache/inlet/bench-data")))
    src = data / f"{a.dataset}.seed42.singer.jsonl"
    work = Path(tempfile.mkdtemp(prefix="inlet-writers-"))
    # the first `records` records (with the SCHEMA before them) and a final STATE
    part = work / "part.jsonl"
    with open(src) as f, open(part, "w") as out:
        n = 0
        for line in f:
            if '"type":"RECORD"' in line:
                if n == a.records:
                    break
                n += 1
            out.write(line)
        out.write(json.dumps({"type": "STATE", "value": {"done": True}}) + "\n")
    env = {**os.environ, "INLET_LOG": "info,inlet::table::delta=debug", "AWS_EC2_METADATA_DISABLED": "true"}
    if os.environ.get("INLET_AZURITE_ENDPOINT"):
        # emulator mode (see README): where Azurite listens
        env["AZURITE_BLOB_STORAGE_URL"] = os.environ["INLET_AZURITE_ENDPOINT"].rsplit("/", 1)[0]
    print(f"{a.records} records per writer, one commit per {a.batch}; load1 "
          f"{open('/proc/loadavg').read().split()[0]}; {os.cpu_count()} cores")
    print("| backend | writers | wall s | records/s (all writers) | commits | redone by delta-rs / rebuilt by inlet |")
    print("|---|---|---|---|---|---|")
    from deltalake import DeltaTable
    for backend in a.backends.split(","):
        for n in map(int, a.writers.split(",")):
            prefix = f"writers-{uuid.uuid4().hex[:8]}"
            cfg = work / f"{prefix}.json"
            cfg.write_text(json.dumps(config(backend, prefix, a.batch)))
            logs = [work / f"{prefix}-{w}.log" for w in range(n)]
            start = time.monotonic()
            procs = [subprocess.Popen([binary, "load", "--config", str(cfg), "--input", str(part)],
                                      stdout=subprocess.DEVNULL, stderr=open(logs[w], "w"), env=env)
                     for w in range(n)]
            codes = [p.wait() for p in procs]
            wall = time.monotonic() - start
            if any(codes):
                sys.exit(f"a writer failed: {logs[codes.index(next(c for c in codes if c))].read_text()[-2000:]}")
            # commits redone at a later version by delta-rs (appends do not conflict), and
            # commits built again by inlet after a real conflict
            import re
            text = [log.read_text() for log in logs]
            later = sum(int(m) for t in text for m in re.findall(r"committed at a later[^\n]*retries=(\d+)", t))
            rebuilt = sum(t.count("concurrent commit; retrying") for t in text)
            retries = f"{later} / {rebuilt}"
            path = fetch(backend, prefix, work / f"mirror-{prefix}") / "t"
            t = DeltaTable(str(path))
            hist = t.history()
            writes = [h for h in hist if h["operation"] == "WRITE"]
            import pyarrow as pa
            adds = pa.table(t.get_add_actions(flatten=True)).to_pylist()
            rows = t.to_pyarrow_dataset().count_rows()
            want_commits = n * -(-a.records // a.batch)
            assert len(writes) == want_commits, (len(writes), want_commits)
            assert len({x["path"] for x in adds}) == len(adds) == want_commits
            assert rows == n * a.records, (rows, n * a.records)
            print(f"| {backend} | {n} | {wall:.2f} | {n * a.records / wall:,.0f} | {len(hist)} | {retries} |",
                  flush=True)


if __name__ == "__main__":
    main()
