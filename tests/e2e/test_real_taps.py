"""inlet against the output of real Singer taps.

Fixtures (tests/fixtures/taps/*.singer.jsonl, made by scripts/capture-tap-fixtures.sh from
tests/fixtures/pg_seed.sql) are piped into `inlet load`; what it wrote is read back with pyarrow
AND DuckDB. The types asserted are the ones the tap's SCHEMA message implies (README.md (configuration reference)
"Types"). Live tests run the taps against PostgreSQL (INLET_PG_URL) and under Meltano; they fail,
never skip, when their environment is missing (scripts/test-env.sh, scripts/pg.sh).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
TAPS = REPO / "tests" / "fixtures" / "taps"
SEED = REPO / "tests" / "fixtures" / "pg_seed.sql"
UTC = dt.timezone.utc
FIXTURES = sorted(p.name for p in TAPS.glob("*.singer.jsonl"))

# Config for the type checks: only the tap's own columns.
BASE = {"add_metadata_columns": False}


# --------------------------------------------------------------------------------- helpers

def messages(data: bytes | str | Path) -> list[dict]:
    if isinstance(data, Path):
        data = data.read_bytes()
    if isinstance(data, bytes):
        data = data.decode()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def record_counts(msgs: list[dict]) -> Counter:
    return Counter(m["stream"] for m in msgs if m["type"] == "RECORD")


def states(msgs: list[dict]) -> list:
    return [m["value"] for m in msgs if m["type"] == "STATE"]


def last_schema(msgs: list[dict], stream: str) -> dict:
    return [m for m in msgs if m["type"] == "SCHEMA" and m["stream"] == stream][-1]["schema"]


def parquet_files(dest: Path, stream: str) -> list[Path]:
    """Data files of one stream, wherever the layout put them (a path part names the stream)."""
    files = sorted(p for p in dest.rglob("*.parquet")
                   if stream in p.relative_to(dest).parts and "_rejected" not in p.parts)
    assert files, f"no parquet file for stream {stream!r} under {dest}: " \
                  f"{sorted(str(p.relative_to(dest)) for p in dest.rglob('*'))}"
    return files


def read_arrow(files: list[Path]) -> pa.Table:
    tables = [pq.read_table(f) for f in files]
    for t, f in zip(tables[1:], files[1:]):
        assert t.schema == tables[0].schema, f"{f} has a different schema than {files[0]}"
    return pa.concat_tables(tables)


def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    return con


def duck_src(files: list[Path]) -> str:
    return "read_parquet([" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "])"


def rows_by(table: pa.Table, key: str = "id") -> dict:
    return {r[key]: r for r in table.to_pylist()}


def is_text(t: pa.DataType) -> bool:
    """JSON text column: a string (or Arrow's json extension over a string)."""
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_list_of(t: pa.DataType, item: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and t.value_type == item


def is_list_of_text(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_text(t.value_type)


TS_UTC = pa.timestamp("us", tz="UTC")


def load(run_inlet, dest: Path, fixture: str, **config) -> tuple[list[dict], list[dict]]:
    """Pipe a fixture into inlet; return (input messages, stdout state values)."""
    data = (TAPS / fixture).read_bytes()
    proc = run_inlet({"destination": str(dest), **BASE, **config}, data)
    assert proc.returncode == 0, \
        f"inlet exited {proc.returncode} on {fixture}\nstderr:\n{proc.stderr.decode()[-4000:]}"
    out = [json.loads(line) for line in proc.stdout.decode().splitlines() if line.strip()]
    return messages(data), out


# --------------------------------------------------------------------------------- every fixture

@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixture_loads_every_record_once(fixture, run_inlet, dest):
    msgs, out = load(run_inlet, dest, fixture)
    # stdout: only STATE values, in input order, ending with the input's last STATE.
    ins = states(msgs)
    assert out, "inlet printed no state"
    assert out[-1] == ins[-1], "the last STATE must be emitted at the end"
    it = iter(ins)
    assert all(any(o == i for i in it) for o in out), "stdout holds a value that is not an input STATE (or out of order)"

    con = duck()
    for stream, n in record_counts(msgs).items():
        files = parquet_files(dest, stream)
        table = read_arrow(files)
        assert table.num_rows == n, f"{stream}: {table.num_rows} rows in parquet, {n} RECORD messages"
        assert con.execute(f"SELECT count(*) FROM {duck_src(files)}").fetchone()[0] == n
        props = set(last_schema(msgs, stream)["properties"])
        assert set(table.column_names) == props, f"{stream}: columns differ from SCHEMA"


def test_metadata_columns_by_default(run_inlet, dest):
    data = (TAPS / "tap-postgres-meltanolabs-full_table.singer.jsonl").read_bytes()
    proc = run_inlet({"destination": str(dest)}, data)
    assert proc.returncode == 0, proc.stderr.decode()[-4000:]
    t = read_arrow(parquet_files(dest, "public-customers"))
    for col in ("_inlet_created_at", "_inlet_updated_at", "_sdc_extracted_at"):
        assert t.schema.field(col).type == TS_UTC, col
    # _sdc_extracted_at comes from each RECORD's time_extracted
    extracted = {m["record"]["id"]: m["time_extracted"] for m in messages(data)
                 if m["type"] == "RECORD" and m["stream"] == "public-customers"}
    for r in t.to_pylist():
        assert r["_sdc_extracted_at"] == dt.datetime.fromisoformat(extracted[r["id"]])


# --------------------------------------------------------------------------------- pipelinewise

def test_pipelinewise_types_and_values(run_inlet, dest):
    load(run_inlet, dest, "tap-postgres-pipelinewise-full_table.singer.jsonl")

    # public-events: 1000 generated rows
    files = parquet_files(dest, "public-events")
    t = read_arrow(files)
    s = t.schema
    assert s.field("id").type == pa.int64()
    assert s.field("big").type == pa.int64()
    # numeric(10,2): {"type": ["null","number"], "multipleOf": 0.01, ...}
    assert pa.types.is_decimal(s.field("amount").type) and s.field("amount").type.scale == 2
    assert s.field("r").type == pa.float64() and s.field("d").type == pa.float64()
    assert s.field("flag").type == pa.bool_()
    assert is_text(s.field("note").type) and is_text(s.field("code").type)
    # pipelinewise types a date column as format date-time (not date)
    for c in ("day", "ts", "tstz", "updated_at"):
        assert s.field(c).type == TS_UTC, c
    assert s.field("t").type == pa.time64("us")
    # json/jsonb: {"type": ["null","object","array"]} without properties -> JSON text
    assert is_text(s.field("doc").type) and is_text(s.field("docb").type)
    # int[] / text[]: items are $ref to recursive ["null","integer","array"] definitions
    assert is_list_of(s.field("ints").type, pa.int64()), s.field("ints").type
    assert is_list_of(s.field("tags").type, pa.string()) or is_list_of(s.field("tags").type, pa.large_string())
    assert is_text(s.field("uid").type)
    # numeric without precision: multipleOf 1e-38, maximum 1e62 -> does not fit Decimal128;
    # any of float64 or a decimal that keeps the value is acceptable here.
    rt = s.field("ratio").type
    assert rt == pa.float64() or pa.types.is_decimal(rt), rt

    rows = rows_by(t)
    flags = [r["flag"] for r in rows.values()]
    assert flags.count(False) == sum(1 for i in range(1, 1001) if i % 7 != 5 and i % 2 == 1)
    assert flags.count(None) == sum(1 for i in range(1, 1001) if i % 7 == 5)
    r2 = rows[2]
    assert r2["amount"] == Decimal("24.68")
    assert r2["big"] == 2000000014
    assert r2["flag"] is True
    assert r2["day"] == dt.datetime(2024, 1, 3, tzinfo=UTC)
    assert r2["t"] == dt.time(0, 2, 46)
    assert r2["ints"] == [2, 3, 4] and r2["tags"] == ["t2", "u"]
    assert r2["uid"] is None and r2["ts"] is None
    assert json.loads(r2["doc"]) == {"i": 2, "even": True, "tags": ["a", 2]}
    assert json.loads(r2["docb"]) == {"k": "v2", "n": {"x": 3.0}}
    r1 = rows[1]
    assert r1["flag"] is False and r1["amount"] is None
    assert r1["ts"] == dt.datetime(2024, 1, 1, 1, 1, 1, 1, tzinfo=UTC)
    assert r1["tstz"] == dt.datetime(2024, 1, 1, 0, 37, 0, 500000, tzinfo=UTC)
    assert r1["note"] == "note #1\nline 2 \"quoted\", it's ok"
    assert abs(float(r1["ratio"]) - 1 / 7) < 1e-12
    assert rows[7]["ints"] == []          # pipelinewise sends SQL NULL arrays as []

    con = duck()
    src = duck_src(files)
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})").fetchall())
    assert types["flag"] == "BOOLEAN"
    assert types["tstz"] == "TIMESTAMP WITH TIME ZONE"
    assert types["amount"].startswith("DECIMAL(") and types["amount"].endswith(",2)")
    assert types["ints"] == "BIGINT[]"
    assert types["t"] == "TIME"
    assert types["doc"] in ("VARCHAR", "JSON")
    assert con.execute(f"SELECT count(*) FROM {src} WHERE NOT flag").fetchone()[0] == flags.count(False)
    assert con.execute(f"SELECT amount, epoch_us(tstz), ints[2] FROM {src} WHERE id = 2").fetchone() == \
        (Decimal("24.68"), int(dt.datetime(2024, 1, 1, 1, 14, 1, tzinfo=UTC).timestamp()) * 1_000_000, 3)

    # public-customers: hand-written edge rows
    t = read_arrow(parquet_files(dest, "public-customers"))
    assert pa.types.is_decimal(t.schema.field("balance").type) and t.schema.field("balance").type.scale == 2
    assert t.schema.field("born").type == TS_UTC
    c = rows_by(t)
    assert set(c) == {1, 2, 3, 4, 5, 9223372036854775807}
    assert c[1]["name"] == "Zoë Ångström 李小龙 🚀"
    assert c[1]["displayName"] == "Zoë"
    assert c[1]["notes"] == "line one\nline two\r\nwith\ttab and \"double\" and 'single' quotes and \\backslash"
    assert c[1]["balance"] == Decimal("1234.50")
    assert c[1]["created_at"] == dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=UTC)
    assert c[1]["wake_at"] == dt.time(23, 59, 59, 999999)
    assert c[1]["tags"] == ["vip", "ünïcode", "comma,inside", 'quote"inside']
    assert json.loads(c[1]["profile"]) == {"plan": "pro", "seats": 5, "nested": {"a": [1, 2, {"b": None}]}}
    assert c[2]["is_active"] is False and c[2]["notes"] == "" and c[2]["balance"] == Decimal("-99999999.99")
    assert c[2]["score"] == -1.5e300 and c[2]["displayName"] is None
    assert c[2]["born"] == dt.datetime(1900, 1, 1, tzinfo=UTC)
    assert c[3]["balance"] is None and c[3]["signup_at"] is None and c[3]["profile"] is None
    assert c[4]["born"] == dt.datetime(9999, 12, 31, tzinfo=UTC)
    assert c[4]["created_at"] == dt.datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
    assert c[4]["signup_at"] == dt.datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert c[4]["tags"] == ["a", None, "c"] and c[4]["lucky_numbers"] == [1, None, 3]
    assert json.loads(c[4]["profile"]) == [1, "two", 3.0, True, None]
    # jsonb holding a JSON string: outside the SCHEMA's ["null","object","array"], sent anyway
    assert json.loads(c[4]["settings"]) == "just a string"
    assert c[5]["score"] == 5e-324
    assert c[5]["lucky_numbers"] == [-2147483648, 2147483647]
    assert json.loads(c[5]["profile"])["big"] == 12345678901234567890
    assert c[9223372036854775807]["signup_at"] == dt.datetime(2024, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------------- meltanolabs

def test_meltanolabs_types_and_values(run_inlet, dest):
    load(run_inlet, dest, "tap-postgres-meltanolabs-full_table.singer.jsonl")
    files = parquet_files(dest, "public-events")
    t = read_arrow(files)
    s = t.schema
    # {"type": ["integer"]} and "required": ["id"] -> not nullable
    assert s.field("id").type == pa.int64() and not s.field("id").nullable
    assert s.field("big").nullable
    # the SDK tap sends numeric(10,2) as a plain {"type": ["number","null"]}: no multipleOf
    assert s.field("amount").type == pa.float64()
    assert s.field("flag").type == pa.bool_()
    assert s.field("day").type == pa.date32()          # format: date
    for c in ("ts", "tstz", "updated_at"):
        assert s.field(c).type == TS_UTC, c
    assert s.field("t").type == pa.time64("us")
    # json/jsonb: {"type": [every type], "additionalProperties": true} -> JSON text
    assert is_text(s.field("doc").type) and is_text(s.field("docb").type)
    assert is_list_of(s.field("ints").type, pa.int64())
    assert is_list_of(s.field("tags").type, pa.string()) or is_list_of(s.field("tags").type, pa.large_string())

    rows = rows_by(t)
    assert rows[2]["amount"] == 24.68
    assert rows[2]["day"] == dt.date(2024, 1, 3)
    assert rows[1]["flag"] is False and rows[2]["flag"] is True
    assert rows[1]["tags"] is None                        # the SDK tap keeps NULL arrays as null
    assert rows[1]["ts"] == dt.datetime(2024, 1, 1, 1, 1, 1, 1, tzinfo=UTC)
    assert json.loads(rows[1]["doc"]) == {"i": 1, "even": False, "tags": ["a", 1]}

    con = duck()
    src = duck_src(files)
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})").fetchall())
    assert types["day"] == "DATE" and types["amount"] == "DOUBLE" and types["ints"] == "BIGINT[]"
    assert con.execute(f"SELECT day, amount FROM {src} WHERE id = 2").fetchone() == (dt.date(2024, 1, 3), 24.68)

    c = rows_by(read_arrow(parquet_files(dest, "public-customers")))
    assert c[1]["born"] == dt.date(1969, 12, 31) and c[4]["born"] == dt.date(9999, 12, 31)
    assert c[2]["is_active"] is False and c[2]["notes"] == ""
    assert c[3]["tags"] is None and c[3]["lucky_numbers"] is None
    # items are declared {"type": ["integer"]} yet PostgreSQL arrays hold NULL elements
    assert c[4]["lucky_numbers"] == [1, None, 3] and c[4]["tags"] == ["a", None, "c"]
    assert json.loads(c[4]["settings"]) == "just a string"
    assert c[4]["created_at"] == dt.datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
    assert c[5]["wake_at"] == dt.time(0, 0, 0, 1)


