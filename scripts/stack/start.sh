#!/usr/bin/env bash
# npm start: brings up the local Supabase-compatible stack. Idempotent: what runs is reused.
#   PostgreSQL 15 (pg_cron, pg_stat_statements, pgTAP)  127.0.0.1:54322
#   Redis                                               127.0.0.1:54379
#   Upstash REST endpoint in front of Redis             127.0.0.1:54380
#   The API URL: /functions/v1, /rest/v1, /auth/v1      127.0.0.1:54321
#     Data API (PostgREST stand-in), behind it           127.0.0.1:54341
#     Auth (Supabase Auth stand-in), behind it           127.0.0.1:54342
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
mkdir -p "$STACK_DIR" "$LOG_DIR"

# 1. What the machine must have.
APT_PACKAGES=(postgresql-15 postgresql-contrib postgresql-15-pgtap postgresql-15-cron postgresql-15-plpgsql-check
  libtap-parser-sourcehandler-pgtap-perl redis-server)
missing_packages() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s ' "$p"
  done
}
missing="$(missing_packages)"
if [ -n "$missing" ]; then
  if is_root; then
    log "installing Debian packages: $missing"
    apt-get update -qq >"$LOG_DIR/apt.log" 2>&1
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing >>"$LOG_DIR/apt.log" 2>&1 ||
      die "apt-get install failed (see $LOG_DIR/apt.log)"
  else
    die "missing Debian packages: $missing
  install them as root: apt-get install -y $missing"
  fi
fi

if [ ! -x "$DENO" ] || [ ! -x "$SUPABASE" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund >"$LOG_DIR/npm.log" 2>&1 || die "npm ci failed (see $LOG_DIR/npm.log)"
fi
[ -x "$DENO" ] || die "deno is missing from node_modules (see $LOG_DIR/npm.log)"

# 2. Keys: a JWT secret, the anon and service_role keys, an ES256 key for the JWKS.
if [ ! -s "$KEYS_FILE" ]; then
  log "generating keys"
  "$DENO" run --quiet --allow-write="$STACK_DIR" --allow-read="$ROOT" scripts/stack/keys.ts "$KEYS_FILE"
  chmod 600 "$KEYS_FILE"
fi

# 3. PostgreSQL.
fresh_cluster=0
if [ ! -s "$PG_DATA/PG_VERSION" ]; then
  log "creating the database cluster in $PG_DATA"
  rm -rf "$PG_DATA" && mkdir -p "$PG_DATA" "$PG_RUN"
  is_root && chown postgres:postgres "$PG_DATA" "$PG_RUN" && chmod 755 "$STACK_DIR"
  pwfile="$(mktemp)" && echo "$DB_PASSWORD" >"$pwfile" && chmod 644 "$pwfile"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 || { rm -f "$pwfile"; die "initdb failed (see $LOG_DIR/initdb.log)"; }
  rm -f "$pwfile"
  printf "\n# The local stack's own settings (rewritten by npm start):\ninclude_dir = 'stack.conf.d'\n" >>"$PG_DATA/postgresql.conf"
  fresh_cluster=1
fi
mkdir -p "$PG_RUN" && is_root && chown postgres:postgres "$PG_RUN"
# The settings a hosted project runs with, kept in one file that every start rewrites (clusters made by an
# earlier version of this script get the include line too). Durable commits as on the platform: fsync,
# synchronous_commit and full_page_writes on. pg_cron runs its jobs in background workers, as it needs no
# connection (and no password) that way.
grep -q "^include_dir = 'stack.conf.d'" "$PG_DATA/postgresql.conf" ||
  printf "\n# The local stack's own settings (rewritten by npm start):\ninclude_dir = 'stack.conf.d'\n" >>"$PG_DATA/postgresql.conf"
# Settings appended by earlier versions of this script (non-durable commits among them) give way to the file.
sed -i '/^# --- local Supabase-compatible stack ---$/,$ { /^include_dir/!d }' "$PG_DATA/postgresql.conf"
mkdir -p "$PG_DATA/stack.conf.d"
stack_conf="$(cat <<CONF
listen_addresses = '127.0.0.1'
port = $DB_PORT
unix_socket_directories = '$PG_RUN'
shared_preload_libraries = 'pg_cron,pg_stat_statements,plpgsql_check'
cron.database_name = 'postgres'
cron.timezone = 'UTC'
cron.use_background_workers = on
cron.max_running_jobs = 8
max_worker_processes = 32
max_connections = 200
timezone = 'UTC'
log_timezone = 'UTC'
fsync = on
synchronous_commit = on
full_page_writes = on
CONF
)"
restart_pg=0
if [ "$(cat "$PG_DATA/stack.conf.d/00_stack.conf" 2>/dev/null)" != "$stack_conf" ]; then
  printf '%s\n' "$stack_conf" >"$PG_DATA/stack.conf.d/00_stack.conf"
  restart_pg=1
