"""`inlet export --incremental`: watermarks fixed inside the run's snapshot, Delta increments
merged on the key (each row once), plain files that keep every run's parts, the run log's
watermarks, and `--resume` after a SIGKILL. Each lake is compared with the source table as psql
returns it, read by the deltalake package and DuckDB."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from deltalake import DeltaTable

from delta_helpers import duck
from test_export import explain, export, inlet_runs, psql, schema  # noqa: F401 (fixtures)


def source_rows(pg_url, table) -> list[tuple]:
    out = psql(pg_url, f"SELECT id, v, to_char(u AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
                       f"FROM {table} ORDER BY id")
    return [tuple(line.split("|")) for line in out.splitlines()]


def delta_rows(path) -> list[tuple]:
    t = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted(((str(r["id"]), r["v"], r["u"].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in t),
                  key=lambda r: int(r[0]))


def duck_ids(path) -> list[int]:
    return [r["id"] for r in duck(path, "SELECT id FROM TABLE ORDER BY id")]


class LateCommit:
    """A transaction that writes a row stamped with its start time (now()) and commits later:
    the row is older than the bound of a run that starts in between, yet that run cannot see it."""

    def __init__(self, pg_url, sql):
        self.p = subprocess.Popen(["psql", pg_url, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write(f"BEGIN; {sql}; SELECT 'ready';\n")
        self.p.stdin.flush()
        assert self.p.stdout.readline().strip() == "ready"

    def commit(self):
        self.p.stdin.write("COMMIT;\n")
        self.p.stdin.close()
        assert self.p.wait(timeout=30) == 0


def test_three_runs_of_inserts_updates_and_a_late_commit(pg_url, schema, export, tmp_path):
    t = f"{schema}.orders"
    psql(pg_url, f"CREATE TABLE {t} (id int PRIMARY KEY, v text, u timestamptz NOT NULL); "
                 f"CREATE INDEX ON {t} (u); "
                 f"INSERT INTO {t} SELECT g, 'v1', '2026-01-01'::timestamptz + g * interval '1 s' "
                 f"FROM generate_series(1, 1000) g")
    lake = tmp_path / "lake"
    log = tmp_path / "runs.sqlite"

    def run(dest, fmt, lag):
        spec = f"{t}:u:lag={lag}" if lag else f"{t}:u"
        p = export("--source", pg_url, "--output-dir", dest, "-i", t, "--format", fmt,
                   "--incremental", spec, "--run-log", log)
        assert p.returncode == 0, explain(p)
        return p

    dests = {("delta", 3600): lake / "delta", ("delta", 0): lake / "delta-nolag",
             ("parquet", 3600): lake / "files"}

    def run_all():
        return {k: run(d, k[0], k[1]) for k, d in dests.items()}

    run_all()
    want = source_rows(pg_url, t)
    assert delta_rows(dests[("delta", 3600)] / schema / "orders") == want
    # run 2: updates move u forward, inserts; a transaction opened now commits after the run
    psql(pg_url, f"UPDATE {t} SET v = 'v2', u = clock_timestamp() WHERE id <= 100; "
                 f"INSERT INTO {t} SELECT g, 'v1', clock_timestamp() FROM generate_series(1001, 1200) g")
    late = LateCommit(pg_url, f"INSERT INTO {t} VALUES (5000, 'late', now()); "
                              f"UPDATE {t} SET v = 'late', u = now() WHERE id = 500")
    time.sleep(0.2)
    psql(pg_url, f"UPDATE {t} SET v = 'v3', u = clock_timestamp() WHERE id = 1")
    p2 = run_all()
    late.commit()
    # run 2 could not see the late rows: the lake is the source as it was without them
    before_late = [r for r in source_rows(pg_url, t) if r[0] != "5000" and r[0] != "500"]
    got = [r for r in delta_rows(dests[("delta", 3600)] / schema / "orders") if r[0] != "500"]
    assert got == before_late
    # run 3: the lag re-reads the last hour below the watermark: the late rows arrive
    psql(pg_url, f"INSERT INTO {t} VALUES (6000, 'v1', clock_timestamp())")
    run_all()
    want = source_rows(pg_url, t)
    path = dests[("delta", 3600)] / schema / "orders"
    assert delta_rows(path) == want
    assert duck_ids(path) == [int(r[0]) for r in want]
    # without a lag the late commit is missed for good (the peers' bug the lag exists for)
    nolag = delta_rows(dests[("delta", 0)] / schema / "orders")
    assert ("5000", "late") not in [(r[0], r[1]) for r in nolag]
    assert len(nolag) == len(want) - 1
    # each Delta run was one commit that carries its watermark; the increments were merges
    hist = list(reversed(DeltaTable(str(path)).history()))
    assert [h["operation"] for h in hist] == ["CREATE OR REPLACE TABLE", "MERGE", "MERGE"]
    marks = [h["inlet.state"] for h in hist]
    high = psql(pg_url, f"SELECT max(u) AT TIME ZONE 'UTC' FROM {t}").strip()
    assert marks[-1]["column"] == "u" and marks[-1]["watermark"].startswith(high[:19])
    # plain files keep every version; the manifest says which run wrote which part and its bounds
    fdir = dests[("parquet", 3600)] / schema / "orders"
    m = json.loads((fdir / "_manifest.json").read_text())
    assert [r["kind"] for r in m["runs"]] == ["reload", "increment", "increment"]
    assert m["runs"][1]["low"] == m["runs"][0]["high"] and m["runs"][2]["low"] == m["runs"][1]["high"]
    assert m["runs"][1]["lag"] == 3600
    assert m["incremental"]["watermark"] == m["runs"][2]["high"]
    parts = sorted(p.name for p in fdir.glob("part-*.parquet"))
    assert parts == sorted(x["path"].rsplit("/", 1)[1] for x in m["parts"])
    assert len({x["run"] for x in m["parts"]}) == 3
    everything = [r for f in sorted(fdir.glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert len(everything) == m["rows"]
    versions = {(r["id"], r["v"]) for r in everything}
    assert {(1, "v1"), (1, "v3"), (5000, "late"), (500, "late"), (6000, "v1")} <= versions
    # the lag re-read rows appear again in plain files (documented)
    assert len(everything) > len(want)
    # the summary and the run log say the bounds
    assert "increment" not in p2[("delta", 3600)].stdout or "u (" in p2[("delta", 3600)].stdout


def test_the_run_log_and_inlet_runs_show_watermarks(pg_url, schema, export, inlet_bin, child_env,
                                                    tmp_path):
    t = f"{schema}.ev"
    psql(pg_url, f"CREATE TABLE {t} (id bigint PRIMARY KEY, n int NOT NULL); "
                 f"INSERT INTO {t} SELECT g, g FROM generate_series(1, 50) g")
    log = tmp_path / "runs.sqlite"
    base = ["--source", pg_url, "--output-dir", tmp_path / "lake", "-i", t, "--run-log", log,
            "--incremental", f"{t}:id"]
    p = export(*base)
    assert p.returncode == 0, explain(p)
    # the primary key's index serves a range of id: no warning
    assert "no index leads with" not in p.stderr
    psql(pg_url, f"INSERT INTO {t} SELECT g, g FROM generate_series(51, 60) g")
    p = export(*base)
    assert p.returncode == 0, explain(p)
    assert "id (50, 60]" in p.stdout

    def runs(*args):
        return inlet_runs(inlet_bin, child_env, log, *args)

    listed = json.loads(runs("--format", "json"))
    detail = json.loads(runs("show", listed[0]["run_id"], "--format", "json"))
    w = detail["table_list"][0]["watermark"]
    assert w == {"column": "id", "kind": "increment", "low": "50", "lag": 0, "high": "60"}
    assert detail["table_list"][0]["rows"] == 10
    first = json.loads(runs("show", listed[1]["run_id"], "--format", "json"))
    assert first["table_list"][0]["watermark"]["kind"] == "reload"
    assert first["table_list"][0]["watermark"]["low"] is None
    text = runs("show", listed[0]["run_id"])
    assert "increment id: 50 → 60" in text
    # --full reloads whole and records the watermark again
    p = export(*base, "--full")
    assert p.returncode == 0, explain(p)
    assert "id reload up to 60" in p.stdout
    m = json.loads((tmp_path / "lake" / schema / "ev" / "_manifest.json").read_text())
    assert m["rows"] == 60 and [r["kind"] for r in m["runs"]] == ["reload"]
    # a watermark on a column without an index is reported with the index to create
    p = export("--source", pg_url, "--output-dir", tmp_path / "lake2", "-i", t, "--run-log", log,
               "--incremental", f"{t}:n")
    assert p.returncode == 0, explain(p)
    assert "no index leads with \"n\"" in p.stderr and f"CREATE INDEX CONCURRENTLY ON {t} (\"n\")" in p.stderr
    # --dry-run says it too, with the bound it would read up to and the merge key
    p = export("--source", pg_url, "--output-dir", tmp_path / "lake3", "-i", t, "--run-log", "none",
               "--incremental", f"{t}:n", "--dry-run")
    assert p.returncode == 0, explain(p)
    assert "incremental on n up to 60 (lag 0, key id); NO INDEX leads with the column" in p.stdout
    assert not (tmp_path / "lake3").exists()


def test_bad_incremental_arguments_say_what_to_fix(pg_url, schema, export, tmp_path):
    t = f"{schema}.k"
    psql(pg_url, f"CREATE TABLE {t} (id int, v text, u timestamp NOT NULL DEFAULT now()); "
                 f"INSERT INTO {t} VALUES (1, 'a')")
    base = ["--source", pg_url, "--output-dir", tmp_path / "lake", "-i", t, "--run-log", "none"]
    for spec, says in [(f"{t}:nope", "has no column 'nope'"),
                       (f"{t}:v", "a watermark column is timestamp"),
                       ("k:u", "needs its schema"),
                       (f"{schema}.other:u", "not among the tables")]:
        p = export(*base, "--incremental", spec)
        assert p.returncode in (2, 3) and says in p.stderr, explain(p)
    # a Delta increment without a primary key: the message names --key
    delta = [*base, "--format", "delta", "--incremental", f"{t}:u"]
    assert export(*delta).returncode == 0
    psql(pg_url, f"INSERT INTO {t} VALUES (2, 'b')")
    p = export(*delta)
    assert p.returncode == 7 and f"--key {t}:column" in p.stdout + p.stderr, explain(p)
    p = export(*delta, "--key", f"{t}:id")
    assert p.returncode == 0, explain(p)
    assert [r["id"] for r in duck(tmp_path / "lake" / schema / "k", "SELECT id FROM TABLE ORDER BY id")] == [1, 2]
    # LakeXpress's spelling, appending
    psql(pg_url, f"UPDATE {t} SET u = now() + interval '1 minute' WHERE id = 2")
    p = export(*base, "--format", "delta", "--incremental_table", f"{t}:u:timestamp!append")
    assert p.returncode == 0, explain(p)
    assert sorted(r["id"] for r in duck(tmp_path / "lake" / schema / "k", "SELECT id FROM TABLE")) == [1, 2, 2]


def lake_state(dest, schema, tables, fmt):
    out = {}
    for name in tables:
        path = dest / schema / name
        if fmt == "delta":
            rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
            hist = DeltaTable(str(path)).history()
            mark = next(h["inlet.state"] for h in hist if "inlet.state" in h)
        else:
            m = json.loads((path / "_manifest.json").read_text())
            listed = {x["path"].rsplit("/", 1)[1] for x in m["parts"]}
            on_disk = {p.name for p in path.glob("part-*")}
            assert listed == on_disk, f"{name}: parts not in the manifest: {on_disk - listed}"
            assert (path / "_SUCCESS").exists()
            rows = [r for p in sorted(path.glob("part-*")) for r in pq.read_table(p).to_pylist()]
            mark = m["incremental"]
        out[name] = (sorted((r["id"], r["v"]) for r in rows), mark["watermark"])
    return out


def test_sigkill_at_20_points_then_resume_gives_a_clean_runs_lake(pg_url, schema, export,
                                                                   inlet_bin, child_env, tmp_path):
    names = ["big", "mid", "small"]
    for n, rows in zip(names, [300_000, 60_000, 500]):
        psql(pg_url, f"CREATE TABLE {schema}.{n} (id int PRIMARY KEY, v text, u bigint NOT NULL); "
                     f"CREATE INDEX ON {schema}.{n} (u); "
                     f"INSERT INTO {schema}.{n} SELECT g, 'v1', g FROM generate_series(1, {rows}) g")
    specs = [a for n in names for a in ("--incremental", f"{schema}.{n}:u")]

    def args(dest, log, fmt):
        return ["--source", pg_url, "--output-dir", str(dest), "-i", f"{schema}.*", "--format", fmt,
                "--run-log", str(log), "--jobs", "2", "--max-file-rows", "40000", *specs]

    rng = random.Random(14)
    points = {"delta": 14, "parquet": 6}
    fmt_of = [f for f, n in points.items() for _ in range(n)]
    bumps = 0
    nothing_started = 0
    for i, fmt in enumerate(fmt_of):
        # the base every attempt starts from: run 1 done; then the source changes
        base = tmp_path / f"base-{fmt}"
        if not base.exists():
            p = export(*args(base, tmp_path / f"base-{fmt}.sqlite", fmt))
            assert p.returncode == 0, explain(p)
        bumps += 1
        psql(pg_url, " ".join(
            f"UPDATE {schema}.{n} SET v = 'r{bumps}', u = u + 1000000 WHERE id % 7 = {bumps % 7}; "
            f"INSERT INTO {schema}.{n} VALUES ({1_000_000 + bumps}, 'new', {2_000_000 + bumps});"
            for n in names))
        clean, killed = tmp_path / f"clean-{i}", tmp_path / f"killed-{i}"
        subprocess.run(["cp", "-r", str(base), str(clean)], check=True)
        subprocess.run(["cp", "-r", str(base), str(killed)], check=True)
        start = time.time()
        p = export(*args(clean, tmp_path / f"clean-{i}.sqlite", fmt))
        assert p.returncode == 0, explain(p)
        took = time.time() - start
        log = tmp_path / f"killed-{i}.sqlite"
        proc = subprocess.Popen([str(inlet_bin), "export", *args(killed, log, fmt)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
        time.sleep(rng.uniform(0.05, took))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the run log keeps no password: the resumed run finds it where libpq would
        r = subprocess.run([str(inlet_bin), "export", "--resume", "--run-log", str(log)],
                           capture_output=True, text=True, timeout=600,
                           env=child_env({"PGPASSWORD": urlsplit(pg_url).password}))
        assert r.returncode == 0, f"point {i}: {explain(r)}"
        if "nothing to resume" in r.stderr or "no run to resume" in r.stderr:
            # killed before the run was logged (nothing written: the next run does it all), or
            # after it finished
            nothing_started += 1
            logged = subprocess.run([str(inlet_bin), "runs", "--run-log", str(log), "--format",
                                     "json"], capture_output=True, text=True, env=child_env())
            if logged.returncode != 0 or json.loads(logged.stdout) == []:
                p = export(*args(killed, log, fmt))
                assert p.returncode == 0, explain(p)
        assert lake_state(killed, schema, names, fmt) == lake_state(clean, schema, names, fmt), \
            f"point {i} ({fmt}, killed after {took:.2f} s window): the lake differs from a clean run's"
        # each attempt starts from the same base again: the source's changes are cumulative,
        # the base lakes are re-exported from scratch before the next attempt's change
        subprocess.run(["rm", "-rf", str(base), str(clean), str(killed)], check=True)
    assert nothing_started < len(fmt_of) / 2, "most kills landed outside the run: widen the window"


def test_a_run_log_in_postgresql_that_a_team_shares(pg_url, schema, export, inlet_bin, child_env,
                                                     tmp_path):
    t = f"{schema}.ev"
    psql(pg_url, f"CREATE TABLE {t} (id bigint PRIMARY KEY); "
                 f"INSERT INTO {t} SELECT g FROM generate_series(1, 30) g")
    p = export("--source", pg_url, "--output-dir", tmp_path / "lake", "-i", t, "--run-log", pg_url,
               "--incremental", f"{t}:id")
    assert p.returncode == 0, explain(p)
    run_id = next(line.split("run_id=")[1].split()[0] for line in p.stderr.splitlines() if "run_id=" in line)
    d = json.loads(inlet_runs(inlet_bin, child_env, pg_url, "show", run_id, "--format", "json"))
    assert d["table_list"][0]["watermark"]["high"] == "30" and d["table_list"][0]["rows"] == 30
    # the tables are in their own schema, and hold no password
    stored = psql(pg_url, f"SELECT settings || source || destination FROM inlet.runs WHERE run_id = '{run_id}'")
    assert stored and f":{urlsplit(pg_url).password}@" not in stored
    assert psql(pg_url, "SELECT value FROM inlet.meta WHERE key = 'schema_version'").strip() == "2"