def test_meltanolabs_resume_state_first(run_inlet, dest):
    """SDK taps send the incoming STATE before any SCHEMA and no later STATE when nothing moved."""
    msgs, out = load(run_inlet, dest, "tap-postgres-meltanolabs-incremental_resume.singer.jsonl")
    assert msgs[0]["type"] == "STATE"
    assert out[-1] == msgs[0]["value"]
    assert read_arrow(parquet_files(dest, "public-events")).num_rows == 1


# --------------------------------------------------------------------------------- tap-jsonl

def test_tap_jsonl_types_and_values(run_inlet, dest):
    load(run_inlet, dest, "tap-jsonl-orders.singer.jsonl")
    files = parquet_files(dest, "orders")
    t = read_arrow(files)
    s = t.schema
    assert s.field("order_id").type == pa.int64()
    # {"type": ["null","object"], "additionalProperties": true}, no properties -> JSON text
    assert is_text(s.field("customer").type)
    # {"type": ["integer","null","number"]}: integer and number together are a number
    assert s.field("total").type == pa.float64()
    assert s.field("paid").type == pa.bool_()
    assert s.field("created_at").type == TS_UTC
    # {"items": {}, "type": ["array","null"]}: a list whose items are JSON text
    assert is_list_of_text(s.field("items").type), s.field("items").type
    rows = rows_by(t, "order_id")
    assert len(rows) == 20
    assert [r["paid"] for r in rows.values()].count(False) == 10
    assert rows[7]["total"] == 26.0 and rows[1]["total"] == 3.75
    assert json.loads(rows[2]["customer"]) == {"id": 102, "name": "李", "vip": False}
    assert [json.loads(x) for x in rows[1]["items"]] == [{"sku": "S1", "qty": 2}]
    assert rows[4]["coupon"] == "SAVE10" and rows[1]["coupon"] is None   # absent field -> null
    assert rows[5]["note"] is None and rows[1]["note"] == "line1\nline2 #1"
    assert rows[3]["created_at"] == dt.datetime(2024, 3, 3, 10, 3, tzinfo=UTC)
    con = duck()
    assert con.execute(f"SELECT count(*) FILTER (WHERE NOT paid), sum(total) FROM {duck_src(files)}").fetchone() == \
        (10, sum(r["total"] for r in rows.values()))


