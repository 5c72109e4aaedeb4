"""The Python package (issue 16): the wheel installs `inlet` and `target-inlet` into a fresh venv
with no Rust on its PATH; `inlet.write` lands pandas, Polars, pyarrow and DuckDB data on local
disk, S3 (moto) and Azurite as Parquet and Delta (append, overwrite, partition overwrite, merge),
read back here with pyarrow and the deltalake package; a Mage exporter block with an
io_config.yaml profile; the Meltano plugin definition agrees with `--about`, and Meltano installs
the loader from the wheel and runs it."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from storage_helpers import backend_config, fetch, secrets, server_env, unique
from test_real_taps import seeded_pg  # noqa: F401 (a fixture)
from wheel_helpers import PRELUDE, REPO, build_wheel, cargo_version, make_venv, run_py, venv_path



@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    given = os.environ.get("INLET_WHEEL")
    if given:
        return Path(given)
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def venv(wheel, tmp_path_factory) -> Path:
    return make_venv(tmp_path_factory.mktemp("wheel") / "venv", wheel)


@pytest.fixture
def py(venv, child_env, tmp_path):
    """py(code, env=None) -> (process, emitted JSON): `code` after PRELUDE in the wheel's venv,
    in tmp_path, with the clean test environment."""

    def run(code: str, env: dict | None = None, cwd: Path | None = None):
        p, value = run_py(venv, PRELUDE + code, child_env(env), cwd=cwd or tmp_path)
        for s in secrets():
            assert s not in p.stdout and s not in p.stderr, "a secret was printed"
        return p, value

    return run


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-6000:]}"
    return p


# ------------------------------------------------------------------------------- the wheel itself

def test_the_wheel_puts_inlet_and_target_inlet_on_the_venv_path(venv, wheel, child_env, tmp_path):
    version = cargo_version()
    assert wheel.name.startswith(f"inlet_lake-{version}-") and "linux" in wheel.name, wheel.name
    env = {**child_env(), "PATH": venv_path(venv)}
    assert shutil.which("inlet", path=env["PATH"]) == str(venv / "bin" / "inlet")
    out = subprocess.run(["inlet", "--version"], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"inlet {version}"
    meta = subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import inlet, importlib.metadata as m; print(inlet.__version__, m.version('inlet-lake'))"],
                          env=env, capture_output=True, text=True, check=True)
    assert meta.stdout.split() == [version, version]
    about = subprocess.run(["target-inlet", "--about", "--format", "json"], env=env, capture_output=True,
                           text=True, check=True)
    assert json.loads(about.stdout)["name"] == "target-inlet"
    # the package's name and metadata come from Cargo.toml
    import tomllib

    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"] == \
        tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["name"]


def test_target_inlet_from_the_wheel_is_a_singer_target(venv, child_env, tmp_path):
    lake = tmp_path / "lake"
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"destination": str(lake)}))
    env = {**child_env(), "PATH": venv_path(venv)}
    p = subprocess.run(["target-inlet", "--config", str(cfg)], input=(REPO / "samples" / "orders.singer.jsonl").read_bytes(),
                       env=env, capture_output=True)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    states = [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]
    assert states, "no STATE on stdout"
    rows = sum(pq.read_table(f).num_rows for f in lake.rglob("*.parquet"))
    assert rows == 2000


def test_the_meltano_plugin_definition_is_the_binary_s_about(venv):
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "meltano-plugin.py"), "--check",
                        "--inlet", str(venv / "bin" / "inlet")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import yaml

    plugin = yaml.safe_load((REPO / "meltano" / "target-inlet.yml").read_text())
    about = json.loads(subprocess.run([str(venv / "bin" / "inlet"), "load", "--about", "--format", "json"],
                                      capture_output=True, text=True, check=True).stdout)
    assert plugin["executable"] == "target-inlet" and plugin["pip_url"] == "inlet-lake"
    secret = {s["name"] for s in about["settings"] if s["sensitive"]}
    assert {"aws_secret_access_key", "azure_client_secret", "access_key"} <= secret
    assert {s["name"] for s in plugin["settings"] if s.get("sensitive")} == secret
    assert [s["name"] for s in plugin["settings"]] == [s["name"] for s in about["settings"]]


# ------------------------------------------------------------------------------- types round-trip

# Code that builds the same frames here and in the wheel's venv.
FRAMES = """
import datetime as dt
from decimal import Decimal
import pandas as pd, polars as pl, pyarrow as pa
pandas_df = pd.DataFrame({
    "id": pd.array([1, 2, None, 4], dtype="Int64"),
    "small": pd.array([1, None, 3, 4], dtype="Int16"),
    "price": [Decimal("1.10"), Decimal("-2.25"), None, Decimal("100000000000.01")],
    "ts": pd.to_datetime(["2024-01-02 03:04:05.123456", "2024-06-30 23:59:59", None, "1969-07-20 20:17:40"], format="ISO8601"),
    "ts_tz": pd.to_datetime(["2024-01-02 03:04:05", None, "2024-03-31 02:30:00", "2000-01-01 00:00:00"], format="ISO8601").tz_localize("Europe/Paris", nonexistent="shift_forward"),
    "cat": pd.Categorical(["a", "b", None, "a"]),
    "doc": [{"k": 1, "v": "x"}, {"k": 2, "v": None}, None, {"k": 4, "v": "ü"}],
    "tags": [["a", "b"], [], None, ["z"]],
    "flag": pd.array([True, None, False, True], dtype="boolean"),
    "name": ["x", None, "ü", "long " * 20],
    "score": [1.5, None, -0.0, 1e300],
})
polars_df = pl.DataFrame({
    "id": [1, 2, 3],
    "s": ["a", None, "ccc"],
    "d": [dt.date(2024, 1, 1), None, dt.date(1900, 12, 31)],
    "l": [[1, 2], [3], None],
    "st": [{"a": 1, "b": "x"}, {"a": None, "b": "y"}, None],
    "t": [dt.datetime(2024, 1, 1, 12, 0, 0, 123456), None, dt.datetime(1999, 12, 31, 23, 59, 59)],
})
arrow_table = pa.table({
    "i32": pa.array([1, None, -3], pa.int32()),
    "u32": pa.array([0, 4_000_000_000, None], pa.uint32()),
    "f32": pa.array([1.5, None, -2.0], pa.float32()),
    "dec": pa.array([Decimal("12345678901234567890.0123456789"), None, Decimal("-1.0000000001")], pa.decimal128(38, 10)),
    "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)], pa.date32()),
    "at": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), None, dt.datetime(1960, 5, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc)], pa.timestamp("us", "UTC")),
    "blob": pa.array([b"\\x00\\x01", None, b""], pa.binary()),
    "big": pa.array(["x", None, "z"], pa.large_string()),
    "enum": pa.array(["a", "b", "a"]).dictionary_encode(),
    "ok": pa.array([True, False, None]),
})
"""


def frames() -> dict:
    ns: dict = {}
    exec(FRAMES, ns)
    return ns


def expected_rows(name: str) -> list[dict]:
    """What a reader must see for frame `name`: the frame's own values as Arrow has them (pandas'
    NaT/NA as None, categoricals and dictionaries as their values); on Delta times come back at
    microseconds and uint32 as int64, which compare equal in Python."""
    f = frames()
    if name == "pandas":
        return pa.Table.from_pandas(f["pandas_df"], preserve_index=False).to_pylist()
    if name == "polars":
        return pa.RecordBatchReader.from_stream(f["polars_df"]).read_all().to_pylist()
    return f["arrow_table"].to_pylist()


def normalise(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        o = {}
        for k, v in r.items():
            if hasattr(v, "to_pydatetime"):
                v = v.to_pydatetime()
            if isinstance(v, dt.datetime) and v.tzinfo is not None:
                v = v.astimezone(dt.timezone.utc)
            o[k] = v
        out.append(o)
    return out


def read_back(path: Path, fmt: str) -> list[dict]:
    if fmt == "delta":
        t = DeltaTable(str(path)).to_pyarrow_table()
    else:
        t = pa.concat_tables([pq.read_table(f) for f in sorted(path.rglob("*.parquet"))])
    return t.to_pylist()


def sort_rows(rows: list[dict], key: str) -> list[dict]:
    return sorted(rows, key=lambda r: (r[key] is None, r[key] if r[key] is not None else 0))


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("frame", ["pandas", "polars", "pyarrow"])
def test_types_round_trip_from_each_library(py, tmp_path, fmt, frame):
    lake = tmp_path / "lake"
    var = {"pandas": "pandas_df", "polars": "polars_df", "pyarrow": "arrow_table"}[frame]
    p, out = py(FRAMES + f"""