fi
is_root && chown -R postgres:postgres "$PG_DATA/stack.conf.d"
if pg_running && [ "$restart_pg" = 1 ]; then
  log "restarting PostgreSQL with the stack's settings"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_DIR/postgres.log" -m fast -w -t 60 restart >/dev/null ||
    die "PostgreSQL did not restart (see $LOG_DIR/postgres.log)"
fi
if ! pg_running; then
  log "starting PostgreSQL on 127.0.0.1:$DB_PORT"
  touch "$LOG_DIR/postgres.log" && is_root && chown postgres:postgres "$LOG_DIR/postgres.log"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_DIR/postgres.log" -w -t 60 start >/dev/null ||
    die "PostgreSQL did not start (see $LOG_DIR/postgres.log)"
fi

# 4. On a new database: the platform bootstrap (what a hosted project has before its first migration),
#    then migrations + seed. On an existing one: only migrations that are not applied yet. (The bootstrap
#    is not re-run over migrations: it would hand back default privileges that a migration revoked.)
if [ "$fresh_cluster" = 1 ] || [ "$(psql_db -c "select to_regclass('auth.users') is null")" = t ]; then
  psql_db -f scripts/stack/bootstrap.sql >/dev/null
  bash scripts/stack/push.sh --include-seed
else
  bash scripts/stack/push.sh
fi
# The auth schema's tables the Auth stand-in uses (Auth's own migrations on a hosted project; idempotent).
psql_db -f scripts/stack/auth/schema.sql >/dev/null

# 5. Redis and the Upstash REST endpoint.
if ! pid_alive "$STACK_DIR/redis.pid"; then
  log "starting Redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$STACK_DIR/redis.pid" \
    --dir "$STACK_DIR" --dbfilename redis.rdb --save '' --appendonly no --logfile "$LOG_DIR/redis.log" ||
    die "Redis did not start (see $LOG_DIR/redis.log)"
  wait_port "$REDIS_PORT" Redis
fi
start_deno_service() { # name port script [args...]
  local name=$1 port=$2 script=$3; shift 3
  if pid_alive "$STACK_DIR/$name.pid"; then return 0; fi
  log "starting $name on 127.0.0.1:$port"
  API_PORT=$port nohup "$DENO" run --allow-all --quiet --unstable-no-legacy-abort "$script" "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$STACK_DIR/$name.pid"
  wait_port "$port" "$name"
}
UPSTASH_TOKEN="$(key upstash_token)"
export UPSTASH_PORT REDIS_PORT UPSTASH_TOKEN
start_deno_service upstash "$UPSTASH_PORT" scripts/stack/upstash-rest.ts

# 6. The Data API and Auth stand-ins (what PostgREST and Supabase Auth are on a hosted project).
export DB_URL KEYS_FILE
start_deno_service rest "$REST_PORT" scripts/stack/rest/server.ts
start_deno_service auth "$AUTH_PORT" scripts/stack/auth/server.ts

# 7. The API gateway and edge functions (their secrets: supabase/functions/.env, made from .env.example the first time).
[ -f supabase/functions/.env ] || cp supabase/functions/.env.example supabase/functions/.env
export DB_URL UPSTASH_URL KEYS_FILE REST_UPSTREAM_URL AUTH_UPSTREAM_URL
start_deno_service functions "$API_PORT" scripts/stack/functions-server.ts
if [ "${WITH_TEST_FUNCTIONS:-0}" = 1 ]; then
  # npm test: a second functions server with the committed test env (supabase/functions/tests/.env.test).
  FUNCTIONS_ENV_FILE="$ROOT/supabase/functions/tests/.env.test" \
    start_deno_service functions-test "$TEST_API_PORT" scripts/stack/functions-server.ts
fi

# 8. What `supabase start` prints.
bash scripts/stack/status.sh
