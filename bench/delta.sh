#!/usr/bin/env bash
# Delta append benchmark (issue #4): the flat 1M Singer file through
#   inlet-delta    inlet load, format delta, mode append
#   inlet-parquet  inlet load, Parquet files (the same flushes, no Delta log)
#   python-delta   bench/delta_python_ref.py: json.loads + pyarrow + deltalake.write_deltalake
# interleaved, --runs times each, with wall time, records/s and peak RSS; every table is read
# back with the deltalake package and must hold every record. Several datasets run in one
# invocation (issue 15: flat 1M and flat 5M, to show that memory does not grow with the input).
#   bash bench/delta.sh [--runs N] [--datasets flat_1m,flat_5m]
# Needs a release build and the test venv (scripts/test-env.sh); datasets from bench/run.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS=3; DATASETS=flat_1m,flat_5m
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --dataset|--datasets) DATASETS="$2"; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--datasets NAME,NAME]" >&2; exit 2 ;;
  esac
done
BIN="${INLET_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}/release/inlet}"
PY="${INLET_VENV:-$HOME/.cache/inlet/venv}/bin/python"
[[ -x "$BIN" ]] || { echo "missing $BIN: cargo build --release" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
run() { # engine out
  local e="$1" out="$2"
  case "$e" in
    inlet-delta) echo "{\"destination\": \"$out\", \"format\": \"delta\"}" >"$work/c.json"
      /usr/bin/time -f '%e %M' -o "$work/t" "$BIN" load --config "$work/c.json" --input "$DATA" >/dev/null 2>"$work/err" ;;
    inlet-parquet) echo "{\"destination\": \"$out\", \"format\": \"parquet\"}" >"$work/c.json"
      /usr/bin/time -f '%e %M' -o "$work/t" "$BIN" load --config "$work/c.json" --input "$DATA" >/dev/null 2>"$work/err" ;;
    python-delta)
      /usr/bin/time -f '%e %M' -o "$work/t" "$PY" "$ROOT/bench/delta_python_ref.py" "$DATA" "$out/flat" >/dev/null 2>"$work/err" ;;
  esac || { echo "$e failed:"; tail -5 "$work/err"; exit 1; }
  read -r w r <"$work/t"
  WALL[$e]+="$w "; RSS[$e]="$(( r / 1024 > ${RSS[$e]:-0} ? r / 1024 : ${RSS[$e]:-0} ))"
  if [[ "$e" != inlet-parquet ]]; then
    got=$("$PY" -c "import sys; from deltalake import DeltaTable; print(DeltaTable(sys.argv[1]).to_pyarrow_dataset().count_rows())" "$out/flat")
    [[ "$got" == "$records" ]] || { echo "$e wrote $got rows, want $records"; exit 1; }
  fi
  rm -rf "$out"
}
engines=(inlet-delta inlet-parquet python-delta)
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for DATASET in ${DATASETS//,/ }; do
DATA="${INLET_BENCH_DATA:-$HOME/.cache/inlet/bench-data}/$DATASET.seed42.singer.jsonl"
[[ -f "$DATA" ]] || { echo "missing $DATA: run bash bench/run.sh once to generate it" >&2; exit 1; }
records=$(grep -c '"type":"RECORD"' "$DATA")
cat "$DATA" >/dev/null
unset WALL RSS; declare -A WALL RSS
for ((i = 0; i < RUNS; i++)); do
  for ((j = 0; j < ${#engines[@]}; j++)); do
    e=${engines[$(( (i + j) % ${#engines[@]} ))]}
    run "$e" "$work/out-$e"
  done
done
echo "dataset $DATASET: $records records, $(( $(stat -c %s "$DATA") / 1000000 )) MB; $RUNS runs each, interleaved; load1 $(cut -d' ' -f1 /proc/loadavg)"
printf '| engine | wall s (median) | records/s | peak RSS MB |\n|---|---|---|---|\n'
for e in "${engines[@]}"; do
  m=$(echo "${WALL[$e]}" | median)
  printf '| %s | %s | %.0f | %s |\n' "$e" "$m" "$(echo "$records / $m" | bc -l)" "${RSS[$e]}"
done
echo
done
