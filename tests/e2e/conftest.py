"""Shared pytest fixtures for inlet's end-to-end tests (tests/e2e/test_*.py).

Fixtures
--------
repo_root            Path of the repository.
inlet_bin            Path of the inlet binary: env INLET_BIN, else <repo>/target/debug/inlet.
                     Missing binary -> the test FAILS (never skips).
dest                 A fresh, empty destination folder (tmp_path / "lake").
run_inlet            run_inlet(config: dict, input_bytes: bytes, *, args=(), env=None,
                     timeout=300) -> subprocess.CompletedProcess (stdout/stderr as bytes).
                     Writes `config` as JSON to a temp file and runs
                     `inlet load --config FILE *args` with `input_bytes` on stdin.
                     The child gets a clean environment: no INLET_* / TARGET_INLET_* variables
                     from the test runner (they would override the config), plus `env` if given,
                     and cloud credential-chain lookups pointed away from metadata services.
child_env            child_env(extra=None) -> dict: that same clean environment, for tests that
                     start inlet themselves (pipes from a tap, Meltano).
pg_url               env INLET_PG_URL (e.g. `scripts/pg.sh url`); missing -> FAIL.
tool                 tool(env_var, default_path) -> Path of an installed program (a tap, meltano)
                     from env or its scripts/test-env.sh default; missing -> FAIL.

Environment: run `eval "$(scripts/test-env.sh)"`, `scripts/pg.sh start`,
`export INLET_PG_URL=$(scripts/pg.sh url)`, then `$INLET_VENV/bin/pytest tests/e2e`.
"""

from __future__ import annotations

import json
import os
import tempfile
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Variables that must not reach inlet from the test runner's own environment: inlet reads every
# INLET_<KEY> / TARGET_INLET_<KEY> as a config override.
# Cloud credentials of whoever runs the tests must not reach inlet either.
_SCRUB_PREFIXES = ("INLET_", "TARGET_INLET_", "AWS_", "GOOGLE_", "AZURE_", "AZURITE_", "GCE_")

# Never let a cloud SDK credential chain reach an instance metadata service or the runner's own
# cloud config: the AWS chain is told IMDS is off and has no profile files, the GCP metadata
# host is a closed port on loopback. Tests that exercise these paths set them to fakes.
_SAFE_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "NO_PROXY": "*",
    # inlet export's run log goes to a folder of the test session, not the user's own
    "XDG_DATA_HOME": tempfile.mkdtemp(prefix="inlet-test-data-"),
}


def _child_env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES)}
    env.update(_SAFE_ENV)
    # where azure_use_emulator finds Azurite (object_store reads this variable)
    if os.environ.get("INLET_AZURITE_ENDPOINT"):
        env["AZURITE_BLOB_STORAGE_URL"] = os.environ["INLET_AZURITE_ENDPOINT"].rsplit("/", 1)[0]
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def inlet_bin() -> Path:
    env_bin = os.environ.get("INLET_BIN")
    if env_bin:
        p = Path(env_bin)
    else:
        # cargo's default target dir, then $CARGO_TARGET_DIR (the contract's location)
        candidates = [REPO_ROOT / "target" / "debug" / "inlet"]
        if os.environ.get("CARGO_TARGET_DIR"):
            candidates.append(Path(os.environ["CARGO_TARGET_DIR"]) / "debug" / "inlet")
        p = next((c for c in candidates if c.is_file()), candidates[0])
    if not p.is_absolute():
        p = REPO_ROOT / p
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"inlet binary not found at {p}: build it (cargo build) or set INLET_BIN")
    return p


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "lake"
    d.mkdir()
    return d


@pytest.fixture
def child_env():
    return _child_env


@pytest.fixture
def run_inlet(inlet_bin: Path, tmp_path: Path):
    counter = iter(range(1_000_000))

    def run(config: dict, input_bytes: bytes, *, args=(), env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        cfg = tmp_path / f"inlet-config-{next(counter)}.json"
        cfg.write_text(json.dumps(config))
        return subprocess.run(
            [str(inlet_bin), "load", "--config", str(cfg), *map(str, args)],
            input=input_bytes,
            capture_output=True,
            env=_child_env(env),
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get("INLET_PG_URL")
    if not url:
        pytest.fail("INLET_PG_URL is not set: run `scripts/pg.sh start` and "
                    "`export INLET_PG_URL=$(scripts/pg.sh url)`")
    return url


@pytest.fixture(scope="session")
def tool():
    def find(env_var: str, default: str) -> Path:
        p = Path(os.environ.get(env_var) or os.path.expanduser(default))
        if not (p.is_file() and os.access(p, os.X_OK)):
            pytest.fail(f"{p} not found: run scripts/test-env.sh (or set {env_var})")
        return p

    return find
