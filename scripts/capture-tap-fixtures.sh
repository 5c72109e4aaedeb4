#!/usr/bin/env bash
# Regenerate the real-tap fixtures in tests/fixtures/taps/ (Singer output of real taps).
#
#   scripts/capture-tap-fixtures.sh
#
# Needs: scripts/test-env.sh (venvs), scripts/pg.sh (starts + seeds PostgreSQL on 127.0.0.1).
# Writes:
#   tests/fixtures/taps/<tap>-<what>.singer.jsonl     tap stdout, unchanged except that the
#                                                    repo's absolute path is replaced by "."
#   tests/fixtures/taps/config/<tap>.config.json       configs as used, password replaced by a fake
#   tests/fixtures/taps/config/<tap>.catalog.json      discovered catalog
#   tests/fixtures/taps/config/<tap>-<mode>.catalog.json  catalog with all streams selected
#   tests/fixtures/taps/config/<tap>-resume.state.json the state given to the *_resume runs
# The committed configs hold "password": "FAKE_PASSWORD"; the real one comes from INLET_PG_URL
# (default: scripts/pg.sh url) when the script runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/tests/fixtures/taps"
CFG="$OUT/config"
mkdir -p "$OUT" "$CFG"
cd "$ROOT"

eval "$(scripts/test-env.sh 2>/dev/null | grep '^export ')"
if [[ -z "${INLET_PG_URL:-}" ]]; then
  scripts/pg.sh start
  INLET_PG_URL="$(scripts/pg.sh url)"
fi
PGPASSWORD_FROM_URL="$(python3 -c 'import sys, urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).password or ""))' "$INLET_PG_URL")"
psql -X -q -v ON_ERROR_STOP=1 "$INLET_PG_URL" -f tests/fixtures/pg_seed.sql

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# real_config FAKE_CONFIG -> path of a copy with the real password
real_config() {
  python3 - "$1" "$TMP/$(basename "$1")" "$INLET_PG_URL" <<'PY'
import json, sys, urllib.parse as u
src, dst, url = sys.argv[1:4]
c = json.load(open(src))
p = u.urlsplit(url)
if "password" in c:
    c["password"] = u.unquote(p.password or "")
if "host" in c:
    c["host"], c["port"] = p.hostname, p.port or 5432
json.dump(c, open(dst, "w"))
print(dst)
PY
}

last_state() { # FILE -> JSON value of the last STATE message
  python3 -c '
import json, sys
last = None
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("type") == "STATE":
        last = m["value"]
json.dump(last, sys.stdout, indent=2)
print()' "$1"
}

sanitize() { # FILE: make paths repo-relative; report size
  sed -i "s#$ROOT/#./#g" "$1"
  echo "capture: $(basename "$1"): $(wc -l < "$1") lines, $(wc -c < "$1") bytes" >&2
}

# ---- pipelinewise-tap-postgres -------------------------------------------------------------
cat > "$CFG/tap-postgres-pipelinewise.config.json" <<'EOF'
{
  "host": "127.0.0.1",
  "port": 5432,
  "user": "inlet",
  "password": "FAKE_PASSWORD",
  "dbname": "inlet_test",
  "filter_schemas": "public",
  "default_replication_method": "FULL_TABLE"
}
EOF
tap="$INLET_TAP_POSTGRES_PIPELINEWISE"
conf="$(real_config "$CFG/tap-postgres-pipelinewise.config.json")"
"$tap" -c "$conf" --discover > "$CFG/tap-postgres-pipelinewise.catalog.json"
python3 scripts/singer_select.py "$CFG/tap-postgres-pipelinewise.catalog.json" \
  "$CFG/tap-postgres-pipelinewise-full_table.catalog.json" --method FULL_TABLE
python3 scripts/singer_select.py "$CFG/tap-postgres-pipelinewise.catalog.json" \
  "$CFG/tap-postgres-pipelinewise-incremental.catalog.json" --method INCREMENTAL --replication-key updated_at
