#!/usr/bin/env bash
# schemathesis against the real tooken-server, once on SQLite and once on PostgreSQL: every
# check it has (server errors, status codes, content types, headers, response schemas,
# positive and negative data, auth, ...) on every operation but two, with a fixed seed.
#
# The key it authenticates with must keep working, so it may not regenerate or delete it: those
# two operations are excluded here and tested in api-server/tests/api/api_keys.rs.
#
# Usage: .ci/schemathesis.sh [sqlite|postgres]...   (both by default; PostgreSQL needs
# TOOKEN_TEST_POSTGRES_URL, as the integration tests do)
set -euo pipefail
cd "$(dirname "$0")/.."

SEED=18
EXAMPLES=${TOOKEN_SCHEMATHESIS_EXAMPLES:-20}
VENV=/tmp/tooken-schemathesis-venv
if [ ! -x "$VENV/bin/st" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
cargo build -q -p tooken-api-server --bin tooken-server
SERVER=target/debug/tooken-server
WORK=$(mktemp -d /tmp/tooken-schemathesis.XXXXXX)
trap 'kill "${PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

run_against() {
  local backend=$1 database
  case "$backend" in
    sqlite) database="sqlite://$WORK/tooken.db" ;;
    postgres)
      : "${TOOKEN_TEST_POSTGRES_URL:?TOOKEN_TEST_POSTGRES_URL names the PostgreSQL server}"
      local name="tooken_schemathesis_$$"
      PGOPTIONS='-c client_min_messages=warning' psql -q "$TOOKEN_TEST_POSTGRES_URL" \
        -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
      DROP_DATABASE=$name
      database="${TOOKEN_TEST_POSTGRES_URL%/*}/$name"
      ;;
    *) echo "unknown backend $backend" >&2; return 2 ;;
  esac
  local key port
  key=$(DATABASE_URL=$database "$SERVER" bootstrap --workspace schemathesis 2>/dev/null)
  port=$(free_port)
  DATABASE_URL=$database TOOKEN_LISTEN=127.0.0.1:$port "$SERVER" >"$WORK/server-$backend.log" 2>&1 &
  PID=$!
  local base="http://127.0.0.1:$port"
  for _ in $(seq 100); do
    curl -sf "$base/readyz" >/dev/null && break
    sleep 0.1
  done
  echo "schemathesis on $backend: seed $SEED, up to $EXAMPLES examples per operation"
  local started=$SECONDS status=0
  "$VENV/bin/st" --config-file .ci/schemathesis.toml run "$base/v1/openapi.json" \
    --checks all \
    --seed "$SEED" \
    --max-examples "$EXAMPLES" \
    --header "Authorization: Bearer $key" \
    --exclude-operation-id regenerate_api_key \
    --exclude-operation-id delete_api_key \
    --suppress-health-check all \
    --workers 1 || status=$?
  echo "schemathesis on $backend took $((SECONDS - started)) s"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  unset PID
  if [ -n "${DROP_DATABASE:-}" ]; then
    psql -q "$TOOKEN_TEST_POSTGRES_URL" -c "DROP DATABASE $DROP_DATABASE"
    unset DROP_DATABASE
  fi
  return "$status"
}

failed=0
for backend in "${@:-sqlite postgres}"; do
  for one in $backend; do
    run_against "$one" || failed=1
  done
done
exit "$failed"
