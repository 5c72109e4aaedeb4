"""`inlet export`: PostgreSQL tables into files, checked against what psql returns and read
back by independent readers (pyarrow, DuckDB). Every test makes its own schema in the test
database (scripts/pg.sh) and drops it afterwards."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage_helpers import BACKENDS, assert_no_secrets, backend_config, fetch, unique


def psql(url: str, sql: str) -> str:
    p = subprocess.run(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def schema(pg_url):
    name = "x_" + uuid.uuid4().hex[:8]
    psql(pg_url, f"CREATE SCHEMA {name}")
    yield name
    psql(pg_url, f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def export(inlet_bin, child_env, tmp_path):
    def run(*args, env=None, timeout=600, config=None):
        cmd = [str(inlet_bin), "export", *map(str, args)]
        if config is not None:
            cfg = tmp_path / f"export-{uuid.uuid4().hex[:6]}.json"
            cfg.write_text(json.dumps(config))
            cmd += ["--config", str(cfg)]
        return subprocess.run(cmd, capture_output=True, text=True, env=child_env(env),
                              timeout=timeout)

    return run


def inlet_runs(inlet_bin, child_env, log, *args) -> str:
    """`inlet runs --run-log LOG ARGS…`'s stdout; it must succeed."""
    r = subprocess.run([str(inlet_bin), "runs", "--run-log", str(log), *args],
                       capture_output=True, text=True, env=child_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def explain(p) -> str:
    return f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"


TYPES_DDL = """
CREATE TYPE {s}.mood AS ENUM ('sad', 'happy');
CREATE DOMAIN {s}.posint AS integer CHECK (VALUE > 0);
CREATE TYPE {s}.pair AS (a integer, b text);
CREATE TABLE {s}.types (
  id int PRIMARY KEY,
  i2 smallint, i4 integer, i8 bigint, o oid,
  r real, d double precision,
  n38 numeric(38,10), n10 numeric(10,2), nu numeric, nneg numeric(5,-2),
  b boolean,
  t text, vc varchar(20), c5 char(5), nm name,
  e {s}.mood, dom {s}.posint,
  by bytea, u uuid, j json, jb jsonb,
  da date, ts timestamp, tz timestamptz, ti time, iv interval,
  ai int[], at text[], a2 int[][], comp {s}.pair,
  inet_ inet, money_ money, bits bit(4)
);
INSERT INTO {s}.types VALUES
 (1, -32768, -2147483648, -9223372036854775808, 4294967295,
  1.5, -2.25e300,
  1234567890123456789012345678.1234567890, -12345678.91, 0.000000000000000001, 12300,
  true,
  'héllo ✓ 𝄞', '', 'ab', 'nm',
  'happy', 7,
  '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{"k" : [1, 2]}}', '{{"b": {{"c": null}}, "a": 1}}',
  '0001-01-01', '9999-12-31 23:59:59.999999', '2024-03-05 07:08:09.123456+02', '23:59:59.999999',
  '1 year 2 months 3 days 04:05:06.000007',
  '{{1,NULL,3}}', '{{}}', '{{{{1,2}},{{3,4}}}}', ROW(5, NULL),
  '192.168.0.1/24', 12.34, B'1010'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL);
CREATE TABLE {s}."MixedCase Table" ("Id" int, "Ünïcode col" text);
INSERT INTO {s}."MixedCase Table" VALUES (1, 'x'), (2, NULL);
"""


def test_every_type_lands_exact_in_parquet(pg_url, schema, export, tmp_path):
    psql(pg_url, TYPES_DDL.format(s=schema))
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*")
    assert p.returncode == 0, explain(p)
    folder = out / schema / "types"
    assert (folder / "_SUCCESS").exists()
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest["rows"] == 2 and manifest["parts"][0]["path"].endswith("part-00000.parquet")
    t = pq.read_table(folder / "part-00000.parquet")
    f = {x.name: x.type for x in t.schema}
    assert str(f["i2"]) == "int16" and str(f["i4"]) == "int32" and str(f["i8"]) == "int64"
    assert str(f["n38"]) == "decimal128(38, 10)" and str(f["n10"]) == "decimal128(10, 2)"
    assert str(f["nu"]) == "decimal128(38, 18)" and str(f["nneg"]) == "decimal128(7, 0)"
    assert str(f["ts"]) == "timestamp[us]" and str(f["tz"]) == "timestamp[us, tz=UTC]"
    assert str(f["da"]) == "date32[day]" and str(f["ti"]) == "time64[us]"
    assert str(f["ai"]) == "list<item: int32>" and str(f["a2"]) == "list<item: list<item: int32>>"
    assert str(f["by"]) == "binary"
    # uuid: 16 bytes with Parquet's UUID logical type
    col = pq.ParquetFile(folder / "part-00000.parquet").schema.column(
        t.schema.get_field_index("u"))
    assert "UUID" in str(col.logical_type), col.logical_type
    jcol = pq.ParquetFile(folder / "part-00000.parquet").schema.column(
        t.schema.get_field_index("jb"))
    assert "JSON" in str(jcol.logical_type), jcol.logical_type
    rows = {r["id"]: r for r in t.to_pylist()}
    r = rows[1]
    assert (r["i2"], r["i4"], r["i8"], r["o"]) == (-32768, -2**31, -2**63, 4294967295)
    assert r["r"] == 1.5 and r["d"] == -2.25e300
    assert r["n38"] == decimal.Decimal("1234567890123456789012345678.1234567890")
    assert r["n10"] == decimal.Decimal("-12345678.91")
    assert r["nu"] == decimal.Decimal("0.000000000000000001")
    assert r["nneg"] == decimal.Decimal("12300")
    assert r["b"] is True
    assert (r["t"], r["vc"], r["c5"], r["nm"]) == ("héllo ✓ 𝄞", "", "ab   ", "nm")
    assert (r["e"], r["dom"]) == ("happy", 7)
    assert r["by"] == b"\x00\xff\x10"
    got = r["u"] if isinstance(r["u"], uuid.UUID) else uuid.UUID(bytes=r["u"])
    assert got == uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    # json exactly as PostgreSQL keeps it; jsonb as PostgreSQL prints it
    assert r["j"] == psql(pg_url, f"SELECT j FROM {schema}.types WHERE id = 1").strip()
    assert r["jb"] == psql(pg_url, f"SELECT jb FROM {schema}.types WHERE id = 1").strip()
    assert r["da"] == dt.date(1, 1, 1)
    assert r["ts"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
    assert r["tz"] == dt.datetime(2024, 3, 5, 5, 8, 9, 123456, tzinfo=dt.timezone.utc)
    assert r["ti"] == dt.time(23, 59, 59, 999999)
    assert r["iv"] == {"months": 14, "days": 3, "microseconds": 14706000007}
    assert r["ai"] == [1, None, 3] and r["at"] == [] and r["a2"] == [[1, 2], [3, 4]]
    assert r["comp"] == {"a": 5, "b": None}
    # types without an exact Arrow form: their text output
    assert r["inet_"] == "192.168.0.1/24" and r["bits"] == "1010"
    assert r["money_"] == psql(pg_url, f"SELECT money_ FROM {schema}.types WHERE id = 1").strip()
    assert all(v is None for k, v in rows[2].items() if k != "id"), rows[2]
    mixed = pq.read_table(out / schema / "MixedCase Table" / "part-00000.parquet").to_pylist()
    assert mixed == [{"Id": 1, "Ünïcode col": "x"}, {"Id": 2, "Ünïcode col": None}]
    # JSONL: uuid as its text, json as JSON, nested as JSON
    p = export("--source", pg_url, "--output-dir", tmp_path / "jsonl", "-i", f"{schema}.types",
               "--format", "jsonl")
    assert p.returncode == 0, explain(p)
    lines = (tmp_path / "jsonl" / schema / "types" / "part-00000.jsonl").read_text().splitlines()
    first = {json.loads(x)["id"]: json.loads(x) for x in lines}[1]
    assert first["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    assert first["jb"] == {"a": 1, "b": {"c": None}} and first["j"] == {"k": [1, 2]}
    assert first["a2"] == [[1, 2], [3, 4]] and first["comp"] == {"a": 5, "b": None}
    assert first["n38"] in ("1234567890123456789012345678.1234567890",
                            1234567890123456789012345678.1234567890)


def test_duckdb_reads_the_export_and_csv_matches(pg_url, schema, export, tmp_path):
    import duckdb

    psql(pg_url, f"CREATE TABLE {schema}.orders AS SELECT g AS id, (g * 1.25)::numeric(12,2) AS "
                 f"amount, 'o' || g AS name FROM generate_series(1, 5000) g")
    out = tmp_path / "lake"
    for fmt in ("parquet", "csv"):
        p = export("--source", pg_url, "--output-dir", out / fmt, "-i", f"{schema}.orders",
                   "--format", fmt)
        assert p.returncode == 0, explain(p)
    con = duckdb.connect()
    pq_sum = con.sql(f"SELECT count(*), sum(amount), sum(id) FROM "
                     f"'{out}/parquet/{schema}/orders/*.parquet'").fetchall()[0]
    csv_sum = con.sql(f"SELECT count(*), sum(amount), sum(id) FROM "
                      f"read_csv('{out}/csv/{schema}/orders/*.csv', header=true)").fetchall()[0]
    want = psql(pg_url, f"SELECT count(*), sum(amount), sum(id) FROM {schema}.orders").split("|")
    assert [str(x) for x in pq_sum] == [w.strip() for w in want]
    assert int(csv_sum[0]) == 5000 and str(csv_sum[2]) == want[2].strip()


def test_partitioned_table_once_under_its_own_name(pg_url, schema, export, tmp_path):
    psql(pg_url, f"""
        CREATE TABLE {schema}.m (id int, month date) PARTITION BY RANGE (month);
        CREATE TABLE {schema}.m_2024 PARTITION OF {schema}.m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE {schema}.m_2025 PARTITION OF {schema}.m FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        INSERT INTO {schema}.m SELECT g, '2024-06-01'::date + (g % 400) FROM generate_series(1, 3000) g;
    """)
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*", "--parallel", "2")
    assert p.returncode == 0, explain(p)
    assert sorted(x.name for x in (out / schema).iterdir()) == ["m"]
    ids = pq.read_table(out / schema / "m").column("id").to_pylist()
    assert sorted(ids) == list(range(1, 3001))


def test_parallel_ranges_share_one_snapshot_while_the_source_changes(pg_url, schema, export,
                                                                     tmp_path):
    """Rows move between blocks (UPDATE writes a new version elsewhere) while eight ranges are
    read on two connections: in one snapshot every id appears once and the total is constant."""
    n = 60_000
    psql(pg_url, f"CREATE TABLE {schema}.moving (id int PRIMARY KEY, v int, pad text); "
                 f"INSERT INTO {schema}.moving SELECT g, 1, repeat('x', 100) FROM "
                 f"generate_series(1, {n}) g")
    psql(pg_url, f"VACUUM ANALYZE {schema}.moving")
    stop = threading.Event()
    changes = [0]

    def writer():
        import random
        con = subprocess.Popen(["psql", pg_url, "-X", "-q"], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        while not stop.is_set():
            a, b = random.randrange(1, n + 1), random.randrange(1, n + 1)
            # moves one unit from a to b: the sum stays n, rows move to new blocks
            con.stdin.write(f"BEGIN; UPDATE {schema}.moving SET v = v - 1 WHERE id = {a}; "
                            f"UPDATE {schema}.moving SET v = v + 1 WHERE id = {b}; COMMIT;\n")
            con.stdin.flush()
            changes[0] += 1
            time.sleep(0.001)
        con.stdin.close()
        con.wait()

    th = threading.Thread(target=writer)
    th.start()
    try:
        time.sleep(0.5)
        out = tmp_path / "lake"
        p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.moving",
                   "--parallel", "2", "--range-size", "512kB", "--max-file-rows", "20000")
    finally:
        stop.set()
        th.join()
    assert p.returncode == 0, explain(p)
    assert changes[0] > 10, "the writer did not run during the export"
    t = pq.read_table(out / schema / "moving", columns=["id", "v"])
    ids = t.column("id").to_pylist()
    assert len(ids) == n and len(set(ids)) == n
    assert sum(t.column("v").to_pylist()) == n
    manifest = json.loads((out / schema / "moving" / "_manifest.json").read_text())
    assert manifest["rows"] == n and len(manifest["parts"]) >= 3


def test_rerun_replaces_and_a_killed_run_leaves_no_success_marker(pg_url, schema, export,
                                                                  inlet_bin, child_env, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.big AS SELECT g AS id, md5(g::text) AS h FROM "
                 f"generate_series(1, 400000) g")
    out = tmp_path / "lake"
    folder = out / schema / "big"
    # killed mid-copy: some parts may be there, _SUCCESS is not
    proc = subprocess.Popen([str(inlet_bin), "export", "--source", pg_url, "--output-dir", str(out),
                             "-i", f"{schema}.big", "--max-file-rows", "20000", "--parallel", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    deadline = time.time() + 60
    while time.time() < deadline and not list(folder.glob("part-*")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (folder / "_SUCCESS").exists()
    # a re-run leaves exactly this run's rows
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.big",
               "--max-file-rows", "150000")
    assert p.returncode == 0, explain(p)
    assert (folder / "_SUCCESS").exists()
    ids = pq.read_table(folder).column("id").to_pylist()
    assert sorted(ids) == list(range(1, 400001))
    # the table shrinks: the next full copy replaces the old parts
    psql(pg_url, f"DELETE FROM {schema}.big WHERE id > 1000")
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.big")
    assert p.returncode == 0, explain(p)
    parts = sorted(x.name for x in folder.glob("part-*"))
    assert len(parts) == 1, parts
    assert sorted(pq.read_table(folder).column("id").to_pylist()) == list(range(1, 1001))
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert [x["path"].rsplit("/", 1)[1] for x in manifest["parts"]] == parts


def test_failures_say_what_to_fix(pg_url, schema, export, tmp_path):
    from urllib.parse import urlsplit

    u = urlsplit(pg_url)
    out = tmp_path / "lake"
    bad = f"postgresql://{u.username}:wrong-password-123@{u.hostname}:{u.port}{u.path}"
    p = export("--source", bad, "--output-dir", out)
    assert p.returncode == 6 and "login refused" in p.stderr, explain(p)
    assert "wrong-password-123" not in p.stdout + p.stderr
    p = export("--source", f"postgresql://{u.username}:{u.password}@{u.hostname}:{u.port}/no_such_db",
               "--output-dir", out)
    assert p.returncode == 6 and "no_such_db" in p.stderr and "does not exist" in p.stderr, explain(p)
    assert f":{u.password}@" not in p.stderr
    p = export("--source", f"postgresql://{u.username}:{u.password}@127.0.0.1:9/db",
               "--output-dir", out)
    assert p.returncode == 6 and "cannot connect" in p.stderr, explain(p)
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.nothing_here")
    assert p.returncode == 3 and f"{schema}.nothing_here" in p.stderr, explain(p)
    # a table the user may not read: named, with the privilege; the other table still lands
    psql(pg_url, f"CREATE TABLE {schema}.secret (id int); CREATE TABLE {schema}.open (id int); "
                 f"INSERT INTO {schema}.open VALUES (1); REVOKE SELECT ON {schema}.secret FROM CURRENT_USER")
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.secret,{schema}.open")
    assert p.returncode == 7, explain(p)
    assert f"{schema}.secret" in p.stderr and "grant SELECT" in p.stderr, explain(p)
    assert (out / schema / "open" / "_SUCCESS").exists()
    assert not (out / schema / "secret" / "_SUCCESS").exists()
    # numeric that does not fit: table, column and value named
    psql(pg_url, f"CREATE TABLE {schema}.ratio AS SELECT 1::numeric / 7 AS r")
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.ratio")
    assert p.returncode == 7 and "column 'r'" in p.stderr and "0.142857" in p.stderr, explain(p)
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.ratio", "--numeric", "text")
    assert p.returncode == 0, explain(p)
    assert pq.read_table(out / schema / "ratio").column("r").to_pylist() == [
        psql(pg_url, f"SELECT r FROM {schema}.ratio").strip()]


def test_infinite_timestamps_are_a_choice(pg_url, schema, export, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.inf (d date, t timestamptz); "
                 f"INSERT INTO {schema}.inf VALUES ('infinity', '-infinity')")
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.inf")
    assert p.returncode == 7 and "infinity date" in p.stderr and "--infinity" in p.stderr, explain(p)
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.inf", "--infinity", "null")
    assert p.returncode == 0, explain(p)
    assert pq.read_table(out / schema / "inf").to_pylist() == [{"d": None, "t": None}]
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.inf", "--infinity", "clamp")
    assert p.returncode == 0, explain(p)
    row = pq.read_table(out / schema / "inf").to_pylist()[0]
    assert row["d"] == dt.date(9999, 12, 31) and row["t"].year == 1


def test_dry_run_plans_without_writing(pg_url, schema, export, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.a (id int, n numeric(10,2)); "
                 f"CREATE VIEW {schema}.v AS SELECT * FROM {schema}.a")
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*", "--dry-run")
    assert p.returncode == 0, explain(p)
    assert f"{schema}.a (table, 2 columns)" in p.stdout
    assert "numeric(10,2)" not in p.stdout or "Decimal128(10, 2)" in p.stdout
    assert f"{schema}.v" not in p.stdout, "views only when asked for"
    assert not out.exists() or not any(out.rglob("*"))
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*", "--dry-run",
               "--include-views")
    assert f"{schema}.v (view" in p.stdout, explain(p)


def test_lakexpress_auth_file_and_flag_spellings(pg_url, schema, export, tmp_path):
    from urllib.parse import urlsplit

    u = urlsplit(pg_url)
    psql(pg_url, f"CREATE TABLE {schema}.t1 AS SELECT 1 AS id; "
                 f"CREATE TABLE {schema}.t2 AS SELECT 2 AS id; CREATE TABLE {schema}.t3 AS SELECT 3 AS id")
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({
        "pg_01": {"ds_type": "postgres", "auth_mode": "classic",
                  "info": {"username": u.username, "password": "$env{MY_PG_PASSWORD}",
                           "server": u.hostname, "port": u.port, "database": u.path[1:]}},
        "local_01": {"storage_type": "local", "info": {"path": str(tmp_path / "lake")}},
    }))
    p = export("-a", auth, "--source_db_auth_id", "pg_01", "--target_storage_id", "local_01",
               "--sub_path", "erp/daily", "-i", f"{schema}.t1,{schema}.t2", "-e", f"{schema}.t2",
               "--n_jobs", "2", env={"MY_PG_PASSWORD": u.password})
    assert p.returncode == 0, explain(p)
    root = tmp_path / "lake" / "erp" / "daily" / schema
    assert sorted(x.name for x in root.iterdir()) == ["t1"]
    assert f":{u.password}@" not in p.stdout + p.stderr
    # the password from PGPASSWORD and from a pgpass file
    no_pw = f"postgresql://{u.username}@{u.hostname}:{u.port}{u.path}"
    p = export("--source", no_pw, "--output-dir", tmp_path / "l2", "-i", f"{schema}.t3",
               env={"PGPASSWORD": u.password})
    assert p.returncode == 0, explain(p)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{u.hostname}:{u.port}:*:{u.username}:{u.password}\n")
    pgpass.chmod(0o600)
    p = export("--source", no_pw, "--output-dir", tmp_path / "l3", "-i", f"{schema}.t3",
               env={"PGPASSFILE": str(pgpass)})
    assert p.returncode == 0, explain(p)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "local"])
def test_export_to_every_backend(backend, pg_url, schema, export, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.orders AS SELECT g AS id, (g / 3.0)::numeric(12,4) AS x "
                 f"FROM generate_series(1, 2000) g")
    prefix = unique("export")
    cfg = backend_config(backend, prefix)
    p = export("--source", pg_url, "-i", f"{schema}.orders", config=cfg)
    assert p.returncode == 0, explain(p)
    assert_no_secrets(p)
    local = fetch(backend, prefix, tmp_path / "mirror")
    folder = local / schema / "orders"
    assert (folder / "_SUCCESS").exists(), sorted(str(x) for x in local.rglob("*"))
    t = pq.read_table(folder / "part-00000.parquet")
    assert t.num_rows == 2000
    assert t.column("x").to_pylist()[2] == decimal.Decimal("1.0000")


def test_a_range_whose_connection_is_lost_is_read_again_in_the_same_snapshot(
        pg_url, schema, inlet_bin, child_env, tmp_path):
    # 2M rows: long enough to cut a COPY connection in the middle
    psql(pg_url, f"CREATE TABLE {schema}.two_m AS SELECT g AS id, md5(g::text) AS h "
                 f"FROM generate_series(1, 2000000) g")
    out = tmp_path / "lake"
    proc = subprocess.Popen([str(inlet_bin), "export", "--source", pg_url, "--output-dir", str(out),
                             "-i", f"{schema}.two_m", "--parallel", "2", "--range-size", "16MB"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env())
    killed = []
    deadline = time.time() + 120
    while not killed and time.time() < deadline and proc.poll() is None:
        # a COPY that has run a while: it has delivered rows before its connection goes
        killed = psql(pg_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE query LIKE 'COPY%{schema}%two_m%' "
                              "AND now() - query_start > interval '300 ms'").split()
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed, "the export ended before a COPY could be cut: " + stderr[-2000:]
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stderr[-3000:]}"
    assert "reading this range again" in stderr and "same snapshot" in stderr, stderr[-3000:]
    import re
    kept = [int(n) for n in re.findall(r"the (\d+) rows it already delivered", stderr)]
    assert kept and max(kept) > 0, "the cut range had delivered rows, which the retry skips"
    ids = pq.read_table(out / schema / "two_m", columns=["id"]).column("id").to_pylist()
    assert len(ids) == 2000000 and sorted(ids) == list(range(1, 2000001))


def test_spark_reads_every_exported_parquet_table(pg_url, schema, export, tmp_path):
    from spark_helpers import spark_read

    psql(pg_url, TYPES_DDL.format(s=schema))
    exact, portable = tmp_path / "exact", tmp_path / "portable"
    for out, extra in ((exact, []), (portable, ["--portable-types"])):
        p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*", *extra)
        assert p.returncode == 0, explain(p)
    got = spark_read(exact / schema / "types", portable / schema / "types",
                     portable / schema / "MixedCase Table")
    # Spark 4.0 has no reader for Parquet's UUID and TIME types (README: the type table)
    assert "UUID" in got[str(exact / schema / "types")]["error"]
    spark = got[str(portable / schema / "types")]
    assert "error" not in spark, spark
    t = spark["schema"]
    assert t["u"] == "string" and t["ti"] == "string" and t["n38"] == "decimal(38,10)"
    assert t["ts"] == "timestamp_ntz" and t["tz"] == "timestamp" and t["a2"] == "array<array<int>>"
    assert t["iv"] == "struct<months:int,days:int,microseconds:bigint>"
    r = {x["id"]: x for x in spark["rows"]}
    want = psql(pg_url, f"SELECT u, ti, n38, nu, ts, tz AT TIME ZONE 'UTC', da, t, c5, jb FROM {schema}.types "
                        f"WHERE id = 1").rstrip("\n").split("|")
    one = r[1]
    assert [one["u"], one["ti"]] == want[:2]
    assert decimal.Decimal(one["n38"]) == decimal.Decimal(want[2])
    assert decimal.Decimal(one["nu"]) == decimal.Decimal(want[3])
    assert one["ts"] == want[4] and one["tz"] == want[5] and one["da"] == want[6]
    assert [one["t"], one["c5"], one["jb"]] == want[7:]
    assert one["ai"] == [1, None, 3] and one["a2"] == [[1, 2], [3, 4]] and one["comp"] == {"a": 5, "b": None}
    assert all(v is None for k, v in r[2].items() if k != "id")
    mixed = got[str(portable / schema / "MixedCase Table")]
    assert sorted(mixed["rows"], key=lambda x: x["Id"]) == [{"Id": 1, "Ünïcode col": "x"},
                                                           {"Id": 2, "Ünïcode col": None}]


def test_tls_as_sslmode_asks(pg_url, schema, export, tmp_path):
    from urllib.parse import urlsplit

    assert psql(pg_url, "SHOW ssl").strip() == "on", "the test server has TLS (scripts/pg.sh)"
    psql(pg_url, f"CREATE TABLE {schema}.t AS SELECT 1 AS id")
    u = urlsplit(pg_url)
    base = f"postgresql://{u.username}:{u.password}@{{host}}:{u.port}{u.path}"
    args = ["-i", f"{schema}.t", "--output-dir", tmp_path / "lake"]
    # require: encrypted, the certificate is not checked (libpq's meaning)
    p = export("--source", base.format(host="127.0.0.1") + "?sslmode=require", *args)
    assert p.returncode == 0, explain(p)
    assert "source connections use TLS" in p.stderr and "not verified" in p.stderr, explain(p)
    # disable: plain TCP, and the log says so
    p = export("--source", base.format(host="127.0.0.1") + "?sslmode=disable", *args)
    assert p.returncode == 0 and "not encrypted" in p.stderr, explain(p)
    # verify-full against the server's self-signed certificate (issued to localhost)
    cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
    p = export("--source", base.format(host="localhost") + f"?sslmode=verify-full&sslrootcert={cert}", *args)
    assert p.returncode == 0, explain(p)
    assert "certificate and host name verified" in p.stderr, explain(p)
    # … which does not name 127.0.0.1: refused, saying why, exit 6, not retried
    p = export("--source", base.format(host="127.0.0.1") + f"?sslmode=verify-full&sslrootcert={cert}", *args)
    assert p.returncode == 6 and "TLS handshake failed" in p.stderr, explain(p)
    assert "attempt" not in p.stderr, "a refused certificate is not retried"
    # verify-ca checks only the signature
    p = export("--source", base.format(host="127.0.0.1") + f"?sslmode=verify-ca&sslrootcert={cert}", *args)
    assert p.returncode == 0, explain(p)
    # a root file that is not a certificate, and an sslmode libpq does not have
    bad = tmp_path / "ca.pem"
    bad.write_text("nothing")
    p = export("--source", base.format(host="localhost") + f"?sslmode=verify-full&sslrootcert={bad}", *args)
    assert p.returncode == 3 and "ca.pem" in p.stderr, explain(p)
    p = export("--source", base.format(host="localhost") + "?sslmode=sometimes", *args)
    assert p.returncode == 3 and "verify-full" in p.stderr, explain(p)


def test_a_table_dropped_during_the_run_is_named_and_the_others_land(pg_url, schema, inlet_bin,
                                                                      child_env, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.a_big AS SELECT g AS id, md5(g::text) AS h "
                 f"FROM generate_series(1, 1500000) g; CREATE TABLE {schema}.z_small AS SELECT 1 AS id")
    out = tmp_path / "lake"
    # one table at a time, in name order: z_small is read after a_big
    proc = subprocess.Popen([str(inlet_bin), "export", "--source", pg_url, "--output-dir", str(out),
                             "-i", f"{schema}.*", "--jobs", "1", "--parallel", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None and not psql(
            pg_url, f"SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY%{schema}%a_big%'").strip():
        time.sleep(0.02)
    psql(pg_url, f"DROP TABLE {schema}.z_small")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 7, f"exit {proc.returncode}\n{stderr[-3000:]}"
    assert f"{schema}.z_small no longer exists" in stderr, stderr[-3000:]
    assert (out / schema / "a_big" / "_SUCCESS").exists()
    assert not (out / schema / "z_small" / "_SUCCESS").exists()


def test_the_run_log_records_runs_tables_and_files(pg_url, schema, export, inlet_bin, child_env,
                                                   tmp_path):
    from urllib.parse import urlsplit

    psql(pg_url, f"CREATE TABLE {schema}.a AS SELECT g AS id FROM generate_series(1, 1000) g; "
                 f"CREATE TABLE {schema}.b (id int); REVOKE SELECT ON {schema}.b FROM CURRENT_USER")
    log = tmp_path / "logs" / "runs.sqlite"
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.a", "--run-log", log)
    assert p.returncode == 0 and "run_log" in p.stderr, explain(p)
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*", "--run-log", log)
    assert p.returncode == 7, explain(p)

    def runs(*args):
        return inlet_runs(inlet_bin, child_env, log, *args)

    listed = json.loads(runs("--format", "json"))
    assert [r["status"] for r in listed] == ["failed", "succeeded"]
    assert listed[1]["rows"] == 1000 and listed[1]["tables"] == 1
    assert listed[0]["error"] == f"failed: {schema}.b"
    detail = json.loads(runs("show", listed[0]["run_id"], "--format", "json"))
    tables = {t["table"]: t for t in detail["table_list"]}
    assert tables[f"{schema}.a"]["status"] == "succeeded" and tables[f"{schema}.a"]["rows"] == 1000
    assert tables[f"{schema}.b"]["status"] == "failed" and "grant SELECT" in tables[f"{schema}.b"]["error"]
    # the second copy's part (numbers continue across runs; the first copy's part is gone)
    assert [f["path"] for f in detail["files"]] == [f"{schema}/a/part-00001.parquet"]
    assert (out / schema / "a" / "part-00001.parquet").exists()
    assert detail["settings"]["include"] == [f"{schema}.*"]
    text = runs("show", listed[0]["run_id"])
    assert f"{schema}.a" in text and "part-00001.parquet" in text and "failed" in text
    assert listed[0]["run_id"] in runs()
    # no secret in the log
    u = urlsplit(pg_url)
    assert f":{u.password}@" not in log.read_bytes().decode("latin-1")
    # a killed run stays "running or killed"
    psql(pg_url, f"CREATE TABLE {schema}.c AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 2000000) g")
    proc = subprocess.Popen([str(inlet_bin), "export", "--source", pg_url, "--output-dir", str(out),
                             "-i", f"{schema}.c", "--run-log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    deadline = time.time() + 60
    while time.time() < deadline and len(json.loads(runs("--format", "json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "running or killed" in runs().splitlines()[1]
    r = subprocess.run([str(inlet_bin), "runs", "--run-log", str(log), "show", "nope"],
                       capture_output=True, text=True, env=child_env())
    assert r.returncode == 3 and "no run nope" in r.stderr


def test_a_terminal_gets_a_live_bar_per_table(pg_url, schema, inlet_bin, child_env, tmp_path):
    import pty
    import re

    psql(pg_url, f"CREATE TABLE {schema}.bar AS SELECT g AS id, md5(g::text) AS h "
                 f"FROM generate_series(1, 1500000) g; ANALYZE {schema}.bar")
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(inlet_bin), "export", "--source", pg_url, "--output-dir",
                             str(tmp_path / "lake"), "-i", f"{schema}.bar", "--parallel", "1"],
                            stdout=subprocess.PIPE, stderr=slave, env=child_env())
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(timeout=300)
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen.decode("utf-8", "replace"))
    assert proc.returncode == 0, text[-2000:]
    # the bar: the table, rows against the estimate, bytes, rate, time left
    assert re.search(rf"{schema}\.bar +\[[=> ]+\] [\d,]+/~1,500,000 rows +[\d.]+ MB read, \d+ rows/s", text), text[-2000:]
    # and no plain progress lines on a terminal
    assert "% of ~" not in text
