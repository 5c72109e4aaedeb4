"""Delta data files written by inlet's own encoder (issue 15): statistics every reader can
skip files on without losing rows, loads killed at random points that re-run from their last
STATE, sixteen writers on one table, checkpoints, and tables inlet refuses to write."""

from __future__ import annotations

import json
import random
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, QueryBuilder

from delta_helpers import duck
from inlet_helpers import duck_rows, lines, record_msg, schema_msg, state_msg
from storage_helpers import fetch, unique
from test_delta import _cfg, _run_from, base_cfg, delta_rows, readers_agree, rec, stream_input
from test_export import explain, export, psql, schema  # noqa: F401 (fixtures)

# ------------------------------------------------------------------ statistics

STATS_DDL = """
CREATE TABLE {s}.st (id bigint PRIMARY KEY, i2 smallint, i4 integer, n12 numeric(12,2),
  n38 numeric(38,10), d date, ts timestamp, tz timestamptz, t text, b boolean);
INSERT INTO {s}.st
SELECT g,
  CASE WHEN g % 7 = 0 THEN NULL ELSE (g % 30000 - 15000)::smallint END,
  CASE WHEN g % 11 = 0 THEN NULL ELSE g * 3 - 20000 END,
  CASE WHEN g % 13 = 0 THEN NULL ELSE (g * 1.25 - 9000)::numeric(12,2) END,
  CASE WHEN g % 17 = 0 THEN NULL ELSE g * 1000000.0000000001 END,
  CASE WHEN g % 19 = 0 THEN NULL ELSE date '1965-01-01' + g END,
  CASE WHEN g % 23 = 0 THEN NULL ELSE timestamp '1969-12-31 23:00:00' + g * interval '1.000123 second' END,
  CASE WHEN g % 29 = 0 THEN NULL ELSE timestamptz '2024-03-10 01:00:00+00' + g * interval '37.5 minute' END,
  CASE WHEN g % 31 = 0 THEN NULL ELSE 'k' || lpad(g::text, 6, '0') END,
  CASE WHEN g % 5 = 0 THEN NULL ELSE g % 3 = 0 END
FROM generate_series(1, 300000) g;
"""

# predicates a reader can skip files on, over every type
PREDICATES = [
    "id = 12345", "id < 150", "id > 19990", "i2 = -14990", "i2 < -14000", "i2 IS NULL",
    "i4 > 59000", "i4 = -19997", "i4 IS NULL", "n12 = CAST('1.25' AS DECIMAL(12,2))",
    "n12 < CAST('-8990' AS DECIMAL(12,2))", "n12 > CAST('15990.00' AS DECIMAL(12,2))",
    "n38 = CAST('4000000.0000000004' AS DECIMAL(38,10))",
    "n38 > CAST('299999000000' AS DECIMAL(38,10))", "n38 IS NULL", "d = DATE '1980-01-01'",
    "d < DATE '1965-02-01'", "d > DATE '2019-01-01'", "d IS NULL",
    "ts < TIMESTAMP '1970-01-01 00:00:00'", "ts = TIMESTAMP '1970-01-01 02:25:48.518681'",
    "ts > TIMESTAMP '1970-01-01 04:30:00'", "ts IS NULL",
    "tz > TIMESTAMPTZ '2024-12-01 00:00:00+00'", "tz = TIMESTAMPTZ '2024-03-10 03:30:00+00'",
    "tz < TIMESTAMPTZ '2024-03-11 00:00:00+00'", "tz IS NULL",
    "t = 'k010000'", "t < 'k000100'", "t > 'k019900'", "t IS NULL", "b IS NULL", "b = true",
]


def _arrow_stats(col: pa.ChunkedArray):
    valid = col.drop_null()
    if len(valid) == 0:
        return None, None, col.null_count
    mm = pc.min_max(valid)
    return mm["min"].as_py(), mm["max"].as_py(), col.null_count


def _naive(t):
    """A timestamp as naive UTC (others unchanged)."""
    if isinstance(t, datetime) and t.tzinfo is not None:
        return t.astimezone(timezone.utc).replace(tzinfo=None)
    return t


