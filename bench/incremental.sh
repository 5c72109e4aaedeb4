#!/usr/bin/env bash
# Incremental export benchmark: TPC-H SF1 lineitem (6M rows, primary key (l_orderkey,
# l_linenumber)) with an indexed `updated_at`, exported incrementally to Delta and to Parquet:
# the first run (a reload), then a run after 1% of the rows were updated, then a run with
# nothing new. Prints wall seconds and peak RSS per run, and checks that the Delta table holds
# each row once. Never builds inlet: build the release binary first; bench/export.sh makes
# tpch.lineitem.
#   bash bench/incremental.sh [--updates-mod 100] [--lag 0] [--formats delta,parquet]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}"
inlet="${INLET_BIN:-$CARGO_TARGET_DIR/release/inlet}"
[ -x "$inlet" ] || { echo "bench/incremental.sh: no inlet binary at $inlet (cargo build --release)" >&2; exit 2; }
mod=100
lag=0
formats=delta,parquet
while [ $# -gt 0 ]; do
  case "$1" in
    --updates-mod) mod="$2"; shift 2 ;;
    --lag) lag="$2"; shift 2 ;;
    --formats) formats="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/pg.sh" start >&2
url="$("$root/scripts/pg.sh" url)?sslmode=disable"
have="$(psql "$url" -XAtc "SELECT to_regclass('tpch.lineitem') IS NOT NULL")"
[ "$have" = t ] || { echo "bench/incremental.sh: no tpch.lineitem: run bash bench/export.sh --runs 1 --engines inlet once" >&2; exit 2; }
echo "preparing bench_inc.lineitem (a copy of tpch.lineitem with an indexed updated_at)" >&2
psql "$url" -Xq -v ON_ERROR_STOP=1 <<SQL
DROP SCHEMA IF EXISTS bench_inc CASCADE;
CREATE SCHEMA bench_inc;
CREATE TABLE bench_inc.lineitem AS
  SELECT *, '2026-01-01'::timestamptz + (l_orderkey % 86400) * interval '1 second' AS updated_at
  FROM tpch.lineitem;
ALTER TABLE bench_inc.lineitem ADD PRIMARY KEY (l_orderkey, l_linenumber);
CREATE INDEX ON bench_inc.lineitem (updated_at);
VACUUM ANALYZE bench_inc.lineitem;
SQL
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
export INLET_LOG=warn
run() { # label format
  local t0 t1 rss
  /usr/bin/time -f "%e %M" -o "$out/time" "$inlet" export --source "$url" -i bench_inc.lineitem \
    --output-dir "$out/$2" --format "$2" --run-log "$out/runs.sqlite" \
    --incremental "bench_inc.lineitem:updated_at:lag=$lag" > "$out/summary" 2> "$out/err" \
    || { cat "$out/err" >&2; exit 1; }
  read -r secs rss < "$out/time"
  rows="$(awk '$1 == "bench_inc.lineitem" {print $2}' "$out/summary")"
  printf "| %-8s | %-32s | %9s | %7.2f | %6.0f |\n" "$2" "$1" "$rows" "$secs" "$((rss / 1024))"
}
echo "| format   | run                              |      rows |  wall s | RSS MB |"
echo "|----------|----------------------------------|-----------|---------|--------|"
for fmt in ${formats//,/ }; do
  psql "$url" -Xq -c "UPDATE bench_inc.lineitem SET updated_at = '2026-01-01'::timestamptz + (l_orderkey % 86400) * interval '1 second', l_comment = 'v1' WHERE l_comment = 'updated'" >/dev/null
  run "first run (reload)" "$fmt"
  n="$(psql "$url" -XAtc "WITH u AS (UPDATE bench_inc.lineitem SET updated_at = now(), l_comment = 'updated' WHERE l_orderkey % $mod = 7 RETURNING 1) SELECT count(*) FROM u")"
  run "after $n rows were updated" "$fmt"
  run "nothing new" "$fmt"
done
py="$HOME/.cache/inlet/venv/bin/python"
if [ -x "$py" ] && [ -d "$out/delta" ]; then
  "$py" - "$out/delta/bench_inc/lineitem" "$url" <<'PY'
import subprocess, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1]).to_pyarrow_table(columns=["l_orderkey", "l_linenumber", "l_comment"])
keys = set(zip(t.column("l_orderkey").to_pylist(), t.column("l_linenumber").to_pylist()))
want = int(subprocess.run(["psql", sys.argv[2], "-XAtc", "SELECT count(*) FROM bench_inc.lineitem"],
                          capture_output=True, text=True, check=True).stdout)
upd = sum(1 for c in t.column("l_comment").to_pylist() if c == "updated")
print(f"\ndelta check: {t.num_rows} rows, {len(keys)} keys, {want} in PostgreSQL, {upd} updated rows")
assert t.num_rows == len(keys) == want
PY
fi
