#!/usr/bin/env bash
# inlet load of one dataset to every storage backend started by scripts/servers.sh (all on
# 127.0.0.1), with wall time, records/s and peak RSS per backend. Same machine, same run:
#   bash bench/storage.sh [DATASET]      # default flat_1m (bench/run.sh generates the datasets)
# Needs a release build ($CARGO_TARGET_DIR/release/inlet) and the test venv (scripts/test-env.sh).
# The servers are local processes sharing the 2 cores with inlet: the figures say how much the
# object-store path costs inlet, not how fast a real cloud is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATASET="${1:-flat_1m}"
DATA="${INLET_BENCH_DATA:-$HOME/.cache/inlet/bench-data}/$DATASET.seed42.singer.jsonl"
BIN="${INLET_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}/release/inlet}"
[[ -f "$DATA" ]] || { echo "missing $DATA: run bash bench/run.sh once to generate it" >&2; exit 1; }
[[ -x "$BIN" ]] || { echo "missing $BIN: cargo build --release" >&2; exit 1; }
records=$(grep -c '"type":"RECORD"' "$DATA")
cat "$DATA" >/dev/null   # page cache
"$ROOT/scripts/servers.sh" start
trap '"$ROOT/scripts/servers.sh" stop' EXIT
eval "$("$ROOT/scripts/servers.sh" env)"
work=$(mktemp -d); trap 'rm -rf "$work"; "$ROOT/scripts/servers.sh" stop' EXIT
run=$(date +%s)
declare -A CFG=(
  [local]="{\"destination\": \"$work/local\"}"
  [s3s-fs]="{\"destination\": \"s3://inlet-test/bench-$run\", \"aws_endpoint\": \"$INLET_S3S_ENDPOINT\", \"aws_access_key_id\": \"$INLET_S3S_KEY\", \"aws_secret_access_key\": \"$INLET_S3S_SECRET\", \"aws_region\": \"us-east-1\"}"
  [moto]="{\"destination\": \"s3://inlet-test/bench-$run\", \"aws_endpoint\": \"$INLET_MOTO_ENDPOINT\", \"aws_access_key_id\": \"k\", \"aws_secret_access_key\": \"s\", \"aws_region\": \"us-east-1\"}"
  [azurite]="{\"destination\": \"az://inlet-test/bench-$run\", \"account_name\": \"devstoreaccount1\", \"access_key\": \"$INLET_AZURITE_KEY\", \"azure_endpoint\": \"$INLET_AZURITE_ENDPOINT\"}"
  [gcs-fake]="{\"destination\": \"gs://inlet-test/bench-$run\", \"google_application_credentials\": \"$INLET_GCS_SA\", \"gcs_endpoint\": \"$INLET_GCS_ENDPOINT\"}"
)
printf '%-9s %8s %12s %8s %8s\n' backend "wall s" "records/s" "RSS MB" "files"
for b in local s3s-fs moto azurite gcs-fake; do
  echo "${CFG[$b]}" >"$work/$b.json"
  /usr/bin/time -f '%e %M' -o "$work/$b.time" "$BIN" load --config "$work/$b.json" --input "$DATA" \
    >"$work/$b.state" 2>"$work/$b.err" || { echo "$b failed:"; tail -5 "$work/$b.err"; continue; }
  read -r wall rss <"$work/$b.time"
  files=$(grep -o 'files=[0-9]*' "$work/$b.err" | tail -1 | cut -d= -f2)
  printf '%-9s %8s %12.0f %8d %8s\n' "$b" "$wall" "$(echo "$records / $wall" | bc -l)" $((rss / 1024)) "$files"
done
