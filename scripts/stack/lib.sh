# Shared settings and helpers for the local stack scripts. Source it; don't run it.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_DIR="${STACK_DIR:-$ROOT/.stack}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_DATA="$STACK_DIR/pgdata"
PG_RUN="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/logs"
KEYS_FILE="$STACK_DIR/keys.json"

API_PORT="${API_PORT:-54321}"
DB_PORT="${DB_PORT:-54322}"
REDIS_PORT="${REDIS_PORT:-54379}"
UPSTASH_PORT="${UPSTASH_PORT:-54380}"
TEST_API_PORT="${TEST_API_PORT:-54331}"
# The Data API and Auth stand-ins, reached through the API URL (the gateway proxies /rest/v1 and /auth/v1 to them).
REST_PORT="${REST_PORT:-54341}"
AUTH_PORT="${AUTH_PORT:-54342}"

DB_PASSWORD=postgres
DB_URL="postgresql://postgres:${DB_PASSWORD}@127.0.0.1:${DB_PORT}/postgres"
API_URL="http://127.0.0.1:${API_PORT}"
UPSTASH_URL="http://127.0.0.1:${UPSTASH_PORT}"
REST_UPSTREAM_URL="http://127.0.0.1:${REST_PORT}"
AUTH_UPSTREAM_URL="http://127.0.0.1:${AUTH_PORT}"

DENO="$ROOT/node_modules/.bin/deno"
SUPABASE="$ROOT/node_modules/.bin/supabase"

export DENO_NO_UPDATE_CHECK=1 SUPABASE_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

# Runs a command as the OS user that owns the cluster (postgres when we are root).
as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

# A process that has exited but not been reaped yet (a zombie, state Z) is not alive: kill -0 alone says it is.
pid_alive() {
  [ -f "$1" ] || return 1
  local pid state
  pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 0
  [ "$state" != Z ]
}

psql_db() { PGCONNECT_TIMEOUT=5 psql "$DB_URL" -v ON_ERROR_STOP=1 -qAtX "$@"; }

# Waits until a TCP port on 127.0.0.1 accepts connections.
wait_port() {
  local port=$1 what=$2 i
  for i in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  die "$what did not come up on port $port (see $LOG_DIR)"
}

key() { node -e 'const k=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));process.stdout.write(k[process.argv[2]])' "$KEYS_FILE" "$1"; }
