#!/usr/bin/env bash
# npm run db:reset: drops the local database, restarts Postgres and re-applies the platform bootstrap, every migration and
# the seed, as `supabase db reset` does. Function workers are restarted so no pooled connection points
# at the dropped database.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
pg_running || die "the database is not running: run npm start"
admin_url="${DB_URL%/postgres}/template1"
log "dropping and recreating the database"
PGCONNECT_TIMEOUT=5 psql "$admin_url" -v ON_ERROR_STOP=1 -qAtX \
  -c 'drop database if exists postgres with (force)' -c 'create database postgres' >/dev/null
# pg_cron's scheduler exits with the database it runs in; a restart brings it back.
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_DIR/postgres.log" -m fast -w -t 60 restart >/dev/null
psql_db -f scripts/stack/bootstrap.sql >/dev/null
psql_db -f scripts/stack/auth/schema.sql >/dev/null
log "applying migrations and seed"
bash scripts/stack/push.sh --include-seed
# The Data API reloads its schema cache on SIGHUP; the others reconnect.
for server in rest auth functions functions-test; do
  if pid_alive "$STACK_DIR/$server.pid"; then kill -HUP "$(cat "$STACK_DIR/$server.pid")"; fi
done
log "database reset"
