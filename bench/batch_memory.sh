#!/usr/bin/env bash
# Peak memory of `inlet load` on BATCH messages: a manifest of 200 MB of JSONL
# files against one of 2 GB (ten links to 200 MB files), and the same with
# gzipped files. Files are streamed, so the two peaks should be alike.
# This is a benchmark, not a test; it never builds inlet:
#   CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target} cargo build --release
# Usage: bash bench/batch_memory.sh [--runs N]        (GNU time at /usr/bin/time)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runs=3
[ "${1:-}" = "--runs" ] && runs="$2"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}"
bin="${INLET_BIN:-$CARGO_TARGET_DIR/release/inlet}"
gen="${INLET_GEN:-$here/../../shared/bench/gen_singer.py}"
data="${INLET_BENCH_DATA:-$HOME/.cache/inlet/bench-data}/batch"
[ -x "$bin" ] || { echo "batch_memory.sh: no inlet binary at $bin (build it first, or set INLET_BIN)" >&2; exit 2; }
[ -f "$gen" ] || { echo "batch_memory.sh: no generator at $gen (set INLET_GEN)" >&2; exit 2; }
mkdir -p "$data"

# ~200 MB of flat records (446 bytes each), generated once
if [ ! -s "$data/part-00.jsonl" ]; then
  python3 "$gen" -n 450000 -p flat --payload-only > "$data/part-00.jsonl.tmp"
  mv "$data/part-00.jsonl.tmp" "$data/part-00.jsonl"
fi
[ -s "$data/part-00.jsonl.gz" ] || gzip -1 -k "$data/part-00.jsonl"
for i in 01 02 03 04 05 06 07 08 09; do
  ln -f "$data/part-00.jsonl" "$data/part-$i.jsonl"
  ln -f "$data/part-00.jsonl.gz" "$data/part-$i.jsonl.gz"
done
python3 "$gen" -n 1 -p flat | head -1 > "$data/schema.jsonl"

# input: the SCHEMA, one BATCH message with a manifest of N files, a STATE
input() { # files ext compression
  local n="$1" ext="$2" comp="$3" out="$data/input-$1-$2.jsonl"
  python3 - "$data" "$n" "$ext" "$comp" > "$out" <<'PY'
import json, sys
d, n, ext, comp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
print(open(f"{d}/schema.jsonl").read().strip())
print(json.dumps({"type": "BATCH", "stream": "flat", "encoding": {"format": "jsonl", "compression": comp},
                  "manifest": [f"file://{d}/part-{i:02d}.{ext}" for i in range(n)]}))
print(json.dumps({"type": "STATE", "value": {"done": n}}))
PY
  echo "$out"
}

printf '%-28s %8s %10s %10s %12s\n' "manifest" "run" "wall s" "peak MB" "records/s"
for case in "1 jsonl none" "10 jsonl none" "1 jsonl.gz gzip" "10 jsonl.gz gzip"; do
  set -- $case
  in="$(input "$1" "$2" "$3")"
  size=$(( $(stat -c %s "$data/part-00.$2") * $1 / 1000000 ))
  for r in $(seq 1 "$runs"); do
    out="$(mktemp -d)"
    printf '{"destination": "%s", "format": "parquet"}' "$out" > "$out.cfg.json"
    sync
    /usr/bin/time -v "$bin" load --config "$out.cfg.json" --input "$in" > /dev/null 2> "$out.time"
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$out.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$out.time")
    recs=$(( 450000 * $1 ))
    printf '%-28s %8s %10s %10s %12.0f\n' "$1 x $2 ($size MB)" "$r" "$wall" "$rss" "$(echo "$recs / $wall" | bc -l)"
    rm -rf "$out" "$out.cfg.json" "$out.time"
  done
done