r = inlet.write({var}, destination={str(lake)!r}, table="t", format={fmt!r})
emit(result(r))
""")
    ok(p)
    want = normalise(expected_rows(frame))
    key = next(iter(want[0]))
    got = normalise(read_back(lake / "t", fmt))
    assert out["rows"] == len(want)
    assert sort_rows(got, key) == sort_rows(want, key)
    if fmt == "delta":
        assert out["version"] == 0 and len(out["files"]) == 1  # one commit


def test_a_duckdb_relation_and_an_iterator_of_batches(py, tmp_path):
    lake = tmp_path / "lake"
    p, out = py(f"""
import duckdb, pyarrow as pa
rel = duckdb.sql("SELECT range AS id, 'n' || range AS name, range * 0.5 AS half FROM range(100000)")
a = inlet.write(rel, destination={str(lake)!r}, table="from_duckdb", format="delta")
def batches():
    for i in range(40):
        ids = pa.array(range(i * 25_000, (i + 1) * 25_000), pa.int64())
        yield pa.record_batch({{"id": ids, "part": pa.array([i % 4] * 25_000, pa.int32())}})
b = inlet.write(batches(), destination={str(lake)!r}, table="from_iter", format="delta", partition_keys="part")
emit({{"a": result(a), "b": result(b)}})
""")
    ok(p)
    t = DeltaTable(str(lake / "from_duckdb")).to_pyarrow_table()
    assert t.num_rows == 100_000 and sorted(t.column("id").to_pylist()) == list(range(100_000))
    assert pa.types.is_decimal(t.schema.field("half").type)  # DuckDB's DECIMAL stays decimal
    halves = dict(zip(t.column("id").to_pylist(), t.column("half").to_pylist()))
    assert halves[3] == Decimal("1.5") and halves[99_999] == Decimal("49999.5")
    it = DeltaTable(str(lake / "from_iter"))
    assert it.metadata().partition_columns == ["part"]
    assert it.version() == 0  # a million rows, one commit
    ids = it.to_pyarrow_table().column("id").to_pylist()
    assert len(ids) == 1_000_000 and len(set(ids)) == 1_000_000
    assert out["b"]["rows"] == 1_000_000


# ------------------------------------------------------------------------------- object storage

# pandas appends, Polars overwrites, pyarrow merges; Polars writes the plain files
DELTA_STEPS = """
import pandas as pd, polars as pl, pyarrow as pa
base = dict(destination=DEST, table="orders", format="delta", **STORE)
v = []
v.append(inlet.write(pd.DataFrame({"id": [1, 2, 3], "qty": [10, 20, 30], "day": ["a", "a", "b"]}), **base).version)
v.append(inlet.write(pl.DataFrame({"id": [10, 11, 12], "qty": [1, 2, 3], "day": ["a", "b", "b"]}), mode="overwrite", **base).version)
v.append(inlet.write(pa.table({"id": pa.array([11, 13], pa.int64()), "qty": pa.array([200, 300], pa.int64()),
                               "day": ["b", "c"]}), mode="merge", key="id", **base).version)