# --------------------------------------------------------------------------------- live: PostgreSQL

@pytest.fixture(scope="module")
def seeded_pg(pg_url):
    """Load tests/fixtures/pg_seed.sql (idempotent, deterministic: drops/recreates its tables)."""
    psql = shutil.which("psql")
    if not psql:
        pytest.fail("psql not found: run scripts/pg.sh start (installs PostgreSQL)")
    p = subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", pg_url, "-f", str(SEED)],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        pytest.fail(f"seeding {pg_url.split('@')[-1]} failed: {p.stderr}")
    return pg_url


def tap_config_pipelinewise(url: str) -> dict:
    from urllib.parse import unquote, urlsplit
    u = urlsplit(url)
    return {"host": u.hostname, "port": u.port or 5432, "user": unquote(u.username or ""),
            "password": unquote(u.password or ""), "dbname": u.path.lstrip("/"),
            "filter_schemas": "public", "default_replication_method": "FULL_TABLE"}


def pipe(tap_cmd: list[str], inlet_cmd: list[str], env: dict, tmp: Path, timeout: float = 300):
    """Run tap | inlet; return (tap rc, tap stdout bytes, inlet rc, inlet stdout, inlet stderr)."""
    tap_err = open(tmp / "tap.stderr", "wb")
    out, err = open(tmp / "inlet.stdout", "wb"), open(tmp / "inlet.stderr", "wb")
    tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=tap_err)
    inlet = subprocess.Popen(inlet_cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, env=env)
    seen = bytearray()

    def copy():
        try:
            for chunk in iter(lambda: tap.stdout.read(1 << 16), b""):
                seen.extend(chunk)
                inlet.stdin.write(chunk)
        except BrokenPipeError:
            pass
        finally:
            try:
                inlet.stdin.close()
            except BrokenPipeError:
                pass

    th = threading.Thread(target=copy, daemon=True)
    th.start()
    try:
        tap_rc = tap.wait(timeout=timeout)
        th.join(timeout=timeout)
        inlet_rc = inlet.wait(timeout=timeout)
    finally:
        for p in (tap, inlet):
            if p.poll() is None:
                p.kill()
        for f in (tap_err, out, err):
            f.close()
    if tap_rc != 0:
        pytest.fail(f"tap exited {tap_rc}: {(tmp / 'tap.stderr').read_text()[-4000:]}")
    return tap_rc, bytes(seen), inlet_rc, (tmp / "inlet.stdout").read_bytes(), (tmp / "inlet.stderr").read_bytes()


