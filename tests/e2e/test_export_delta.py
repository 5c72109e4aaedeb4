"""`inlet export --format delta`: one Delta table per source table, each run one commit that
replaces the table (or appends to it), read back by the `deltalake` package and DuckDB's delta
extension and compared with what psql returns."""

from __future__ import annotations

import decimal
import json
import signal
import subprocess
import time

import pytest
from deltalake import DeltaTable

from delta_helpers import duck
from storage_helpers import BACKENDS, assert_no_secrets, backend_config, fetch, unique
from test_export import TYPES_DDL, explain, export, psql, schema  # noqa: F401 (fixtures)


def rows(path, columns=None) -> list[dict]:
    return sorted(DeltaTable(str(path)).to_pyarrow_table(columns=columns).to_pylist(),
                  key=lambda r: r["id"])


def commits(path) -> list[dict]:
    return list(reversed(DeltaTable(str(path)).history()))


def test_every_type_lands_in_delta_as_delta_readers_hold_it(pg_url, schema, export, tmp_path):
    psql(pg_url, TYPES_DDL.format(s=schema))
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.*", "--format", "delta")
    assert p.returncode == 0, explain(p)
    path = out / schema / "types"
    t = DeltaTable(str(path))
    assert t.version() == 0
    fields = {f.name: str(f.type) for f in t.to_pyarrow_table().schema}
    # what Delta has no type for arrives as text; the rest keeps its exact type
    assert fields["u"] == "string" and fields["ti"] == "string"
    assert fields["n38"] == "decimal128(38, 10)" and fields["nu"] == "decimal128(38, 18)"
    assert fields["ts"] == "timestamp[us]" and fields["tz"] == "timestamp[us, tz=UTC]"
    assert fields["i2"] == "int16" and fields["ai"].startswith("list<")
    got = rows(path)
    assert len(got) == 2 and all(v is None for k, v in got[1].items() if k != "id")
    r = got[0]
    want = psql(pg_url, f"SELECT u, ti, n38, t, c5, jb, ts, tz AT TIME ZONE 'UTC', iv FROM {schema}.types "
                        f"WHERE id = 1").rstrip("\n").split("|")
    assert r["u"] == want[0] and r["ti"] == want[1]
    assert r["n38"] == decimal.Decimal(want[2]) and r["t"] == want[3] and r["c5"] == want[4]
    assert r["jb"] == want[5]
    assert r["ts"].isoformat(sep=" ") == want[6] and r["tz"].replace(tzinfo=None).isoformat(sep=" ") == want[7]
    assert r["iv"] == {"months": 14, "days": 3, "microseconds": 4 * 3600_000_000 + 5 * 60_000_000 + 6_000_007}
    assert r["ai"] == [1, None, 3] and r["a2"] == [[1, 2], [3, 4]] and r["comp"] == {"a": 5, "b": None}
    # DuckDB reads the same values
    dk = duck(path, "SELECT id, u, ti, n38::VARCHAR AS n38, ai FROM TABLE ORDER BY id")
    assert dk[0]["u"] == want[0] and dk[0]["ti"] == want[1] and dk[0]["n38"] == want[2]
    assert dk[1]["u"] is None
    mixed = DeltaTable(str(out / schema / "MixedCase Table")).to_pyarrow_table().to_pylist()
    assert sorted(mixed, key=lambda r: r["Id"]) == [{"Id": 1, "Ünïcode col": "x"},
                                                    {"Id": 2, "Ünïcode col": None}]


