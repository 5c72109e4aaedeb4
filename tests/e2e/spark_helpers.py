"""Reading Parquet with PySpark (Spark 4.0, local[2], bound to 127.0.0.1), which lives in its own
venv (scripts/test-env.sh: pyspark)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

SPARK_READER = r"""
import json, os, sys
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[2]").appName("inlet-test")
         .config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
         .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
         .getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
out = {}
for path in sys.argv[1:]:
    try:
        df = spark.read.parquet(path)
        out[path] = {"schema": {f.name: f.dataType.simpleString() for f in df.schema.fields},
                     "rows": [r.asDict(recursive=True) for r in df.collect()]}
    except Exception as e:
        out[path] = {"error": str(e)[:2000]}
print(json.dumps(out, default=str))
spark.stop()
"""


def spark_read(*paths) -> dict:
    """Per path: {"schema": {column: Spark type}, "rows": [...]} or {"error": message}."""
    py = os.environ.get("INLET_PYSPARK_PYTHON") or os.path.expanduser(
        "~/.cache/inlet/taps/pyspark/bin/python")
    if not os.access(py, os.X_OK):
        pytest.fail(f"{py} missing: run scripts/test-env.sh (venv pyspark)")
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": py}
    p = subprocess.run([py, "-c", SPARK_READER, *map(str, paths)], capture_output=True, text=True,
                       timeout=600, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])
