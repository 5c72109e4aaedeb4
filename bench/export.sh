#!/usr/bin/env bash
# The `inlet export` benchmark (bench/export_bench.py): TPC-H SF1 lineitem in the test
# PostgreSQL (scripts/pg.sh), through inlet, DuckDB's postgres extension and binary COPY to
# /dev/null, interleaved. Never builds inlet: build the release binary first.
#   bash bench/export.sh [--runs N] [--engines inlet,duckdb,connectorx,pg2parquet,copy_x1,copy_x2]
#                        [--tables tpch.lineitem,tpch.mixed,tpch.wide] [--inlet-prev OTHER_BINARY]
#                        [--inlet-args "--max-file-size 16MB"]
# Engines also: inlet_p1 (--parallel 1), inlet_tls (sslmode=require), inlet_delta (--format delta).
# tpch.wide (400 rows of 1.28 MB text, TOAST-heavy) is made when --tables names it.
# pg2parquet runs when ~/.cache/inlet/bench-tools/bin/pg2parquet exists
# (cargo install pg2parquet --version 0.2.2 --locked --root ~/.cache/inlet/bench-tools: ~5 min).
# Sets up once: a venv at ~/.cache/inlet/bench-venv with duckdb 1.5.5 and its postgres_scanner
# and tpch extensions (loaded by file path), and the table tpch.lineitem (dbgen sf=1 → CSV → COPY,
# about two minutes).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/inlet/target}"
inlet="${INLET_BIN:-$CARGO_TARGET_DIR/release/inlet}"
[ -x "$inlet" ] || { echo "bench/export.sh: no inlet binary at $inlet (cargo build --release)" >&2; exit 2; }
venv="$HOME/.cache/inlet/bench-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q duckdb==1.5.5 duckdb-extension-postgres-scanner==1.5.5 \
    duckdb-extension-tpch==1.5.5 pyarrow
fi
"$venv/bin/python" -c "import connectorx" 2>/dev/null || "$venv/bin/pip" install -q connectorx==0.4.6
site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
scanner="$site/duckdb_extension_postgres_scanner/extensions/v1.5.5/postgres_scanner.duckdb_extension"
tpch="$site/duckdb_extension_tpch/extensions/v1.5.5/tpch.duckdb_extension"
"$root/scripts/pg.sh" start >&2
url="$("$root/scripts/pg.sh" url)?sslmode=disable"
have="$(psql "$url" -XAtc "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relname = 'lineitem'")"
if [ "$have" != 1 ]; then
  echo "bench/export.sh: generating TPC-H SF1 lineitem (once)" >&2
  csv="$(mktemp -d)/lineitem.csv"
  "$venv/bin/python" -c "import duckdb; c = duckdb.connect(); c.execute(\"LOAD '$tpch'\"); c.execute('CALL dbgen(sf=1)'); c.execute(\"COPY lineitem TO '$csv' (HEADER false)\")"
  psql "$url" -Xq -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA IF NOT EXISTS tpch;
DROP TABLE IF EXISTS tpch.lineitem;
CREATE TABLE tpch.lineitem (
  l_orderkey bigint NOT NULL, l_partkey bigint NOT NULL, l_suppkey bigint NOT NULL,
  l_linenumber integer NOT NULL, l_quantity numeric(15,2) NOT NULL,
  l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL,
  l_tax numeric(15,2) NOT NULL, l_returnflag char(1) NOT NULL, l_linestatus char(1) NOT NULL,
  l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL,
  l_shipinstruct char(25) NOT NULL, l_shipmode char(10) NOT NULL, l_comment varchar(44) NOT NULL,
  PRIMARY KEY (l_orderkey, l_linenumber));
\copy tpch.lineitem FROM '$csv' (FORMAT csv)
VACUUM ANALYZE tpch.lineitem;
SQL
  rm -rf "$(dirname "$csv")"
fi
have="$(psql "$url" -XAtc "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relname = 'mixed'")"
if [ "$have" != 1 ]; then
  echo "bench/export.sh: generating tpch.mixed, 1M rows of mixed types (once)" >&2
  psql "$url" -Xq -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE tpch.mixed AS SELECT g::bigint AS id,
  md5(g::text)::uuid AS u,
  g % 3 = 0 AS flag,
  timestamptz '2020-01-01 00:00:00+00' + g * interval '37 seconds' AS at,
  CASE WHEN g % 10 = 0 THEN NULL ELSE round((g * 1.2345)::numeric, g % 5) END AS amount,
  round((g::numeric * 1000000007) % 10000000000000000000 / 1000, 3) AS big,
  jsonb_build_object('k', g, 'nested', jsonb_build_object('a', g % 7, 'b', md5(g::text))) AS doc,
  ARRAY['a' || g, 'b' || (g % 100), 'c'] AS tags,
  repeat('x', g % 50) AS note
FROM generate_series(1, 1000000) g;
ALTER TABLE tpch.mixed ADD PRIMARY KEY (id);
VACUUM ANALYZE tpch.mixed;
SQL
fi
if [[ " $* " == *tpch.wide* ]]; then
  have="$(psql "$url" -XAtc "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' AND c.relname = 'wide'")"
  if [ "$have" != 1 ]; then
    echo "bench/export.sh: generating tpch.wide, 400 rows of 1.28 MB text (once)" >&2
    psql "$url" -Xq -v ON_ERROR_STOP=1 -c "CREATE TABLE tpch.wide AS SELECT g AS id,
      (SELECT string_agg(md5((g * 100000 + i)::text), '') FROM generate_series(1, 40000) i) AS blob
      FROM generate_series(1, 400) g; ANALYZE tpch.wide"
  fi
fi
# warm the page cache
psql "$url" -XAqc "COPY tpch.lineitem TO STDOUT (FORMAT binary)" > /dev/null
psql "$url" -XAqc "COPY tpch.mixed TO STDOUT (FORMAT binary)" > /dev/null
exec "$venv/bin/python" "$here/export_bench.py" --url "$url" --inlet "$inlet" --scanner "$scanner" "$@"