def test_each_run_is_one_commit_and_a_killed_run_changes_nothing(pg_url, schema, export,
                                                                 inlet_bin, child_env, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.big AS SELECT g AS id, md5(g::text) AS h FROM "
                 f"generate_series(1, 300000) g")
    out = tmp_path / "lake"
    path = out / schema / "big"
    args = ["--source", pg_url, "--output-dir", out, "-i", f"{schema}.big", "--format", "delta"]
    # many data files, one commit
    p = export(*args, "--max-file-rows", "50000")
    assert p.returncode == 0, explain(p)
    t = DeltaTable(str(path))
    assert t.version() == 0 and len(t.file_uris()) >= 4
    assert [r["id"] for r in rows(path, ["id"])] == list(range(1, 300001))
    # the source shrinks; a run killed mid-copy leaves the table as it was
    psql(pg_url, f"DELETE FROM {schema}.big WHERE id > 1000")
    psql(pg_url, f"INSERT INTO {schema}.big SELECT g, 'new' FROM generate_series(2000000, 2400000) g")
    proc = subprocess.Popen([str(inlet_bin), "export", *map(str, args), "--max-file-rows", "20000",
                             "--parallel", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    before = set(path.glob("*.parquet"))
    deadline = time.time() + 60
    while time.time() < deadline and set(path.glob("*.parquet")) == before and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert DeltaTable(str(path)).version() == 0
    assert len(rows(path, ["id"])) == 300000
    # the re-run replaces everything in one commit
    p = export(*args)
    assert p.returncode == 0, explain(p)
    t = DeltaTable(str(path))
    assert t.version() == 1
    ids = [r["id"] for r in rows(path, ["id"])]
    assert ids == list(range(1, 1001)) + list(range(2000000, 2400001))
    last = commits(path)[-1]
    assert last["operation"] == "CREATE OR REPLACE TABLE"
    info = json.loads(last["inlet.copy"]) if isinstance(last.get("inlet.copy"), str) else last["inlet.copy"]
    assert info["rows"] == len(ids) and info["table"] == f"{schema}.big"
    assert len(duck(path, "SELECT id FROM TABLE")) == len(ids)


def test_append_mode_adds_and_a_full_copy_in_merge_mode_replaces(pg_url, schema, export, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.ev AS SELECT g AS id FROM generate_series(1, 10) g")
    out = tmp_path / "lake"
    base = ["--source", pg_url, "--output-dir", out, "-i", f"{schema}.ev", "--format", "delta"]
    assert export(*base).returncode == 0
    cfg = {"mode": "append"}
    p = export(*base, config=cfg)
    assert p.returncode == 0, explain(p)
    assert len(rows(out / schema / "ev", ["id"])) == 20
    # merge is for incremental tables (test_export_incremental); a full copy replaces the table
    p = export(*base, config={"mode": "merge"})
    assert p.returncode == 0, explain(p)
    assert len(rows(out / schema / "ev", ["id"])) == 10


def test_an_empty_table_is_a_delta_table_with_its_columns(pg_url, schema, export, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.nothing (id int, n numeric(10,2), u uuid)")
    out = tmp_path / "lake"
    p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.nothing", "--format", "delta")
    assert p.returncode == 0, explain(p)
    t = DeltaTable(str(out / schema / "nothing"))
    assert t.to_pyarrow_table().num_rows == 0
    assert [f.name for f in t.to_pyarrow_table().schema] == ["id", "n", "u"]


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "local"])
def test_export_delta_to_every_backend(backend, pg_url, schema, export, tmp_path):
    psql(pg_url, f"CREATE TABLE {schema}.orders AS SELECT g AS id, (g / 3.0)::numeric(12,4) AS x "
                 f"FROM generate_series(1, 2000) g")
    prefix = unique("export-delta")
    cfg = backend_config(backend, prefix)
    for _ in range(2):  # the second run replaces the first
        p = export("--source", pg_url, "-i", f"{schema}.orders", "--format", "delta", config=cfg)
        assert p.returncode == 0, explain(p)
        assert_no_secrets(p)
    local = fetch(backend, prefix, tmp_path / "mirror")
    path = local / schema / "orders"
    assert DeltaTable(str(path)).version() == 1
    got = rows(path)
    assert len(got) == 2000 and got[2]["x"] == decimal.Decimal("1.0000")
