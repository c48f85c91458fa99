#!/usr/bin/env bash
# npm stop: stops everything npm start started. The data stays in .stack/ (npm run db:reset wipes the database).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
stop_pidfile() {
  local f="$STACK_DIR/$1.pid" i
  if pid_alive "$f"; then
    local pid; pid="$(cat "$f")"
    pkill -TERM -P "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$f"
}
stop_pidfile functions-test
stop_pidfile functions
# Function workers are stopped by their server; any left by a server that crashed go now.
pkill -TERM -f "$ROOT/scripts/stack/function-worker.ts" 2>/dev/null || true
stop_pidfile auth
stop_pidfile rest
stop_pidfile upstash
stop_pidfile redis
if pg_running; then
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null && log "stopped postgres"
fi