def test_live_pipelinewise_into_inlet(seeded_pg, tool, inlet_bin, child_env, tmp_path, dest):
    tap = tool("INLET_TAP_POSTGRES_PIPELINEWISE", "~/.cache/inlet/taps/tap-postgres-pipelinewise/bin/tap-postgres")
    conf = tmp_path / "tap.json"
    conf.write_text(json.dumps(tap_config_pipelinewise(seeded_pg)))
    discovered = subprocess.run([str(tap), "-c", str(conf), "--discover"], capture_output=True, timeout=120)
    assert discovered.returncode == 0, discovered.stderr.decode()[-4000:]
    (tmp_path / "catalog.json").write_bytes(discovered.stdout)
    subprocess.run([sys.executable, str(REPO / "scripts" / "singer_select.py"), str(tmp_path / "catalog.json"),
                    str(tmp_path / "selected.json"), "--method", "INCREMENTAL", "--replication-key", "updated_at",
                    "--streams", "public-events,public-customers"], check=True)
    inlet_conf = tmp_path / "inlet.json"
    inlet_conf.write_text(json.dumps({"destination": str(dest), **BASE}))

    _, tap_out, rc, stdout, stderr = pipe(
        [str(tap), "-c", str(conf), "--properties", str(tmp_path / "selected.json")],
        [str(inlet_bin), "load", "--config", str(inlet_conf)], child_env(), tmp_path)
    assert rc == 0, f"inlet exited {rc}: {stderr.decode()[-4000:]}"
    msgs = messages(tap_out)
    counts = record_counts(msgs)
    assert counts == {"public-events": 1000, "public-customers": 6}
    out = [json.loads(x) for x in stdout.decode().splitlines() if x.strip()]
    assert out and out[-1] == states(msgs)[-1]
    assert out[-1]["bookmarks"]["public-events"]["replication_key_value"] == "2024-06-01T00:16:40+00:00"
    con = duck()
    for stream, n in counts.items():
        files = parquet_files(dest, stream)
        assert read_arrow(files).num_rows == n
        assert con.execute(f"SELECT count(DISTINCT id) FROM {duck_src(files)}").fetchone()[0] == n


