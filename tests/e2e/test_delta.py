"""format: delta (issue #4): append, overwrite, partition overwrite and merge on every backend,
read back by two independent readers — the `deltalake` Python package and DuckDB's delta
extension (its own venv, scripts/test-env.sh: duckdb-delta) — plus STATE in the commit,
schema evolution, crash and concurrency tests, and the maintenance commands."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from delta_helpers import duck
from inlet_helpers import err_text, explain, lines, ok, record_msg, schema_msg, state_msg, stdout_states
from storage_helpers import assert_no_secrets, backend_config, fetch, server_env, unique

def readers_agree(path: Path):
    """The deltalake package, DuckDB and Polars see the same rows: ids, flags and names."""
    import polars as pl
    py = sorted((r["id"], r.get("flag"), r.get("name"))
                for r in DeltaTable(str(path)).to_pyarrow_table(columns=["id", "flag", "name"]).to_pylist())
    dk = sorted((r["id"], r["flag"], r["name"]) for r in duck(path, "SELECT id, flag, name FROM TABLE"))
    assert py == dk, (py[:5], dk[:5])
    po = sorted(pl.read_delta(str(path)).select("id", "flag", "name").iter_rows())
    assert po == py, (po[:5], py[:5])


def delta_rows(path: Path, cols=None) -> list[dict]:
    t = DeltaTable(str(path)).to_pyarrow_table(columns=cols)
    return sorted(t.to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "region": {"type": "string"},
        "name": {"type": ["null", "string"]},
        "flag": {"type": ["null", "boolean"]},
        "amount": {"type": ["null", "number"], "multipleOf": 0.01},
        "ts": {"type": ["null", "string"], "format": "date-time"},
        "day": {"type": ["null", "string"], "format": "date"},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "addr": {"type": ["null", "object"], "properties": {"city": {"type": ["null", "string"]}}},
        "_sdc_deleted_at": {"type": ["null", "string"], "format": "date-time"},
    },
    "required": ["id", "region"],
}


def rec(i, region="A", name=None, flag=None, deleted=False, **extra):
    r = {"id": i, "region": region, "name": name if name is not None else f"n{i}",
         "flag": flag if flag is not None else (i % 2 == 0), "amount": round(i * 1.01, 2),
         "ts": f"2024-05-{1 + i % 28:02d}T12:00:00+02:00", "day": f"2024-05-{1 + i % 28:02d}",
         "tags": [f"t{i}", "x"], "addr": {"city": f"c{i}"}}
    if deleted:
        r["_sdc_deleted_at"] = "2024-06-01T00:00:00Z"
    r.update(extra)
    return r


def stream_input(records, stream="public-t", schema=SCHEMA, keys=("id",), state_every=None):
    out = [schema_msg(stream, schema, key_properties=keys)]
    for n, r in enumerate(records, 1):
        out.append(record_msg(stream, r))
        if state_every and n % state_every == 0:
            out.append(state_msg({"pos": n}))
    out.append(state_msg({"pos": len(records)}))
    return lines(*out)


def base_cfg(dest: Path, **kw) -> dict:
    return {"destination": str(dest), "format": "delta", "add_metadata_columns": False, **kw}


# ------------------------------------------------------------------ types


def test_types_are_the_schema_types_and_false_stays_false(run_inlet, dest):
    ok(run_inlet(base_cfg(dest), stream_input([rec(1, flag=False), rec(2, flag=True), rec(3)])))
    path = dest / "public-t"
    t = DeltaTable(str(path))
    schema = t.to_pyarrow_table().schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("flag").type == pa.bool_()
    assert pa.types.is_timestamp(schema.field("ts").type) and schema.field("ts").type.tz in ("UTC", "+00:00")
    assert schema.field("day").type == pa.date32()
    assert pa.types.is_decimal(schema.field("amount").type)
    assert pa.types.is_list(schema.field("tags").type)
    assert pa.types.is_struct(schema.field("addr").type)
    rows = {r["id"]: r for r in t.to_pyarrow_table().to_pylist()}
    assert rows[1]["flag"] is False and rows[2]["flag"] is True
    assert rows[1]["ts"] == datetime(2024, 5, 2, 10, 0, tzinfo=timezone.utc)
    assert rows[1]["day"] == date(2024, 5, 2)
    assert rows[2]["amount"] == Decimal("2.02")
    assert rows[3]["tags"] == ["t3", "x"] and rows[3]["addr"] == {"city": "c3"}
    # DuckDB, independently: the same booleans, types and values
    d = duck(path, "SELECT id, flag, typeof(flag) AS tf, typeof(ts) AS tt, tags, addr FROM TABLE ORDER BY id")
    assert [r["flag"] for r in d] == [False, True, False]
    assert d[0]["tf"] == "BOOLEAN" and d[0]["tt"].startswith("TIMESTAMP")


# ------------------------------------------------------------------ modes on every backend

DELTA_BACKENDS = ["local", "moto", "s3s", "azurite", "gcs"]


def _table_path(backend, prefix, tmp_path, table="public-t") -> Path:
    """A local folder holding the table: the table itself (local) or a download of it."""
    if backend == "local":
        return tmp_path / prefix / table
    return fetch(backend, prefix, tmp_path / f"mirror-{unique()}") / table


def _cfg(backend, prefix, tmp_path, **kw):
    cfg = {**backend_config(backend, prefix, tmp_path), "format": "delta",
           "add_metadata_columns": False, **kw}
    if backend == "azurite":
        # Azurite ignores the startFrom listing parameter Delta log listing relies on;
        # object_store filters client-side only in emulator mode
        # (AZURITE_BLOB_STORAGE_URL, set by conftest, says where Azurite listens)
        del cfg["azure_endpoint"]
        cfg["azure_use_emulator"] = True
    return cfg


@pytest.mark.parametrize("backend", DELTA_BACKENDS)
def test_append_every_flush_is_a_commit(backend, run_inlet, tmp_path):
    prefix = unique("append")
    cfg = _cfg(backend, prefix, tmp_path, batch_max_rows=10)
    ok(run_inlet(cfg, stream_input([rec(i) for i in range(25)])))
    ok(run_inlet(cfg, stream_input([rec(i) for i in range(25, 30)])))
    path = _table_path(backend, prefix, tmp_path)
    t = DeltaTable(str(path))
    assert t.version() == 3  # 3 flushes + 1 flush
    assert sorted(r["id"] for r in delta_rows(path, ["id"])) == list(range(30))
    readers_agree(path)


@pytest.mark.parametrize("backend", DELTA_BACKENDS)
def test_overwrite_run_keeps_all_of_its_batches(backend, run_inlet, tmp_path):
    prefix = unique("overwrite")
    cfg = _cfg(backend, prefix, tmp_path, mode="overwrite", batch_max_rows=10)
    ok(run_inlet(cfg, stream_input([rec(i) for i in range(100, 150)])))
    ok(run_inlet(cfg, stream_input([rec(i) for i in range(35)])))  # 4 batches
    path = _table_path(backend, prefix, tmp_path)
    assert sorted(r["id"] for r in delta_rows(path, ["id"])) == list(range(35))
    assert duck(path, "SELECT count(*) AS n, min(id) AS lo FROM TABLE")[0] == {"n": 35, "lo": 0}


@pytest.mark.parametrize("backend", DELTA_BACKENDS)
def test_merge_upserts_dedupes_and_deletes(backend, run_inlet, tmp_path):
    prefix = unique("merge")
    cfg = _cfg(backend, prefix, tmp_path, mode="merge", hard_delete=True)
    ok(run_inlet(cfg, stream_input([rec(1), rec(2), rec(3), rec(4)])))
    second = [rec(2, name="two-a"), rec(2, name="two-b", flag=False),   # duplicate: last wins
              rec(3, deleted=True),                                  # delete
              rec(5, name="five"), rec(6, deleted=True)]             # insert; delete unknown key
    ok(run_inlet(cfg, stream_input(second)))
    path = _table_path(backend, prefix, tmp_path)
    rows = {r["id"]: r for r in delta_rows(path)}
    assert sorted(rows) == [1, 2, 4, 5]
    assert rows[2]["name"] == "two-b" and rows[2]["flag"] is False
    assert rows[5]["name"] == "five"
    d = duck(path, "SELECT id, name FROM TABLE ORDER BY id")
    assert [(r["id"], r["name"]) for r in d] == [(1, "n1"), (2, "two-b"), (4, "n4"), (5, "five")]


def test_merge_soft_delete_keeps_rows(run_inlet, dest):
    cfg = base_cfg(dest, mode="merge")
    ok(run_inlet(cfg, stream_input([rec(1), rec(2)])))
    ok(run_inlet(cfg, stream_input([rec(2, deleted=True)])))
    rows = {r["id"]: r for r in delta_rows(dest / "public-t")}
    assert sorted(rows) == [1, 2]
    assert rows[2]["_sdc_deleted_at"] is not None and rows[1]["_sdc_deleted_at"] is None
    readers_agree(dest / "public-t")


def test_merge_without_key_properties_says_so(run_inlet, dest):
    proc = run_inlet(base_cfg(dest, mode="merge"), stream_input([rec(1)], keys=()))
    assert proc.returncode == 5, explain(proc)
    assert "key_properties" in err_text(proc)
    assert stdout_states(proc) == []


@pytest.mark.parametrize("backend", ["local", "moto", "azurite"])
def test_partition_overwrite_replaces_only_the_partitions_in_the_run(backend, run_inlet, tmp_path):
    prefix = unique("partover")
    cfg = _cfg(backend, prefix, tmp_path, mode="overwrite", partition_keys=["region"],
               batch_max_rows=4)
    first = [rec(i, region=r) for r, ids in (("A", [1, 2]), ("B", [3, 4, 5]), ("C", [6]))
             for i in ids]
    ok(run_inlet(cfg, stream_input(first)))
    # B' arrives over several flushes: all of its rows stay, the old B rows go
    second = [rec(i, region="B", name=f"b'{i}") for i in range(10, 19)]
    ok(run_inlet(cfg, stream_input(second)))
    path = _table_path(backend, prefix, tmp_path)
    rows = delta_rows(path, ["id", "region", "name"])
    by = {}
    for r in rows:
        by.setdefault(r["region"], []).append(r["id"])
    assert by == {"A": [1, 2], "B": list(range(10, 19)), "C": [6]}, by
    assert (path / "region=A").is_dir() and (path / "region=C").is_dir()
    d = duck(path, "SELECT region, count(*) AS n FROM TABLE GROUP BY region ORDER BY region")
    assert [(r["region"], r["n"]) for r in d] == [("A", 2), ("B", 9), ("C", 1)]
    hist = DeltaTable(str(path)).history()
    assert any("predicate" in json.dumps(h.get("operationParameters", {})) for h in hist), hist


# ------------------------------------------------------------------ STATE, schema


def test_state_is_in_the_commit_and_inlet_state_prints_it(run_inlet, dest, inlet_bin, child_env):
    data = stream_input([rec(i) for i in range(30)], state_every=10)
    proc = ok(run_inlet(base_cfg(dest, batch_max_rows=10), data))
    last = stdout_states(proc)[-1]
    assert last == {"pos": 30}
    hist = DeltaTable(str(dest / "public-t")).history()
    assert hist[0]["inlet.state"] == last
    p = subprocess.run([str(inlet_bin), "state", str(dest / "public-t")], capture_output=True,
                       env=child_env(), timeout=60)
    assert p.returncode == 0, explain(p)
    assert json.loads(p.stdout) == last
    readers_agree(dest / "public-t")


def test_new_nullable_column_is_added(run_inlet, dest):
    ok(run_inlet(base_cfg(dest), stream_input([rec(1)])))
    wider = json.loads(json.dumps(SCHEMA))
    wider["properties"]["extra"] = {"type": ["null", "integer"]}
    ok(run_inlet(base_cfg(dest), stream_input([rec(2, extra=7)], schema=wider)))
    rows = {r["id"]: r for r in delta_rows(dest / "public-t", ["id", "extra"])}
    assert rows == {1: {"id": 1, "extra": None}, 2: {"id": 2, "extra": 7}}
    assert duck(dest / "public-t", "SELECT id, extra FROM TABLE ORDER BY id") == [
        {"id": 1, "extra": None}, {"id": 2, "extra": 7}]


def test_incompatible_change_names_column_and_types(run_inlet, dest):
    ok(run_inlet(base_cfg(dest), stream_input([rec(1)])))
    changed = json.loads(json.dumps(SCHEMA))
    changed["properties"]["flag"] = {"type": ["null", "string"]}
    proc = run_inlet(base_cfg(dest), stream_input([rec(2, flag="yes")], schema=changed))
    assert proc.returncode == 5, explain(proc)
    err = err_text(proc)
    assert "'flag'" in err and "boolean" in err and "string" in err, err
    assert stdout_states(proc) == []
    # overwrite mode with schema_mode: overwrite replaces the schema
    ok(run_inlet(base_cfg(dest, mode="overwrite", schema_mode="overwrite"),
                 stream_input([rec(3, flag="yes")], schema=changed)))
    t = DeltaTable(str(dest / "public-t")).to_pyarrow_table()
    assert t.schema.field("flag").type == pa.string() and t.column("id").to_pylist() == [3]
    assert duck(dest / "public-t", "SELECT id, flag FROM TABLE") == [{"id": 3, "flag": "yes"}]


# ------------------------------------------------------------------ crash, concurrency


def _messages(n_keys=60, n_records=600, seed=3):
    """A deterministic change stream: upserts and deletes over a small key space."""
    rnd = random.Random(seed)
    msgs = []
    for n in range(1, n_records + 1):
        k = rnd.randrange(n_keys)
        msgs.append(rec(k, name=f"v{n}", deleted=rnd.random() < 0.1))
    return msgs


def _run_from(inlet_bin, cfg_path, child_env, msgs, start, kill_after=None):
    """Feeds messages after position `start` slowly; kills the process after `kill_after` s.
    Returns (exit code, STATE values printed)."""
    body = [schema_msg("public-t", SCHEMA, key_properties=("id",))]
    for n in range(start + 1, len(msgs) + 1):
        body.append(record_msg("public-t", msgs[n - 1]))
        if n % 20 == 0 or n == len(msgs):
            body.append(state_msg({"pos": n}))
    p = subprocess.Popen([str(inlet_bin), "load", "--config", str(cfg_path)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=child_env())
    states = []
    t = threading.Thread(target=lambda: states.extend(json.loads(x) for x in p.stdout), daemon=True)
    t.start()
    deadline = time.monotonic() + (kill_after if kill_after is not None else 1e9)
    try:
        for i in range(0, len(body), 25):
            p.stdin.write(lines(*body[i:i + 25]))
            p.stdin.flush()
            time.sleep(0.02)
            if time.monotonic() >= deadline:
                break
        if kill_after is None:
            p.stdin.close()
        else:
            time.sleep(max(0.0, deadline - time.monotonic()))
            p.send_signal(signal.SIGKILL)
    except BrokenPipeError:
        pass
    rc = p.wait(timeout=120)
    t.join(timeout=10)
    return rc, states


def test_merge_survives_sigkill_at_random_points(inlet_bin, tmp_path, child_env):
    msgs = _messages()
    clean_dir = tmp_path / "clean"
    crash_dir = tmp_path / "crash"
    for d in (clean_dir, crash_dir):
        (tmp_path / f"{d.name}.json").write_text(json.dumps(
            base_cfg(d, mode="merge", hard_delete=True, batch_max_rows=30)))
    rc, _ = _run_from(inlet_bin, tmp_path / "clean.json", child_env, msgs, 0)
    assert rc == 0
    rnd = random.Random(11)
    pos, kills = 0, 0
    while kills < 20:
        rc, states = _run_from(inlet_bin, tmp_path / "crash.json", child_env, msgs, pos,
                               kill_after=rnd.uniform(0.05, 0.6))
        if states:
            pos = states[-1]["pos"]
        if rc == 0:
            pos = 0 if pos == len(msgs) else pos  # finished: start over to crash again
        else:
            kills += 1
    rc, _ = _run_from(inlet_bin, tmp_path / "crash.json", child_env, msgs, pos)
    assert rc == 0
    assert delta_rows(crash_dir / "public-t") == delta_rows(clean_dir / "public-t")
    readers_agree(crash_dir / "public-t")
    assert duck(crash_dir / "public-t", "SELECT count(*) AS n FROM TABLE") == \
        duck(clean_dir / "public-t", "SELECT count(*) AS n FROM TABLE")


def test_four_processes_append_to_one_table_on_s3(inlet_bin, tmp_path, child_env):
    prefix = unique("concurrent")
    procs = []
    for w in range(4):
        cfg = tmp_path / f"c{w}.json"
        cfg.write_text(json.dumps(_cfg("moto", prefix, tmp_path, batch_max_rows=50, table="t")))
        data = stream_input([rec(w * 1000 + i) for i in range(250)], stream=f"w{w}")
        p = subprocess.Popen([str(inlet_bin), "load", "--config", str(cfg)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
        procs.append((p, data))
    for p, data in procs:
        p.stdin.write(data)
        p.stdin.close()
    for p, _ in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-3000:]
    path = _table_path("moto", prefix, tmp_path, table="t")
    t = DeltaTable(str(path))
    ops = [h["operation"] for h in t.history()]
    # 4 processes x 5 flushes, every commit present, and each process's final-STATE commit
    assert ops.count("WRITE") == 20 and ops.count("STREAMING UPDATE") == 4, ops
    assert t.version() == 23
    ids = sorted(r["id"] for r in delta_rows(path, ["id"]))
    assert ids == sorted(w * 1000 + i for w in range(4) for i in range(250))
    readers_agree(path)


# ------------------------------------------------------------------ maintenance, Mage keys


def test_optimize_vacuum_history_and_checkpoints(run_inlet, dest, inlet_bin, child_env):
    # 105 one-row commits: a checkpoint at version 100, and many small files to compact
    ok(run_inlet(base_cfg(dest, batch_max_rows=1), stream_input([rec(i) for i in range(105)])))
    path = dest / "public-t"
    assert list((path / "_delta_log").glob("*.checkpoint.parquet")), "no checkpoint after 105 commits"
    assert (path / "_delta_log" / "_last_checkpoint").is_file()

    def inlet(*args):
        p = subprocess.run([str(inlet_bin), *map(str, args)], capture_output=True,
                           env=child_env(), timeout=300)
        assert p.returncode == 0, explain(p)
        return p

    hist = [json.loads(x) for x in inlet("history", path, "--limit", "3").stdout.splitlines()]
    assert len(hist) == 3 and hist[1]["operation"] == "WRITE"
    # the run ends with a commit recording its final STATE
    assert hist[0]["operation"] == "STREAMING UPDATE" and hist[0]["inlet.state"] == {"pos": 105}
    m = json.loads(inlet("optimize", path).stdout)
    assert m["files_removed"] == 105 and m["files_added"] >= 1
    assert sorted(r["id"] for r in delta_rows(path, ["id"])) == list(range(105))
    dry = inlet("vacuum", path, "--retain-hours", "0", "--dry-run")
    would = [x for x in dry.stdout.decode().splitlines() if x.startswith("would delete")]
    assert len(would) == 105
    assert len(list(path.glob("*.parquet"))) >= 105  # dry run deleted nothing
    inlet("vacuum", path, "--retain-hours", "0")
    assert len(list(path.glob("*.parquet"))) == m["files_added"]
    assert sorted(r["id"] for r in delta_rows(path, ["id"])) == list(range(105))
    zo = json.loads(inlet("optimize", path, "--zorder", "region,id").stdout)
    assert zo["files_added"] >= 1
    readers_agree(path)


def test_mage_delta_keys(run_inlet, tmp_path):
    """Mage's delta_lake_s3 keys (bucket, object_key_path, table, mode, aws_*) and
    delta_lake_azure keys (account_name, access_key, table_uri, mode) as they are."""
    prefix = unique("mage-delta")
    s3 = backend_config("moto", "x")
    cfg = {k: v for k, v in s3.items() if k != "destination"}
    cfg.update({"bucket": "inlet-test", "object_key_path": prefix, "table": "orders",
                "mode": "overwrite", "file_type": "delta"})
    ok(run_inlet(cfg, stream_input([rec(i) for i in range(5)])))
    orders = _table_path("moto", prefix, tmp_path, table="orders")
    assert len(delta_rows(orders)) == 5
    readers_agree(orders)
    prefix = unique("mage-delta-az")
    cfg = {"account_name": "devstoreaccount1", "access_key": server_env("INLET_AZURITE_KEY"),
           "azure_use_emulator": True, "format": "delta",
           "table_uri": f"abfss://inlet-test@devstoreaccount1.dfs.core.windows.net/{prefix}/tbl",
           "mode": "append"}
    proc = ok(run_inlet(cfg, stream_input([rec(i) for i in range(7)])))
    assert_no_secrets(proc)
    tbl = _table_path("azurite", prefix, tmp_path, table="tbl")
    assert len(delta_rows(tbl)) == 7
    readers_agree(tbl)


def test_delta_config_errors(run_inlet, dest):
    proc = run_inlet(base_cfg(dest, partition_keys=["ts:year=%Y"]), stream_input([rec(1)]))
    assert proc.returncode == 3 and "partition_keys" in err_text(proc)
    proc = run_inlet({"destination": str(dest), "mode": "merge"}, stream_input([rec(1)]))
    assert proc.returncode == 3 and "format: delta" in err_text(proc)


def test_activate_version_removes_rows_of_earlier_versions(run_inlet, dest):
    """Full-table replication: records carry `version`; ACTIVATE_VERSION at the end of a
    version's load removes the rows of earlier versions (and rows without one)."""
    def load(version, ids, activate_first=False):
        msgs = [schema_msg("public-t", SCHEMA, key_properties=("id",))]
        if activate_first:
            msgs.append(json.dumps({"type": "ACTIVATE_VERSION", "stream": "public-t",
                                    "version": version}))
        for i in ids:
            msgs.append(json.dumps({"type": "RECORD", "stream": "public-t", "record": rec(i),
                                    "version": version}))
        msgs.append(json.dumps({"type": "ACTIVATE_VERSION", "stream": "public-t",
                                "version": version}))
        msgs.append(state_msg({"version": version}))
        return ok(run_inlet({"destination": str(dest), "format": "delta", "batch_max_rows": 2},
                            lines(*msgs)))

    load(1700000000001, range(1, 6), activate_first=True)
    t = DeltaTable(str(dest / "public-t")).to_pyarrow_table()
    assert sorted(t.column("id").to_pylist()) == [1, 2, 3, 4, 5]
    assert t.schema.field("_sdc_table_version").type == pa.int64()
    load(1700000000002, range(3, 8))
    t = DeltaTable(str(dest / "public-t")).to_pyarrow_table()
    assert sorted(t.column("id").to_pylist()) == [3, 4, 5, 6, 7]
    assert set(t.column("_sdc_table_version").to_pylist()) == {1700000000002}
    ops = [h["operation"] for h in DeltaTable(str(dest / "public-t")).history()]
    assert "DELETE" in ops
    d = duck(dest / "public-t", "SELECT count(*) AS n FROM TABLE")
    assert d[0]["n"] == 5


def test_table_uri_is_one_table(run_inlet, dest):
    """Mage's table_uri names one table: two streams into it are refused, not mixed."""
    cfg = {"table_uri": str(dest / "one"), "format": "delta"}
    data = lines(schema_msg("a", SCHEMA), record_msg("a", rec(1)),
                 schema_msg("b", SCHEMA), record_msg("b", rec(2)))
    proc = run_inlet(cfg, data)
    assert proc.returncode == 5, explain(proc)
    assert "table_uri names one table" in err_text(proc)


def test_maintenance_on_a_missing_table_creates_nothing(inlet_bin, tmp_path, child_env):
    missing = tmp_path / "no" / "such" / "table"
    for cmd in ("state", "history", "optimize"):
        p = subprocess.run([str(inlet_bin), cmd, str(missing)], capture_output=True,
                           env=child_env(), timeout=60)
        assert p.returncode == 5 and "no such folder" in err_text(p), explain(p)
    assert not (tmp_path / "no").exists()
