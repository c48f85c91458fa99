#!/usr/bin/env bash
# npm run status [-- -o env]: the stack's URLs and keys, as `supabase status` prints them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ -s "$KEYS_FILE" ] || die "the stack was never started: run npm start"
state() { if "$@"; then echo running; else echo stopped; fi; }
if [ "${1:-}" = "-o" ] && [ "${2:-}" = "env" ]; then
  cat <<OUT
API_URL=$API_URL
FUNCTIONS_URL=$API_URL/functions/v1
REST_URL=$API_URL/rest/v1
AUTH_URL=$API_URL/auth/v1
DB_URL=$DB_URL
JWT_SECRET=$(key jwt_secret)
ANON_KEY=$(key anon_key)
SERVICE_ROLE_KEY=$(key service_role_key)
JWKS_URL=$API_URL/auth/v1/.well-known/jwks.json
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
UPSTASH_REDIS_REST_URL=$UPSTASH_URL
UPSTASH_REDIS_REST_TOKEN=$(key upstash_token)
OUT
  exit 0
fi
[ -z "${1:-}" ] || die "usage: npm run status [-- -o env]"
cat <<OUT
Local stack ($(state pg_running) postgres, $(state pid_alive "$STACK_DIR/redis.pid") redis, $(state pid_alive "$STACK_DIR/upstash.pid") upstash, $(state pid_alive "$STACK_DIR/rest.pid") rest, $(state pid_alive "$STACK_DIR/auth.pid") auth, $(state pid_alive "$STACK_DIR/functions.pid") functions)

         API URL: $API_URL
   Functions URL: $API_URL/functions/v1
    Data API URL: $API_URL/rest/v1
        Auth URL: $API_URL/auth/v1
          DB URL: $DB_URL
        JWKS URL: $API_URL/auth/v1/.well-known/jwks.json
       Redis URL: redis://127.0.0.1:$REDIS_PORT
     Upstash URL: $UPSTASH_URL
   Upstash token: $(key upstash_token)
      JWT secret: $(key jwt_secret)
        anon key: $(key anon_key)
service_role key: $(key service_role_key)

Stop with npm stop; show this again with npm run status (-- -o env for scripts);
drop and re-apply the database with npm run db:reset.
OUT
# The scheduled jobs, each with its last run (pg_cron's own record of it).
if pg_running; then
  printf '\nScheduled jobs (pg_cron):\n'
  PGCONNECT_TIMEOUT=5 psql "$DB_URL" -X -q -P footer=off -c "
    select j.jobname as job, j.schedule, coalesce(to_char(d.start_time, 'YYYY-MM-DD HH24:MI:SS'), 'never') as last_run,
           coalesce(d.status, '-') as outcome, coalesce(left(nullif(d.return_message, ''), 60), '') as message
      from cron.job j
      left join lateral (select * from cron.job_run_details r where r.jobid = j.jobid order by r.runid desc limit 1) d on true
     order by j.jobname" 2>/dev/null || echo "  (the database is not reachable)"
fi
