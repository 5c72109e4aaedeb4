#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. cargo fmt --check and cargo clippy -D warnings
#   2. Python readers, Singer taps and S3 test servers (scripts/test-env.sh), then the object-storage
#      servers on 127.0.0.1 (scripts/servers.sh: s3s-fs, moto_server, Azurite, the GCS XML fake)
#   3. cargo test: unit tests and tests/*.rs (the real binary; tests/storage.rs on every backend),
#      then each cargo-fuzz target for ~30 s when nightly is installed (scripts/fuzz.sh)
#      and the Python wheel (maturin, dev profile: the same build)
#   4. PostgreSQL on 127.0.0.1 (scripts/pg.sh), then pytest tests/e2e: the real binary checked by
#      pyarrow, DuckDB, boto3 and azure-storage-blob; real taps, Meltano; every storage backend;
#      the wheel installed into a fresh venv (inlet.write, Mage, Meltano installing it).
# Servers it starts are stopped on exit. Nothing talks to anything but 127.0.0.1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}"
export CARGO_TERM_COLOR=never

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "Python readers and Singer taps"
scripts/test-env.sh
eval "$(scripts/test-env.sh --print)"

step "Object-storage servers on 127.0.0.1 (s3s-fs, moto_server, Azurite, GCS XML fake)"
trap 'scripts/servers.sh stop || true; scripts/pg.sh stop || true' EXIT
scripts/servers.sh start
eval "$(scripts/servers.sh env)"
export INLET_REQUIRE_SERVERS=1

step "cargo build + cargo test (unit tests, tests/*.rs)"
cargo build --quiet
cargo test --quiet 2>&1 | tee "$CARGO_TARGET_DIR/cargo-test.log"

step "Python wheel: maturin build --profile dev (tests/e2e/test_python_package.py installs it)"
rm -rf "$CARGO_TARGET_DIR/ci-wheels"
"$INLET_VENV/bin/maturin" build --profile dev --quiet --out "$CARGO_TARGET_DIR/ci-wheels"
INLET_WHEEL="$(ls "$CARGO_TARGET_DIR"/ci-wheels/inlet_lake-*.whl)"
export INLET_WHEEL

step "cargo-fuzz targets, about 30 s each (when the nightly toolchain is present)"
INLET_FUZZ_BUILD="${INLET_FUZZ_BUILD:-dev}" scripts/fuzz.sh "${INLET_FUZZ_SECONDS:-30}"

step "PostgreSQL on 127.0.0.1"
scripts/pg.sh start
scripts/pg.sh seed
INLET_PG_URL="$(scripts/pg.sh url)"
export INLET_PG_URL
export INLET_BIN="$CARGO_TARGET_DIR/debug/inlet"

step "pytest tests/e2e (real binary, pyarrow + DuckDB readers, real taps, Meltano, object storage)"
"$INLET_VENV/bin/python" -m pytest tests/e2e -q -p no:cacheprovider "$@"