files = inlet.write(pl.DataFrame({"id": [7, 8], "qty": [70, 80], "day": ["x", "y"]}), destination=DEST, table="plain",
                    format="parquet", partition_keys=["day"], **STORE)
emit({"versions": v, "files": result(files), "log": LOG})
"""


@pytest.mark.parametrize("backend", ["local", "moto", "azurite"])
def test_write_to_each_destination_with_every_delta_mode(py, tmp_path, backend):
    prefix = unique("py")
    cfg = backend_config(backend, prefix, tmp_path / "root")
    dest = cfg.pop("destination")
    p, out = py(f"DEST = {dest!r}\nSTORE = {cfg!r}\n" + DELTA_STEPS)
    ok(p)
    assert out["versions"] == [0, 1, 2]
    local = fetch(backend, prefix, tmp_path / "fetched", tmp_path / "root")
    t = DeltaTable(str(local / "orders"))
    rows = sorted((r["id"], r["qty"], r["day"]) for r in t.to_pyarrow_table().to_pylist())
    assert rows == [(10, 1, "a"), (11, 200, "b"), (12, 3, "b"), (13, 300, "c")]
    ops = [h["operation"] for h in reversed(t.history())]
    assert ops[0] in ("WRITE", "CREATE TABLE") and ops[2] == "MERGE"
    parts = sorted(str(f.relative_to(local / "plain")) for f in (local / "plain").rglob("*.parquet"))
    assert [x.split("/")[0] for x in parts] == ["day=x", "day=y"]
    assert out["files"]["rows"] == 2 and len(out["files"]["files"]) == 2
    for s in secrets():
        assert all(s not in line for line in out["log"])


def test_partition_overwrite_replaces_only_the_partitions_written(py, tmp_path):
    lake = tmp_path / "lake"
    p, _ = py(f"""
