"""The Python package as a user gets it: the wheel (built by `maturin build`, or $INLET_WHEEL),
installed into a fresh venv whose PATH has no Rust toolchain, and Python code run in that venv.

`scripts/test.sh` builds the wheel once (a dev-profile build sharing cargo's target dir) and
exports INLET_WHEEL; run by hand, the session fixture builds it with the test venv's maturin."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# libraries the code run in the wheel's venv uses to make data (the wheel itself brings pyarrow)
DATA_LIBS = ("pandas", "polars", "duckdb")


def cargo_version() -> str:
    return tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]


def build_wheel(out: Path) -> Path:
    """`maturin build --profile dev` into `out` (what CI does; a release wheel is `pip wheel .`)."""
    maturin = Path(sys.executable).parent / "maturin"
    subprocess.run([str(maturin), "build", "--profile", "dev", "--out", str(out), "--quiet"],
                   cwd=REPO, check=True)
    return find_wheel(out)


def find_wheel(folder: Path) -> Path:
    wheels = sorted(glob.glob(str(folder / f"inlet_lake-{cargo_version()}-*.whl")))
    assert wheels, f"no inlet_lake-{cargo_version()} wheel in {folder}"
    return Path(wheels[-1])


def pinned(names) -> list[str]:
    """`names` at the versions the test venv has (so pip takes them from its cache)."""
    from importlib.metadata import version

    return [f"{n}=={version(n)}" for n in names]


def make_venv(venv: Path, wheel: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel), *pinned(("pyarrow",)), *pinned(DATA_LIBS)], check=True)
    return venv


def venv_path(venv: Path) -> str:
    """A PATH with the venv and the system's programs, and no cargo or rustc."""
    path = f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    assert shutil.which("cargo", path=path) is None and shutil.which("rustc", path=path) is None
    return path


def run_py(venv: Path, code: str, env: dict, cwd: Path | None = None, timeout: float = 600):
    """Runs `code` with the venv's python; returns (completed process, last stdout line as JSON
    or None). INLET_EXECUTABLE is never set: the package must find its own binary."""
    env = {**env, "PATH": venv_path(venv)}
    env.pop("INLET_EXECUTABLE", None)
    p = subprocess.run([str(venv / "bin" / "python"), "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=timeout)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    try:
        value = json.loads(last)
    except ValueError:
        value = None
    return p, value


# Code run in the wheel's venv: `emit(x)` prints x as the JSON the test reads back; the `inlet`
# logger's records are kept in LOG (to check no secret is logged).
PRELUDE = """
import json, logging, sys
import inlet
LOG = []
class _Keep(logging.Handler):
    def emit(self, r):
        LOG.append(r.getMessage())
logging.getLogger("inlet").addHandler(_Keep())
logging.getLogger("inlet").setLevel(logging.DEBUG)
def emit(x):
    print(json.dumps(x, default=str))
def result(r):
    return {"table": r.table, "rows": r.rows, "bytes": r.bytes, "version": r.version,
            "files": r.files}
"""
