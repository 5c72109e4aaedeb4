"""Reading Delta tables with DuckDB's delta extension, which lives in its own venv
(scripts/test-env.sh: duckdb-delta)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

DUCK_READER = r"""
import duckdb, duckdb_extension_delta, glob, json, os, sys
ext = glob.glob(os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions", "*",
                             "delta.duckdb_extension"))[0]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
path, sql = sys.argv[1], sys.argv[2]
rel = f"delta_scan('{path}')"
cur = con.execute(sql.replace("TABLE", rel))
cols = [d[0] for d in cur.description]
print(json.dumps([dict(zip(cols, r)) for r in cur.fetchall()], default=str))
"""


def duck(path: Path, sql: str) -> list[dict]:
    """Runs `sql` (with TABLE standing for the Delta table) in DuckDB with the delta extension."""
    py = os.environ.get("INLET_DUCKDB_DELTA_PYTHON") or os.path.expanduser(
        "~/.cache/inlet/taps/duckdb-delta/bin/python")
    if not os.access(py, os.X_OK):
        pytest.fail(f"{py} missing: run scripts/test-env.sh (venv duckdb-delta)")
    p = subprocess.run([py, "-c", DUCK_READER, str(path), sql], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return json.loads(p.stdout)