import pandas as pd
base = dict(destination={str(lake)!r}, table="t", format="delta", partition_keys="day")
inlet.write(pd.DataFrame({{"id": [1, 2, 3], "day": ["mon", "tue", "wed"]}}), **base)
inlet.write(pd.DataFrame({{"id": [20, 21], "day": ["tue", "tue"]}}), mode="partition_overwrite", **base)
emit(True)
""")
    ok(p)
    rows = sorted((r["id"], r["day"]) for r in DeltaTable(str(lake / "t")).to_pyarrow_table().to_pylist())
    assert rows == [(1, "mon"), (3, "wed"), (20, "tue"), (21, "tue")]


# ------------------------------------------------------------------------------- failures

def test_failures_raise_inlet_s_message(py, tmp_path):
    lake = tmp_path / "lake"
    p, out = py(f"""
import pandas as pd, pyarrow as pa
def attempt(f):
    try:
        f()
        return None
    except inlet.InletError as e:
        return {{"kind": e.kind, "code": e.exit_code, "msg": str(e)}}
    except Exception as e:
        return {{"kind": type(e).__name__, "msg": str(e)}}
D = {str(lake)!r}
df = pd.DataFrame({{"id": [1, 2]}})
res = {{
  "no_key": attempt(lambda: inlet.write(df, destination=D, table="t", format="delta", mode="merge")),
  "bad_key": attempt(lambda: inlet.write(df, destination=D, table="t", format="delta", mode="merge", key="nope")),
  "duration": attempt(lambda: inlet.write(pd.DataFrame({{"wait": pd.to_timedelta([1, 2], unit="s")}}), destination=D, table="t")),
  "files_merge": attempt(lambda: inlet.write(df, destination=D, table="t", format="parquet", mode="merge", key="id")),
  "unknown": attempt(lambda: inlet.write(df, destination=D, table="t", colour="red")),
  "not_data": attempt(lambda: inlet.write("a string", destination=D, table="t")),
  "unreachable": attempt(lambda: inlet.write(df, destination="s3://b/p", table="t", aws_endpoint="http://127.0.0.1:9",
        aws_access_key_id="k", aws_secret_access_key="fake-moto-secret", aws_region="us-east-1", storage_max_retries=0,
        storage_retry_timeout_seconds=1)),
}}
emit(res)
""")
    ok(p)
    assert out["no_key"]["kind"] == "config" and "key" in out["no_key"]["msg"]
    assert out["bad_key"]["kind"] == "config" and "'nope' is not in the data (its columns: id)" in out["bad_key"]["msg"]
    assert out["duration"]["kind"] == "input" and "column 'wait'" in out["duration"]["msg"] and "cast" in out["duration"]["msg"]
    assert out["files_merge"]["kind"] == "config" and "format: delta" in out["files_merge"]["msg"]
    assert out["unknown"]["kind"] == "TypeError" and "colour" in out["unknown"]["msg"]
    assert out["not_data"]["kind"] == "TypeError"
    assert out["unreachable"]["kind"] == "destination", out["unreachable"]
    assert "fake-moto-secret" not in out["unreachable"]["msg"]
    assert not (lake / "t").exists()


def test_a_generator_that_fails_commits_nothing(py, tmp_path):
    lake = tmp_path / "lake"
    p, out = py(f"""
