#!/usr/bin/env bash
# Python test environment for inlet's end-to-end tests.
#
#   scripts/test-env.sh            install / update every venv (fast no-op when up to date)
#   scripts/test-env.sh --print    only print the export lines for the venv paths
#   scripts/test-env.sh test       only the named venv(s): test, tap-postgres-pipelinewise, ...
#
# Venvs (each one separate: the taps pin conflicting versions of the same libraries):
#   ${INLET_VENV:-$HOME/.cache/inlet/venv}            pytest pyarrow duckdb pandas, duckdb-cli (bench), ...
#   ${INLET_TAPS_DIR:-$HOME/.cache/inlet/taps}/<name>  one per tap, and one for meltano
#
# Requirements live in scripts/requirements/<name>.txt. A venv is reinstalled when the sha256 of
# its requirement lines and pip flags (plus the Python version) differs from the marker inside it.
# After an install, `pip freeze` is written next to the marker (<venv>/.inlet-freeze.txt).
#
# At the end it prints `export ...` lines; eval them to point the tests at the venvs:
#   eval "$(scripts/test-env.sh --print)"
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ_DIR="$ROOT/scripts/requirements"
PYTHON="${INLET_PYTHON:-python3}"
TEST_VENV="${INLET_VENV:-$HOME/.cache/inlet/venv}"
TAPS_DIR="${INLET_TAPS_DIR:-$HOME/.cache/inlet/taps}"

# name -> venv directory
declare -A VENV_OF=(
  [test]="$TEST_VENV"
  [tap-postgres-pipelinewise]="$TAPS_DIR/tap-postgres-pipelinewise"
  [tap-postgres-meltanolabs]="$TAPS_DIR/tap-postgres-meltanolabs"
  [tap-jsonl]="$TAPS_DIR/tap-jsonl"
  [meltano]="$TAPS_DIR/meltano"
  [duckdb-delta]="$TAPS_DIR/duckdb-delta"
  [pyspark]="$TAPS_DIR/pyspark"
)
ORDER=(test tap-postgres-pipelinewise tap-postgres-meltanolabs tap-jsonl meltano duckdb-delta pyspark)

print_exports() {
  cat <<EOF
export INLET_VENV='$TEST_VENV'
export INLET_TAP_POSTGRES_PIPELINEWISE='${VENV_OF[tap-postgres-pipelinewise]}/bin/tap-postgres'
export INLET_TAP_POSTGRES_MELTANOLABS='${VENV_OF[tap-postgres-meltanolabs]}/bin/tap-postgres'
export INLET_TAP_JSONL='${VENV_OF[tap-jsonl]}/bin/tap-jsonl'
export INLET_MELTANO='${VENV_OF[meltano]}/bin/meltano'
export INLET_DUCKDB_DELTA_PYTHON='${VENV_OF[duckdb-delta]}/bin/python'
export INLET_PYSPARK_PYTHON='${VENV_OF[pyspark]}/bin/python'
EOF
}

if [[ "${1:-}" == "--print" ]]; then
  print_exports
  exit 0
fi

log() { echo "test-env: $*" >&2; }

pyver="$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

ensure_venv() {
  local name="$1" venv="${VENV_OF[$1]}" req="$REQ_DIR/$1.txt"
  [[ -f "$req" ]] || { log "missing requirements file $req"; exit 1; }
  local want
  # Hash what pip sees (requirement lines and pip flags), not the comments.
  want="$( { echo "python=$pyver"; grep -vE '^\s*(#|$)' "$req" || true; sed -n 's/^# pip-flags: *//p' "$req"; } |
           sha256sum | cut -d' ' -f1)"
  local marker="$venv/.inlet-req-hash"
  if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    log "$name: up to date ($venv)"
    return 0
  fi
  log "$name: installing into $venv: $(grep -v '^\s*#' "$req" | grep -v '^\s*$' | tr '\n' ' ')"
  if [[ ! -x "$venv/bin/python" ]]; then
    "$PYTHON" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip setuptools wheel >&2
  # A requirements file may carry extra pip flags on a line `# pip-flags: ...`.
  local flags
  flags="$(sed -n 's/^# pip-flags: *//p' "$req")"
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $flags -r "$req" >&2
  "$venv/bin/python" -m pip freeze --disable-pip-version-check > "$venv/.inlet-freeze.txt"
  # Show the versions of the packages named in the requirements file.
  local pkgs
  pkgs="$(grep -v '^\s*#' "$req" | grep -v '^\s*$' | sed -E 's/[<>=!~;[ ].*//' | tr 'A-Z_' 'a-z-')"
  for p in $pkgs; do
    grep -i "^${p//-/[-_]}==" "$venv/.inlet-freeze.txt" | sed "s/^/test-env: $name: installed /" >&2 || true
  done
  echo "$want" > "$marker"
}

if [[ $# -gt 0 ]]; then
  ORDER=("$@")
fi

if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  log "$PYTHON lacks venv/ensurepip; on Debian: apt-get install -y python3-venv"
  exit 1
fi

for name in "${ORDER[@]}"; do
  [[ -n "${VENV_OF[$name]:-}" ]] || { log "unknown venv '$name' (known: ${!VENV_OF[*]})"; exit 2; }
  ensure_venv "$name"
done

print_exports