for mode in full_table incremental; do
  f="$OUT/tap-postgres-pipelinewise-$mode.singer.jsonl"
  "$tap" -c "$conf" --properties "$CFG/tap-postgres-pipelinewise-$mode.catalog.json" > "$f" 2> "$TMP/err" ||
    { cat "$TMP/err" >&2; exit 1; }
  sanitize "$f"
done
last_state "$OUT/tap-postgres-pipelinewise-incremental.singer.jsonl" > "$CFG/tap-postgres-pipelinewise-resume.state.json"
f="$OUT/tap-postgres-pipelinewise-incremental_resume.singer.jsonl"
"$tap" -c "$conf" --properties "$CFG/tap-postgres-pipelinewise-incremental.catalog.json" \
  --state "$CFG/tap-postgres-pipelinewise-resume.state.json" > "$f" 2> "$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
sanitize "$f"

# ---- meltanolabs-tap-postgres (Meltano SDK) ------------------------------------------------
cat > "$CFG/tap-postgres-meltanolabs.config.json" <<'EOF'
{
  "host": "127.0.0.1",
  "port": 5432,
  "user": "inlet",
  "password": "FAKE_PASSWORD",
  "database": "inlet_test",
  "filter_schemas": ["public"]
}
EOF
tap="$INLET_TAP_POSTGRES_MELTANOLABS"
conf="$(real_config "$CFG/tap-postgres-meltanolabs.config.json")"
"$tap" --config "$conf" --discover > "$CFG/tap-postgres-meltanolabs.catalog.json" 2> "$TMP/err" ||
  { cat "$TMP/err" >&2; exit 1; }
python3 scripts/singer_select.py "$CFG/tap-postgres-meltanolabs.catalog.json" \
  "$CFG/tap-postgres-meltanolabs-full_table.catalog.json" --method FULL_TABLE
python3 scripts/singer_select.py "$CFG/tap-postgres-meltanolabs.catalog.json" \
  "$CFG/tap-postgres-meltanolabs-incremental.catalog.json" --method INCREMENTAL --replication-key updated_at
for mode in full_table incremental; do
  f="$OUT/tap-postgres-meltanolabs-$mode.singer.jsonl"
  "$tap" --config "$conf" --catalog "$CFG/tap-postgres-meltanolabs-$mode.catalog.json" > "$f" 2> "$TMP/err" ||
    { cat "$TMP/err" >&2; exit 1; }
  sanitize "$f"
done
last_state "$OUT/tap-postgres-meltanolabs-incremental.singer.jsonl" > "$CFG/tap-postgres-meltanolabs-resume.state.json"
f="$OUT/tap-postgres-meltanolabs-incremental_resume.singer.jsonl"
"$tap" --config "$conf" --catalog "$CFG/tap-postgres-meltanolabs-incremental.catalog.json" \
  --state "$CFG/tap-postgres-meltanolabs-resume.state.json" > "$f" 2> "$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
sanitize "$f"

# ---- tap-jsonl (file tap, Meltano SDK) -----------------------------------------------------
cat > "$CFG/tap-jsonl.config.json" <<'EOF'
{
  "path": "tests/fixtures/taps/input/orders.jsonl",
  "stream_name": "orders",
  "primary_keys": ["order_id"]
}
EOF
# _sdc_last_modified is the file's mtime: pin it so the fixture is reproducible.
touch -d '2024-03-21T00:00:00Z' tests/fixtures/taps/input/orders.jsonl
f="$OUT/tap-jsonl-orders.singer.jsonl"
"$INLET_TAP_JSONL" --config "$CFG/tap-jsonl.config.json" > "$f" 2> "$TMP/err" || { cat "$TMP/err" >&2; exit 1; }
sanitize "$f"

echo "capture: done (password in $CFG/*.config.json is FAKE_PASSWORD; real one from INLET_PG_URL)" >&2
