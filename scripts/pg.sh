#!/usr/bin/env bash
# The test PostgreSQL server, on 127.0.0.1 only.
#
#   scripts/pg.sh start   install (apt, only if pg_ctlcluster is missing), create the cluster if
#                         missing, listen on 127.0.0.1, start it, create role + database inlet_test
#   scripts/pg.sh seed    (re)load tests/fixtures/pg_seed.sql into inlet_test (idempotent)
#   scripts/pg.sh stop    stop the cluster
#   scripts/pg.sh url     print the database URL (postgresql://inlet:...@127.0.0.1:PORT/inlet_test)
#   scripts/pg.sh psql    open psql on inlet_test as the test role (extra args are passed on)
#
# Env: INLET_PG_VERSION (default: the installed one, else 15), INLET_PG_CLUSTER (main),
#      INLET_PG_PORT (5432). The role and password are test-only values: inlet / inlet.
# No logical replication is set up: the taps are run with FULL_TABLE / INCREMENTAL replication.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER="${INLET_PG_CLUSTER:-main}"
PORT="${INLET_PG_PORT:-5432}"
ROLE=inlet
PASSWORD=inlet
DB=inlet_test

log() { echo "pg: $*" >&2; }

as_postgres() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    sudo -u postgres -- "$@"
  fi
}

pg_version() {
  if [[ -n "${INLET_PG_VERSION:-}" ]]; then echo "$INLET_PG_VERSION"; return; fi
  local v
  v="$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)"
  echo "${v:-15}"
}

install_if_missing() {
  if command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d "/usr/lib/postgresql/$(pg_version)/bin" ]]; then
    return
  fi
  log "pg_ctlcluster / server not found: installing PostgreSQL with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ! apt-get install -y -qq "postgresql-$(pg_version)" >/dev/null; then
    apt-get install -y -qq postgresql >/dev/null
  fi
}

psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }

url() { echo "postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"; }

start() {
  install_if_missing
  local v
  v="$(pg_version)"
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$v $CLUSTER"; then
    log "creating cluster $v/$CLUSTER on port $PORT"
    pg_createcluster --port "$PORT" "$v" "$CLUSTER" >/dev/null
  fi
  local conf="/etc/postgresql/$v/$CLUSTER/postgresql.conf"
  # Loopback only, and the port we were asked for.
  if ! grep -qx "listen_addresses = '127.0.0.1'" "$conf" || ! grep -qx "port = $PORT" "$conf"; then
    sed -i -E '/^[[:space:]]*(listen_addresses|port)[[:space:]]*=/d' "$conf"
    printf "listen_addresses = '127.0.0.1'\nport = %s\n" "$PORT" >> "$conf"
    if pg_lsclusters -h | awk -v v="$v" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
      pg_ctlcluster "$v" "$CLUSTER" restart
    fi
  fi
  if ! pg_lsclusters -h | awk -v v="$v" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
    log "starting cluster $v/$CLUSTER"
    pg_ctlcluster "$v" "$CLUSTER" start
  fi
  for _ in $(seq 1 50); do
    as_postgres pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.2
  done
  as_postgres pg_isready -q -h 127.0.0.1 -p "$PORT" || { log "server did not become ready"; exit 1; }
  psql_admin -d postgres <<SQL
DO \$\$BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
  END IF;
END\$\$;
SQL
  if [[ "$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
    psql_admin -d postgres -c "CREATE DATABASE $DB OWNER $ROLE"
  fi
  log "ready: $(url)"
}

seed() {
  PGPASSWORD="$PASSWORD" psql -X -q -v ON_ERROR_STOP=1 "$(url)" -f "$ROOT/tests/fixtures/pg_seed.sql"
  log "seeded $DB from tests/fixtures/pg_seed.sql"
}

stop() {
  local v
  v="$(pg_version)"
  if command -v pg_ctlcluster >/dev/null 2>&1 &&
     pg_lsclusters -h | awk -v v="$v" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
    pg_ctlcluster "$v" "$CLUSTER" stop
    log "stopped $v/$CLUSTER"
  fi
}

case "${1:-}" in
  start) start ;;
  seed) seed ;;
  stop) stop ;;
  url) url ;;
  psql) shift; PGPASSWORD="$PASSWORD" exec psql -X "$(url)" "$@" ;;
  *) echo "usage: $0 start|seed|stop|url|psql" >&2; exit 2 ;;
esac
