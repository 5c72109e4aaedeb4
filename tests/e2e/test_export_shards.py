"""`inlet export --shard K/N`: four processes share one export of a 2M-row table and ten small
ones, at the same time, into one destination (a Delta table on an S3 server, moto, and on local disk,
plain files on local disk). Every row lands once, each shard's commit is in the table's log, and
the next export (a new --export-id) replaces the last one."""

from __future__ import annotations

import json
import subprocess

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from storage_helpers import assert_no_secrets, backend_config, fetch, unique
from test_export import explain, export, psql, schema  # noqa: F401 (fixtures)

SMALL = 10
BIG = 2_000_000


@pytest.fixture
def tables(pg_url, schema):
    psql(pg_url, f"CREATE TABLE {schema}.big (id int PRIMARY KEY, h text); "
                 f"INSERT INTO {schema}.big SELECT g, md5(g::text) FROM generate_series(1, {BIG}) g; "
                 + " ".join(f"CREATE TABLE {schema}.small_{i} AS SELECT g AS id FROM generate_series(1, {i + 1}) g;"
                            for i in range(SMALL)))
    return schema


def run_shards(inlet_bin, child_env, tmp_path, args, export_id, n=4):
    procs = []
    for k in range(1, n + 1):
        log = tmp_path / f"shard-{export_id}-{k}.log"
        procs.append((subprocess.Popen(
            [str(inlet_bin), "export", *map(str, args), "--shard", f"{k}/{n}", "--export-id", export_id,
             "--range-size", "8MB", "--run-log", str(tmp_path / f"runs-{k}.sqlite")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env()), log))
    for p, _ in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}"
        assert_no_secrets(subprocess.CompletedProcess(p.args, p.returncode, out, err))


def check_delta(root, schema, export_id, n=4):
    for name, rows in [("big", BIG)] + [(f"small_{i}", i + 1) for i in range(SMALL)]:
        t = DeltaTable(str(root / schema / name))
        ids = t.to_pyarrow_table(columns=["id"]).column("id").to_pylist()
        assert len(ids) == rows and len(set(ids)) == rows, f"{name}: {len(ids)} rows, {len(set(ids))} ids"
        copies = [h["inlet.copy"] for h in t.history() if "inlet.copy" in h]
        copies = [json.loads(c) if isinstance(c, str) else c for c in copies]
        mine = [c["shard"] for c in copies if c["shard"]["id"] == export_id]
        if name == "big":
            # the big table's ranges went to every shard, and each committed its share
            assert sorted(s["k"] for s in mine) == list(range(1, n + 1))
        else:
            assert len(mine) == 1


# moto, not s3s-fs: s3s-fs's If-None-Match is not atomic (of six concurrent conditional puts
# of one key, several succeed), so concurrent Delta commits there can overwrite each other;
# S3 and moto refuse all but one
@pytest.mark.parametrize("backend", ["local", "moto"])
def test_four_shards_into_one_delta_destination(backend, tables, pg_url, inlet_bin, child_env,
                                                 tmp_path):
    prefix = unique("shards")
    cfg = backend_config(backend, prefix, local_root=tmp_path)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    args = ["--source", pg_url, "-i", f"{tables}.*", "--format", "delta", "--config", cfg_file]
    for export_id in ("day-1", "day-2"):  # the second export replaces the first
        run_shards(inlet_bin, child_env, tmp_path, args, export_id)
        root = tmp_path / prefix if backend == "local" else fetch(backend, prefix, tmp_path / f"m-{export_id}")
        check_delta(root, tables, export_id)
    # an id used again is refused: its shards already committed
    p = subprocess.run([str(inlet_bin), "export", *map(str, args), "--shard", "1/4", "--export-id", "day-2",
                        "--range-size", "8MB", "--run-log", "none"],
                       capture_output=True, text=True, env=child_env(), timeout=600)
    assert p.returncode == 7 and "own --export-id" in p.stdout + p.stderr, explain(p)


def test_four_shards_of_plain_files_complete_each_table_once(tables, inlet_bin, child_env, pg_url,
                                                             tmp_path):
    out = tmp_path / "lake"
    args = ["--source", pg_url, "-i", f"{tables}.*", "--output-dir", out]
    for export_id in ("run-1", "run-2"):
        run_shards(inlet_bin, child_env, tmp_path, args, export_id)
        for name, rows in [("big", BIG)] + [(f"small_{i}", i + 1) for i in range(SMALL)]:
            d = out / tables / name
            assert (d / "_SUCCESS").exists(), name
            m = json.loads((d / "_manifest.json").read_text())
            listed = sorted(x["path"].rsplit("/", 1)[1] for x in m["parts"])
            assert listed == sorted(p.name for p in d.glob("part-*")), f"{name}: stray parts"
            ids = [i for p in sorted(d.glob("part-*")) for i in pq.read_table(p).column("id").to_pylist()]
            assert len(ids) == rows == m["rows"] and len(set(ids)) == rows
            assert m["shard"]["id"] == export_id and m["shard"]["n"] == 4
        # part names never collided: numbers are unique across the shards
        big = sorted(p.name for p in (out / tables / "big").glob("part-*"))
        assert len(big) == len(set(big)) >= 4


def test_a_shard_needs_an_export_id_and_incremental_tables_go_whole_to_one_shard(
        tables, pg_url, export, tmp_path):
    p = export("--source", pg_url, "-i", f"{tables}.small_1", "--output-dir", tmp_path / "x", "--shard", "1/2")
    assert p.returncode == 2 and "--export-id" in p.stderr, explain(p)
    out = tmp_path / "inc"
    owners = []
    for k in (1, 2):
        p = export("--source", pg_url, "-i", f"{tables}.big", "--output-dir", out, "--run-log", "none",
                   "--shard", f"{k}/2", "--export-id", "i1", "--incremental", f"{tables}.big:id")
        assert p.returncode == 0, explain(p)
        owners.append(f"{tables}.big" in p.stdout)
    assert owners.count(True) == 1
    m = json.loads((out / tables / "big" / "_manifest.json").read_text())
    assert m["rows"] == BIG and m["incremental"]["watermark"] == str(BIG)


def test_shards_share_one_snapshot_that_a_session_holds(tables, pg_url, inlet_bin, child_env,
                                                        tmp_path):
    holder = subprocess.Popen(["psql", pg_url, "-X", "-q", "-At"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT pg_export_snapshot();\n")
    holder.stdin.flush()
    snap = holder.stdout.readline().strip()
    # written after the snapshot: no shard sees it
    psql(pg_url, f"INSERT INTO {tables}.small_0 SELECT g FROM generate_series(100, 199) g; "
                 f"DELETE FROM {tables}.big WHERE id <= 1000")
    out = tmp_path / "lake"
    args = ["--source", pg_url, "-i", f"{tables}.*", "--output-dir", out, "--snapshot-id", snap]
    run_shards(inlet_bin, child_env, tmp_path, args, "snap-1", n=2)
    holder.stdin.write("COMMIT;\n")
    holder.stdin.close()
    holder.wait(timeout=30)
    for name, rows in [("big", BIG), ("small_0", 1)]:
        ids = [i for p in sorted((out / tables / name).glob("part-*"))
               for i in pq.read_table(p).column("id").to_pylist()]
        assert len(ids) == rows and len(set(ids)) == rows, name
    # once the session ends, the snapshot is gone: the message says what it needs
    p = subprocess.run([str(inlet_bin), "export", *map(str, args), "--run-log", "none"],
                       capture_output=True, text=True, env=child_env(), timeout=120)
    assert p.returncode == 6 and "keep its transaction open" in p.stderr, explain(p)