import pyarrow as pa
def batches():
    for i in range(5):
        yield pa.record_batch({{"id": pa.array(range(i * 100_000, (i + 1) * 100_000))}})
    raise RuntimeError("the source broke")
try:
    inlet.write(batches(), destination={str(lake)!r}, table="t", format="delta")
    emit("no error")
except RuntimeError as e:
    emit(str(e))
""")
    ok(p)
    assert out == "the source broke"
    assert not (lake / "t" / "_delta_log").exists() or not list((lake / "t" / "_delta_log").glob("*.json"))


# ------------------------------------------------------------------------------- Mage

IO_CONFIG = """\
version: 0.1.1
default:
  AWS_ACCESS_KEY_ID: "{{ env_var('LAKE_KEY') }}"
  AWS_SECRET_ACCESS_KEY: "{{ env_var('LAKE_SECRET') }}"
  AWS_REGION: us-east-1
  AWS_ENDPOINT: "{{ env_var('LAKE_ENDPOINT') }}"
  POSTGRES_HOST: not-read-by-inlet
azure:
  AZURE_STORAGE_ACCOUNT_NAME: devstoreaccount1
  AZURE_STORAGE_ACCOUNT_KEY: "{{ env_var('LAKE_AZURE_KEY') }}"
"""

# What Mage does with a block file: import it with `data_exporter` already defined, then call
# the decorated function with the upstream DataFrame and the pipeline's variables.
MAGE_RUNNER = """
import sys, types, runpy
repo = types.ModuleType("mage_ai.settings.repo"); repo.get_repo_path = lambda: PROJECT
for name in ("mage_ai", "mage_ai.settings"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["mage_ai.settings.repo"] = repo
blocks = []
block = runpy.run_path(BLOCK, init_globals={"data_exporter": lambda f: blocks.append(f) or f})
import pandas as pd
exporter = blocks[0]
exporter(pd.DataFrame({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.5]}), **VARS)
exporter(pd.DataFrame({"id": [3, 4], "amount": [30.0, 40.0]}), **VARS)
emit(LOG)
"""


@pytest.mark.parametrize("backend", ["moto", "azurite"])
def test_the_mage_exporter_block_with_an_io_config_profile(py, tmp_path, backend):
    project = tmp_path / "mage_project"
    project.mkdir()
    (project / "io_config.yaml").write_text(IO_CONFIG)
    prefix = unique("mage")
    cfg = backend_config(backend, prefix)
    variables = {"destination": cfg["destination"], "table": "orders", "format": "delta", "mode": "merge", "key": "id"}
    env = {"LAKE_KEY": "fake-moto-key", "LAKE_SECRET": "fake-moto-secret",
           "LAKE_ENDPOINT": server_env("INLET_MOTO_ENDPOINT"), "LAKE_AZURE_KEY": server_env("INLET_AZURITE_KEY")}
    if backend == "azurite":
        variables["io_config_profile"] = "azure"
        # the emulator's endpoint is not an io_config key: inlet's own variable gives it
        env["INLET_AZURE_ENDPOINT"] = server_env("INLET_AZURITE_ENDPOINT")
    block = REPO / "examples" / "mage" / "export_to_lake.py"
    p, log = py(f"PROJECT = {str(project)!r}\nBLOCK = {str(block)!r}\nVARS = {variables!r}\n" + MAGE_RUNNER, env=env)
    ok(p)
    assert "inlet wrote 3 rows to orders" in p.stdout and "inlet wrote 2 rows to orders" in p.stdout
    local = fetch(backend, prefix, tmp_path / "fetched")
    rows = sorted((r["id"], r["amount"]) for r in DeltaTable(str(local / "orders")).to_pyarrow_table().to_pylist())
    assert rows == [(1, 1.5), (2, 2.5), (3, 30.0), (4, 40.0)]
    assert all("fake-moto-secret" not in m for m in log)


# ------------------------------------------------------------------------------- Meltano

def test_meltano_installs_the_loader_from_the_wheel_and_runs_it(wheel, seeded_pg, tool, child_env, tmp_path):
    """`meltano add loader --from-ref` the repo's plugin definition (pip_url: the wheel), `meltano
    install`, then `meltano run tap-postgres target-inlet` twice: rows land, the state is stored,
    the second run resumes from it."""
    import yaml

    meltano = tool("INLET_MELTANO", "~/.cache/inlet/taps/meltano/bin/meltano")
    tap = tool("INLET_TAP_POSTGRES_MELTANOLABS", "~/.cache/inlet/taps/tap-postgres-meltanolabs/bin/tap-postgres")
    proj = tmp_path / "proj"
    shutil.copytree(REPO / "tests" / "fixtures" / "meltano", proj,
                    ignore=shutil.ignore_patterns(".meltano", "output", "plugins"))
    project = yaml.safe_load((proj / "meltano.yml").read_text())
    project["plugins"].pop("loaders")
    (proj / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    (proj / "bin" / "target-inlet").unlink()
    # the tap's output is kept, to see where the second run starts
    (proj / "bin" / "tap-postgres").write_text("""#!/usr/bin/env bash
set -euo pipefail
case " $* " in *" --discover "*|*" --about "*) exec "$INLET_TAP_POSTGRES_MELTANOLABS" "$@" ;; esac
"$INLET_TAP_POSTGRES_MELTANOLABS" "$@" | tee "$INLET_MELTANO_TAP_OUTPUT"
""")
    definition = yaml.safe_load((REPO / "meltano" / "target-inlet.yml").read_text())
    definition["pip_url"] = str(wheel)
    ref = tmp_path / "target-inlet.yml"
    ref.write_text(yaml.safe_dump(definition, sort_keys=False))
    lake = tmp_path / "lake"
    env = child_env({
        "INLET_TAP_POSTGRES_MELTANOLABS": str(tap), "INLET_PG_URL": seeded_pg,
        "INLET_MELTANO_TAP_OUTPUT": str(tmp_path / "tap-output.jsonl"),
        "TARGET_INLET_DESTINATION": str(lake), "TARGET_INLET_FORMAT": "delta", "TARGET_INLET_MODE": "merge",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        # Meltano makes the loader's venv with this Python; the PATH has no Rust
        "PATH": f"{Path(meltano).parent}:{venv_path_for_system()}",
    })

    def run(*args, timeout=600):
        p = subprocess.run([str(meltano), *args], cwd=proj, env=env, capture_output=True, text=True, timeout=timeout)
        assert p.returncode == 0, f"meltano {' '.join(args)} exited {p.returncode}:\n{p.stderr[-6000:]}"
        return p

    run("add", "loader", "target-inlet", "--from-ref", str(ref))
    run("install", "--plugin-type", "loader", "target-inlet")
    installed = proj / ".meltano" / "loaders" / "target-inlet" / "venv" / "bin"
    assert (installed / "inlet").is_file() and (installed / "target-inlet").is_file()
    run("run", "tap-postgres", "target-inlet")
    state = json.loads(run("state", "get", "dev:tap-postgres-to-target-inlet").stdout)["singer_state"]
    assert state.get("bookmarks"), state
    events = DeltaTable(str(lake / "public-events"))
    first = events.to_pyarrow_table().num_rows
    assert first >= 1000
    run("run", "tap-postgres", "target-inlet")
    tap_out = [json.loads(line) for line in (tmp_path / "tap-output.jsonl").read_text().splitlines() if line.strip()]
    assert tap_out[0]["type"] == "STATE", "the second run did not start from the stored state"
    again = DeltaTable(str(lake / "public-events"))
    assert again.version() > events.version()
    # merged on the key: the row re-sent at the inclusive bookmark is not there twice
    ids = again.to_pyarrow_table().column("id").to_pylist()
    assert len(ids) == len(set(ids)) == first


def venv_path_for_system() -> str:
    return "/usr/local/bin:/usr/bin:/bin"


def test_pip_builds_the_wheel_through_pep_517(venv, tmp_path, child_env):
    """`pip wheel .` in a checkout: pip's isolated build env gets maturin from the registry and
    builds with cargo (a dev profile here; `pip install .` builds a release one). The cargo target
    dir is the suite's, so this relinks rather than rebuilds."""
    env = child_env({"CARGO_TARGET_DIR": os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))})
    out = tmp_path / "wheels"
    p = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out),
                        "--config-settings=build-args=--profile dev", str(REPO)],
                       env=env, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-4000:]
    built = list(out.glob(f"inlet_lake-{cargo_version()}-*.whl"))
    assert len(built) == 1, list(out.iterdir())


def test_inlet_write_from_the_shell(inlet_bin, child_env, tmp_path):
    """`inlet write` itself: an IPC stream file in, a JSON summary out; and what a wrong input says."""
    t = pa.table({"id": pa.array(range(1000), pa.int64()), "tag": pa.array(["x", "y"] * 500).dictionary_encode()})
    stream = tmp_path / "rows.arrows"
    with pa.OSFile(str(stream), "wb") as f, pa.ipc.new_stream(f, t.schema) as w:
        w.write_table(t, max_chunksize=300)
    lake = tmp_path / "lake"
    run = lambda *a, **kw: subprocess.run([str(inlet_bin), "write", *a], env=child_env(), capture_output=True,
                                          text=True, **kw)
    p = run("-t", "rows", "--input", str(stream), "--set", f"destination={lake}", "--set", "format=delta")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert (summary["rows"], summary["version"]) == (1000, 0) and summary["bytes"] > 0
    back = DeltaTable(str(lake / "rows")).to_pyarrow_table()
    assert back.schema.field("tag").type == pa.string() and back.num_rows == 1000
    empty = run("-t", "rows", "--set", f"destination={lake}", input="")
    assert empty.returncode == 4 and "the input is empty" in empty.stderr
    parquet = tmp_path / "rows.parquet"
    pq.write_table(t, parquet)
    wrong = run("-t", "rows", "--input", str(parquet), "--set", f"destination={lake}")
    assert wrong.returncode == 4 and "not an Arrow IPC stream" in wrong.stderr
    unknown = run("-t", "rows", "--input", str(stream), "--set", "colour=red")
    assert unknown.returncode == 3 and "colour" in unknown.stderr