def _ms(t: datetime, up: bool) -> datetime:
    """A timestamp to the millisecond, rounded down (a min) or up (a max), as the stats hold it."""
    floor = t.replace(microsecond=t.microsecond // 1000 * 1000)
    return floor + timedelta(milliseconds=1) if up and floor != t else floor


def test_statistics_match_each_file_and_readers_that_skip_files_lose_no_rows(
        pg_url, schema, export, tmp_path):
    psql(pg_url, STATS_DDL.format(s=schema))
    lake, files = tmp_path / "lake", tmp_path / "files"
    for out, fmt in ((lake, "delta"), (files, "parquet")):
        p = export("--source", pg_url, "--output-dir", out, "-i", f"{schema}.st",
                   "--format", fmt, "--max-file-rows", "30000")
        assert p.returncode == 0, explain(p)
    path = lake / schema / "st"
    dt = DeltaTable(str(path))
    adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
    assert len(adds) >= 8, "many files, so that skipping matters"
    # every add action's statistics are those of its file, read back with pyarrow
    for a in adds:
        data = pq.read_table(path / a["path"])
        assert a["num_records"] == data.num_rows
        for c in ["id", "i2", "i4", "n12", "n38", "d", "ts", "tz", "t"]:
            lo, hi, nulls = _arrow_stats(data[c])
            assert a[f"null_count.{c}"] == nulls, (a["path"], c)
            if c in ("ts", "tz") and lo is not None:
                lo, hi = _ms(_naive(lo), False), _ms(_naive(hi), True)
            got = tuple(_naive(a.get(f"{m}.{c}")) for m in ("min", "max"))
            assert got == (lo, hi), (a["path"], c, got, lo, hi)
    glob = f"{files / schema / 'st'}/**/*.parquet"
    for pred in PREDICATES:
        want = duck_rows(f"SELECT count(*), coalesce(sum(id), 0) FROM read_parquet('{glob}') WHERE {pred}")[0]
        got = duck(path, f"SELECT count(*) AS n, coalesce(sum(id), 0) AS s FROM TABLE WHERE {pred}")[0]
        assert (got["n"], int(got["s"])) == (want[0], int(want[1])), f"DuckDB delta_scan, {pred}"
        q = pa.table(QueryBuilder().register("st", dt).execute(
            f"SELECT count(*) AS n, coalesce(sum(id), 0) AS s FROM st WHERE {pred.replace('TIMESTAMPTZ', 'TIMESTAMP')}"
        ).read_all()).to_pylist()[0]
        assert (q["n"], int(q["s"])) == (want[0], int(want[1])), f"deltalake, {pred}"
    assert want[0] >= 0
    _polars_agrees(path, files / schema / "st")


def _polars_agrees(delta_path: Path, parquet_dir: Path):
    """Polars (`pl.scan_delta`, which prunes on the statistics) finds the rows pyarrow finds."""
    pl = pytest.importorskip("polars")
    lf = pl.scan_delta(str(delta_path))
    ref = pl.read_parquet(str(parquet_dir / "**" / "*.parquet"))
    cases = [pl.col("id") == 12345, pl.col("i4") > 59000, pl.col("n12") < Decimal("-8990"),
             pl.col("d") > datetime(2019, 1, 1).date(), pl.col("t") < "k000100",
             pl.col("ts") == datetime(1970, 1, 1, 2, 25, 48, 518681), pl.col("i2").is_null(),
             pl.col("tz") > datetime(2024, 12, 1, tzinfo=timezone.utc)]
    for c in cases:
        got = lf.filter(c).select(pl.len(), pl.col("id").sum()).collect().row(0)
        want = ref.filter(c).select(pl.len(), pl.col("id").sum()).row(0)
        assert got == want, str(c)


# ------------------------------------------------------------------ SIGKILL, re-run from STATE


def _partition_messages(n_days=12, per_day=40, seed=5):
    """Records by day; a partition-overwrite tap sends whole days and a STATE after each day."""
    rnd = random.Random(seed)
    out = []
    for d in range(n_days):
        for k in range(per_day):
            out.append((rec(d * 1000 + k, region=f"r{d:02d}", name=f"v{rnd.random():.6f}"),
                        k == per_day - 1))
    return out


def _run_days(inlet_bin, cfg_path, child_env, msgs, start_day, kill_after=None):
    """Feeds days from `start_day` (a STATE after each day); returns (rc, last day done)."""
    import signal
    import threading
    import time
    body = [schema_msg("public-t", _SCHEMA_P, key_properties=("id",))]
    day = 0
    for r, last in msgs:
        if day >= start_day:
            body.append(record_msg("public-t", r))
            if last:
                body.append(state_msg({"day": day + 1}))
        day += last
    p = subprocess.Popen([str(inlet_bin), "load", "--config", str(cfg_path)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=child_env())
    states = []
    t = threading.Thread(target=lambda: states.extend(json.loads(x) for x in p.stdout), daemon=True)
    t.start()
    deadline = time.monotonic() + (kill_after if kill_after is not None else 1e9)
    try:
        for i in range(0, len(body), 25):
            p.stdin.write(lines(*body[i:i + 25]))
            p.stdin.flush()
            time.sleep(0.01)
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
    return rc, (states[-1]["day"] if states else start_day)


_SCHEMA_P = {"type": "object", "properties": {
    "id": {"type": "integer"}, "region": {"type": "string"}, "name": {"type": ["null", "string"]},
    "amount": {"type": ["null", "number"], "multipleOf": 0.01}}, "required": ["id", "region"]}


def test_partition_overwrite_killed_at_50_points_and_re_run_from_state_equals_a_clean_run(
        inlet_bin, tmp_path, child_env):
    msgs = [({k: r[k] for k in ("id", "region", "name", "amount")}, last)
            for r, last in _partition_messages()]
    clean, crash = tmp_path / "clean", tmp_path / "crash"
    for d in (clean, crash):
        # an earlier load holds every day with other rows: each day must be replaced whole
        (tmp_path / f"{d.name}.json").write_text(json.dumps(base_cfg(
            d, mode="overwrite", overwrite_partitions=True, partition_keys=["region"],
            batch_max_rows=15)))
        old = [({"id": 900000 + i, "region": f"r{i % 14:02d}", "name": "old", "amount": 1}, i == 49)
               for i in range(50)]
        rc, _ = _run_days(inlet_bin, tmp_path / f"{d.name}.json", child_env, old, 0)
        assert rc == 0
    rc, _ = _run_days(inlet_bin, tmp_path / "clean.json", child_env, msgs, 0)
    assert rc == 0
    rnd = random.Random(17)
    day, kills = 0, 0
    while kills < 50:
        rc, day = _run_days(inlet_bin, tmp_path / "crash.json", child_env, msgs, day,
                            kill_after=rnd.uniform(0.02, 0.4))
        if rc == 0:
            day = 0  # finished: start over, to be killed again
        else:
            kills += 1
    rc, _ = _run_days(inlet_bin, tmp_path / "crash.json", child_env, msgs, day)
    assert rc == 0
    want = delta_rows(clean / "public-t")
    assert delta_rows(crash / "public-t") == want
    # days 12 and 13 were never replaced: their old rows stay; the others hold the new rows only
    assert {r["region"] for r in want if r["name"] == "old"} == {"r12", "r13"}
    assert duck(crash / "public-t", "SELECT count(*) AS n FROM TABLE")[0]["n"] == len(want)
    ops = [h["operation"] for h in DeltaTable(str(crash / "public-t")).history()]
    assert "WRITE" in ops


def test_merge_killed_at_50_points_and_re_run_from_state_equals_a_clean_run(
        inlet_bin, tmp_path, child_env):
    from test_delta import _messages
    msgs = _messages(n_keys=80, n_records=900, seed=9)
    clean, crash = tmp_path / "clean", tmp_path / "crash"
    for d in (clean, crash):
        (tmp_path / f"{d.name}.json").write_text(json.dumps(
            base_cfg(d, mode="merge", hard_delete=True, batch_max_rows=30)))
    assert _run_from(inlet_bin, tmp_path / "clean.json", child_env, msgs, 0)[0] == 0
    rnd = random.Random(23)
    pos, kills = 0, 0
    while kills < 50:
        rc, states = _run_from(inlet_bin, tmp_path / "crash.json", child_env, msgs, pos,
                               kill_after=rnd.uniform(0.02, 0.5))
        if states:
            pos = states[-1]["pos"]
        if rc == 0:
            pos = 0 if pos == len(msgs) else pos
        else:
            kills += 1
    assert _run_from(inlet_bin, tmp_path / "crash.json", child_env, msgs, pos)[0] == 0
    assert delta_rows(crash / "public-t") == delta_rows(clean / "public-t")
    readers_agree(crash / "public-t")


# ------------------------------------------------------------------ many writers


@pytest.mark.parametrize("backend", ["moto", "azurite"])
def test_sixteen_writers_append_to_one_table(backend, inlet_bin, tmp_path, child_env):
    prefix = unique("writers16")
    procs = []
    n, per, batch = 16, 60, 20
    for w in range(n):
        cfg = tmp_path / f"c{w}.json"
        cfg.write_text(json.dumps(_cfg(backend, prefix, tmp_path, batch_max_rows=batch, table="t")))
        data = stream_input([rec(w * 1000 + i) for i in range(per)], stream=f"w{w}")
        procs.append((subprocess.Popen([str(inlet_bin), "load", "--config", str(cfg)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=child_env()), data))
    for p, data in procs:
        p.stdin.write(data)
        p.stdin.close()
    for p, _ in procs:
        assert p.wait(timeout=600) == 0, p.stderr.read().decode()[-3000:]
    path = fetch(backend, prefix, tmp_path / "mirror") / "t"
    t = DeltaTable(str(path))
    history = t.history()
    ops = [h["operation"] for h in history]
    # every flush one commit, and each writer's final-STATE commit
    assert ops.count("WRITE") == n * per // batch and ops.count("STREAMING UPDATE") == n, ops
    assert t.version() == len(history) - 1
    # no file lost or committed twice: every add is a distinct, existing file with its rows
    adds = pa.table(t.get_add_actions(flatten=True)).to_pylist()
    assert len({a["path"] for a in adds}) == len(adds) == n * per // batch
    ids = sorted(r["id"] for r in t.to_pyarrow_table(columns=["id"]).to_pylist())
    assert ids == sorted(w * 1000 + i for w in range(n) for i in range(per))
    assert duck(path, "SELECT count(*) AS n FROM TABLE")[0]["n"] == len(ids)
    pl = pytest.importorskip("polars")
    assert pl.read_delta(str(path)).height == len(ids)


def test_checkpoints_every_100_commits_and_log_cleanup_only_with_them(run_inlet, tmp_path):
    dest = tmp_path / "lake"
    ok_ = run_inlet(base_cfg(dest, batch_max_rows=1), stream_input([rec(i) for i in range(104)]))
    assert ok_.returncode == 0, ok_.stderr.decode()[-2000:]
    path = dest / "public-t"
    log = path / "_delta_log"
    assert json.loads((log / "_last_checkpoint").read_text())["version"] == 99
    assert (log / f"{99:020}.checkpoint.parquet").exists()
    # the default retention (30 days) keeps every commit file
    assert len(list(log.glob("*.json"))) == 105
    # every reader reads the table through the checkpoint
    assert DeltaTable(str(path)).to_pyarrow_dataset().count_rows() == 104
    assert duck(path, "SELECT count(*) AS n FROM TABLE")[0]["n"] == 104
    pl = pytest.importorskip("polars")
    assert pl.read_delta(str(path)).height == 104
    # a table that checkpoints every 10 commits and keeps no expired log: commit files go at
    # checkpoints, and only then (the commits after the last checkpoint stay)
    short = dest / "public-short"
    from deltalake import Field, Schema
    DeltaTable.create(str(short), Schema([Field("id", "long"), Field("region", "string")]),
                      configuration={"delta.checkpointInterval": "10",
                                     "delta.logRetentionDuration": "interval 0 seconds"})
    p = run_inlet(base_cfg(dest, batch_max_rows=1),
                  lines(schema_msg("public-short", _SCHEMA_P),
                        *[record_msg("public-short", {"id": i, "region": "A"}) for i in range(25)]))
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    versions = sorted(int(f.name[:20]) for f in (short / "_delta_log").glob("*.json"))
    assert versions[0] == 19 and versions[-1] == 25, versions
    assert pa.table(DeltaTable(str(short)).to_pyarrow_table()).num_rows == 25


# ------------------------------------------------------------------ refused tables


def _make_table(path: Path, **kw):
    from deltalake import write_deltalake
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "region": ["A", "B"]})
    write_deltalake(str(path), data, **kw)
    return DeltaTable(str(path))


@pytest.mark.parametrize("feature", ["constraint", "generated", "column_mapping"])
def test_tables_with_rules_inlet_cannot_honour_are_refused(feature, run_inlet, tmp_path):
    from deltalake import Field, Schema
    dest = tmp_path / "lake"
    path = dest / "public-t"
    if feature == "constraint":
        _make_table(path).alter.add_constraint({"id_positive": "id > 0"})
        want = "CHECK constraint (id_positive)"
    elif feature == "generated":
        DeltaTable.create(str(path), Schema([
            Field("id", "long"), Field("region", "string"),
            Field("id2", "long", metadata={"delta.generationExpression": "id * 2"})]))
        want = "generated column ('id2')"
    else:
        DeltaTable.create(str(path), Schema([Field("id", "long"), Field("region", "string")]),
                          configuration={"delta.columnMapping.mode": "name"})
        want = "column mapping"
    before = DeltaTable(str(path)).version()
    files = set(path.rglob("*.parquet"))
    p = run_inlet(base_cfg(dest), lines(schema_msg("public-t", _SCHEMA_P),
                                        record_msg("public-t", {"id": 3, "region": "C"})))
    assert p.returncode != 0
    err = p.stderr.decode()
    assert p.returncode == 5 and want in err and "write to a new table" in err, err[-2000:]
    assert DeltaTable(str(path)).version() == before
    assert set(path.rglob("*.parquet")) == files, "refused before any data file is written"
