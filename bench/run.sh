#!/usr/bin/env bash
# Run the inlet benchmark (bench/bench.py) with the project's Python venv.
# Never builds inlet: build the release binary first, e.g.
#   CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target} cargo build --release
# Usage: bash bench/run.sh [bench.py options]   (--quick, --big, --runs N, --formats parquet,csv,jsonl,
#                                                 --out BENCHMARKS.md, --engines duckdb, --help)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}"
export INLET_BIN="${INLET_BIN:-$CARGO_TARGET_DIR/release/inlet}"
export INLET_BENCH_DATA="${INLET_BENCH_DATA:-$HOME/.cache/inlet/bench-data}"
venv="${INLET_VENV:-$HOME/.cache/inlet/venv}"

if [ -x "$venv/bin/python" ]; then
  py="$venv/bin/python"
else
  echo "bench/run.sh: no Python venv at $venv" >&2
  echo "  create it with scripts/test-env.sh (pyarrow, duckdb-cli), or point INLET_VENV at a venv that has" >&2
  echo "  pyarrow and duckdb-cli (python3 -m venv DIR && DIR/bin/pip install pyarrow duckdb-cli==1.5.6)." >&2
  exit 2
fi

exec "$py" "$here/bench.py" "$@"
