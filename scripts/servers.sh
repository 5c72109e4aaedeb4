#!/usr/bin/env bash
# Object-storage test servers on 127.0.0.1 only (issue #3):
#
#   scripts/servers.sh install   install what is missing (s3s-fs via cargo, azurite via npm;
#                                moto comes with the test venv of scripts/test-env.sh)
#   scripts/servers.sh start     start all four, wait until each answers
#   scripts/servers.sh env       print the export lines the tests read
#   scripts/servers.sh stop      stop them
#
# | server          | port  | what                                                        |
# |-----------------|-------|-------------------------------------------------------------|
# | moto_server     | 45100 | S3 + STS (does not check signatures)                        |
# | s3s-fs          | 45101 | S3 that verifies SigV4 (key inlet-test / inlet-test-secret) |
# | azurite-blob    | 45102 | Azure Blob (well-known devstoreaccount1 account)            |
# | gcs_xml_fake.py | 45103 | a FAKE of the GCS XML API subset object_store uses          |
#
# Ports can be moved with INLET_PORT_BASE (default 45100). State lives in $INLET_SERVERS_DIR
# (default /tmp/inlet-servers-$UID) and is wiped on start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE="${INLET_PORT_BASE:-45100}"
DIR="${INLET_SERVERS_DIR:-/tmp/inlet-servers-$UID}"
TOOLS="${INLET_TOOLS_DIR:-$HOME/.cache/inlet/tools}"
NODE_DIR="${INLET_NODE_DIR:-$HOME/.cache/inlet/node}"
VENV="${INLET_VENV:-$HOME/.cache/inlet/venv}"
S3S_VERSION=0.14.1
AZURITE_VERSION=3.35.0
MOTO_PORT=$BASE; S3S_PORT=$((BASE + 1)); AZURITE_PORT=$((BASE + 2)); GCS_PORT=$((BASE + 3))

log() { echo "servers: $*" >&2; }

install() {
  if [[ ! -x "$TOOLS/bin/s3s-fs" ]] || ! "$TOOLS/bin/s3s-fs" --version | grep -q "$S3S_VERSION"; then
    log "installing s3s-fs $S3S_VERSION (cargo install, a few minutes once)"
    cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked --root "$TOOLS" --quiet
  fi
  if [[ ! -x "$NODE_DIR/node_modules/.bin/azurite-blob" ]] \
    || ! grep -q "\"version\": \"$AZURITE_VERSION\"" "$NODE_DIR/node_modules/azurite/package.json"; then
    log "installing azurite $AZURITE_VERSION (npm)"
    mkdir -p "$NODE_DIR"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent "azurite@$AZURITE_VERSION" >/dev/null)
  fi
  [[ -x "$VENV/bin/moto_server" ]] || { log "moto_server missing: run scripts/test-env.sh first"; exit 1; }
}

wait_port() { # name port
  for _ in $(seq 1 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$1 did not start on 127.0.0.1:$2; its log:"; tail -20 "$DIR/$1.log" >&2 || true
  exit 1
}

start_one() { # name cmd...
  local name="$1"; shift
  nohup "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

start() {
  install
  stop 2>/dev/null || true
  rm -rf "$DIR"; mkdir -p "$DIR/s3s" "$DIR/azurite" "$DIR/gcs"
  start_one moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
  start_one s3s "$TOOLS/bin/s3s-fs" --host 127.0.0.1 --port "$S3S_PORT" \
    --access-key inlet-test --secret-key inlet-test-secret "$DIR/s3s"
  start_one azurite "$NODE_DIR/node_modules/.bin/azurite-blob" --blobHost 127.0.0.1 \
    --blobPort "$AZURITE_PORT" --inMemoryPersistence \
    --skipApiVersionCheck --loose --disableTelemetry
  start_one gcs "$VENV/bin/python" "$ROOT/tests/e2e/fakes/gcs_xml_fake.py" \
    --host 127.0.0.1 --port "$GCS_PORT" --root "$DIR/gcs"
  wait_port moto "$MOTO_PORT"; wait_port s3s "$S3S_PORT"
  wait_port azurite "$AZURITE_PORT"; wait_port gcs "$GCS_PORT"
  seed
  log "moto :$MOTO_PORT, s3s-fs :$S3S_PORT, azurite :$AZURITE_PORT, gcs fake :$GCS_PORT (logs in $DIR)"
}

# A bucket / container named inlet-test on each server, and a GCS service-account file
# with a fresh RSA key (object_store signs its JWT with it; the fake checks one is sent).
seed() {
  mkdir -p "$DIR/s3s/inlet-test" "$DIR/gcs/inlet-test"
  openssl genrsa -out "$DIR/gcs-key.pem" 2048 2>/dev/null
  eval "$(env_lines)"
  "$VENV/bin/python" - <<'PY'
import json, os, boto3
from azure.storage.blob import BlobServiceClient
d = os.environ["INLET_SERVERS_DIR"]
boto3.client("s3", endpoint_url=os.environ["INLET_MOTO_ENDPOINT"], region_name="us-east-1",
             aws_access_key_id="fake", aws_secret_access_key="fake").create_bucket(Bucket="inlet-test")
BlobServiceClient.from_connection_string(os.environ["INLET_AZURITE_CONNECTION_STRING"]).create_container("inlet-test")
json.dump({"type": "service_account", "project_id": "inlet-test", "private_key_id": "test-key-1",
           "private_key": open(os.path.join(d, "gcs-key.pem")).read(),
           "client_email": "inlet-test@inlet-test.iam.gserviceaccount.com", "client_id": "1",
           "token_uri": "http://127.0.0.1:1/token"}, open(os.path.join(d, "gcs-sa.json"), "w"))
PY
}

stop() {
  for name in moto s3s azurite gcs; do
    if [[ -f "$DIR/$name.pid" ]]; then
      kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
      rm -f "$DIR/$name.pid"
    fi
  done
}

env_lines() {
  cat <<EOF2
export INLET_SERVERS_DIR='$DIR'
export INLET_MOTO_ENDPOINT='http://127.0.0.1:$MOTO_PORT'
export INLET_S3S_ENDPOINT='http://127.0.0.1:$S3S_PORT'
export INLET_S3S_ROOT='$DIR/s3s'
export INLET_AZURITE_ENDPOINT='http://127.0.0.1:$AZURITE_PORT/devstoreaccount1'
export INLET_GCS_ENDPOINT='http://127.0.0.1:$GCS_PORT'
export INLET_GCS_ROOT='$DIR/gcs'
export INLET_GCS_SA='$DIR/gcs-sa.json'
export INLET_AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export INLET_AZURITE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$AZURITE_PORT/devstoreaccount1;'
# the fake credentials every S3 test server accepts (s3s-fs checks them)
export INLET_S3S_KEY='inlet-test'
export INLET_S3S_SECRET='inlet-test-secret'
# never let a credential chain reach a metadata service from a test
export AWS_EC2_METADATA_DISABLED=true
EOF2
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) env_lines ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
