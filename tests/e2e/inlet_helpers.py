"""Helpers shared by the end-to-end tests: Singer message builders, output discovery and
readers (pyarrow and DuckDB). Fixtures live in conftest.py (inlet_bin, dest, run_inlet, ...)."""

from __future__ import annotations

import datetime as dt
import glob
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

GEN_SINGER = Path(os.environ.get("INLET_GEN_SINGER", "/work/shared/bench/gen_singer.py"))
_BENCH_GEN = Path(__file__).resolve().parents[2] / "bench" / "gen_singer.py"

UTC = dt.timezone.utc

# Names inlet's writers may leave only transiently (object_store local staging files end in
# `#<n>`; anything hidden or *.tmp is a temp file too).
_TEMP_RE = re.compile(r"(#\d*$|\.tmp|^\.|\.part$|\.inprogress)")


def clean_env(extra: dict | None = None) -> dict:
    """The runner's environment without INLET_* / TARGET_INLET_* (they would override configs),
    with cloud metadata lookups disabled, plus `extra` (same as conftest's child_env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INLET_", "TARGET_INLET_"))}
    env.update({"AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "*"})
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


# ---------------------------------------------------------------- Singer messages

def j(v) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def schema_msg(stream: str, schema: dict, key_properties=("id",), **extra) -> str:
    m = {"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": list(key_properties)}
    m.update(extra)
    return j(m)


def record_msg(stream: str, record: dict, time_extracted: str | None = None) -> str:
    m = {"type": "RECORD", "stream": stream, "record": record}
    if time_extracted is not None:
        m["time_extracted"] = time_extracted
    return j(m)


def state_msg(value) -> str:
    return j({"type": "STATE", "value": value})


def lines(*ls) -> bytes:
    """Joins message lines (str or bytes) with newlines, final newline included."""
    out = []
    for line in ls:
        out.append(line.encode("utf-8") if isinstance(line, str) else line)
    return b"\n".join(out) + b"\n"


def gen_singer(*args: str) -> bytes:
    """Runs the shared deterministic generator and returns its output."""
    gen = GEN_SINGER if GEN_SINGER.is_file() else _BENCH_GEN
    return subprocess.run([sys.executable, str(gen), *args], check=True, capture_output=True).stdout


def parse_singer(data: bytes):
    """(schemas, records per stream, states) of a Singer input, as Python values."""
    schemas, records, states = {}, {}, []
    for line in data.splitlines():
        if not line.strip():
            continue
        m = json.loads(line)
        t = m["type"].upper()
        if t == "SCHEMA":
            schemas[m["stream"]] = m
        elif t == "RECORD":
            records.setdefault(m["stream"], []).append(m)
        elif t == "STATE":
            states.append(m["value"])
    return schemas, records, states


# ---------------------------------------------------------------- outputs

def all_files(dest: Path) -> list[Path]:
    return sorted(p for p in Path(dest).rglob("*") if p.is_file())


def data_files(dest: Path, under: str = "", ext: str | None = None) -> list[Path]:
    """Every output file under dest/under, excluding quarantine files."""
    root = Path(dest) / under
    out = []
    for p in all_files(root) if root.exists() else []:
        rel = p.relative_to(dest).as_posix()
        if rel.startswith("_rejected/") or rel.startswith("_inlet_check/"):
            continue
        if ext is not None and not p.name.endswith("." + ext):
            continue
        out.append(p)
    return out


def rel(dest: Path, p: Path) -> str:
    return Path(p).relative_to(dest).as_posix()


def temp_files(dest: Path) -> list[str]:
    return [rel(dest, p) for p in all_files(dest) if _TEMP_RE.search(p.name)]


def assert_no_temp_files(dest: Path):
    left = temp_files(dest)
    assert not left, f"temporary/partial files left in the destination: {left}"


def read_parquet_files(files) -> pa.Table:
    files = list(files)
    assert files, "no parquet files were written"
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def read_stream_parquet(dest: Path, table_dir: str) -> pa.Table:
    return read_parquet_files(data_files(dest, table_dir, "parquet"))


def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con


def duck_rows(sql: str, params=None):
    con = duck()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def duck_glob(dest: Path, table_dir: str, ext: str) -> str:
    return (Path(dest) / table_dir / "**" / f"*.{ext}").as_posix()


def stdout_states(proc: subprocess.CompletedProcess) -> list:
    """Every stdout line parsed as JSON (stdout must hold nothing but STATE values)."""
    out = proc.stdout.decode("utf-8") if isinstance(proc.stdout, bytes) else proc.stdout
    vals = []
    for line in out.splitlines():
        assert line.strip(), f"blank line on stdout: {out!r}"
        vals.append(json.loads(line))
    return vals


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def err_text(proc: subprocess.CompletedProcess) -> str:
    """stderr as text, ANSI colour codes removed (those are checked separately)."""
    e = proc.stderr
    e = e.decode("utf-8", "replace") if isinstance(e, bytes) else e
    return _ANSI.sub("", e)


def explain(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout.decode("utf-8", "replace") if isinstance(proc.stdout, bytes) else proc.stdout
    return f"exit {proc.returncode}\n--- stdout\n{out[-3000:]}\n--- stderr\n{err_text(proc)[-6000:]}"


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, explain(proc)
    return proc


def ts(s: str) -> dt.datetime:
    """Parses an RFC 3339 timestamp to an aware UTC datetime."""
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def read_jsonl_file(p: Path) -> list[dict]:
    raw = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
    return [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]


def read_csv_file(p: Path, delimiter: str = ",") -> pa.Table:
    # every column as text: the test decides what each cell must say
    with open(p, "rb") as f:
        head = gzip.decompress(f.read()) if p.name.endswith(".gz") else None
    src = pa.BufferReader(head) if head is not None else str(p)
    first = (head if head is not None else Path(p).read_bytes()).split(b"\n", 1)[0].decode()
    names = next(iter(__import__("csv").reader([first], delimiter=delimiter)))
    return pacsv.read_csv(
        src,
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