# --------------------------------------------------------------------------------- live: Meltano

STATE_ID = "dev:tap-postgres-to-target-inlet"


def test_meltano_run_state(seeded_pg, tool, inlet_bin, tmp_path):
    """`meltano run tap-postgres target-inlet` (MeltanoLabs tap, INCREMENTAL on updated_at):
    the state Meltano stores is the last STATE the tap emitted; a second run resumes from it."""
    meltano = tool("INLET_MELTANO", "~/.cache/inlet/taps/meltano/bin/meltano")
    tap = tool("INLET_TAP_POSTGRES_MELTANOLABS", "~/.cache/inlet/taps/tap-postgres-meltanolabs/bin/tap-postgres")
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "tests" / "fixtures" / "meltano", proj,
                    ignore=shutil.ignore_patterns(".meltano", "output", "plugins"))
    lake = tmp_path / "lake"
    tap_out = tmp_path / "tap-output.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INLET_", "TARGET_INLET_", "TAP_POSTGRES_"))}
    env.update({
        "INLET_BIN": str(inlet_bin), "INLET_TAP_POSTGRES_MELTANOLABS": str(tap), "INLET_PG_URL": seeded_pg,
        "INLET_MELTANO_DEST": str(lake), "INLET_MELTANO_TAP_OUTPUT": str(tap_out),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", "AWS_EC2_METADATA_DISABLED": "true",
    })

    def run(*args, timeout=300) -> subprocess.CompletedProcess:
        return subprocess.run([str(meltano), *args], cwd=proj, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def stored_state() -> dict:
        p = run("state", "get", STATE_ID)
        assert p.returncode == 0, p.stderr[-4000:]
        return json.loads(p.stdout)["singer_state"]

    events_rows = 0
    for attempt in (1, 2):
        p = run("run", "tap-postgres", "target-inlet")
        assert p.returncode == 0, f"meltano run #{attempt} exited {p.returncode}:\n{p.stderr[-6000:]}"
        msgs = messages(tap_out)
        if attempt == 2:
            # resumed: Meltano handed the tap the stored state, which the tap sends first
            assert msgs[0]["type"] == "STATE"
        assert stored_state() == states(msgs)[-1]
        events_rows += record_counts(msgs)["public-events"]
        # plain parquet files append: every RECORD of both runs is there exactly once
        assert read_arrow(parquet_files(lake, "public-events")).num_rows == events_rows
    assert events_rows >= 1001  # run 2 re-sends the row at the inclusive bookmark
