#!/usr/bin/env bash
# npm test: starts the local stack if needed, then runs every suite and ends with one line
# "N passed, N failed". Exits non-zero on any failure.
#   1. migration guards + the up/down/up round trip (first: it rebuilds the schema)
#   2. pgTAP (supabase/tests/**/*.test.sql) with pg_prove
#   3. Deno tests of the functions, the shared code and the local stack, over HTTP
#   4. pg_cron's real runs of every job (started after 1, waited for here)
#   5. deno check, deno lint, deno fmt --check
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

was_running=0
[ -f .stack/pgdata/postmaster.pid ] && was_running=1
WITH_TEST_FUNCTIONS=1 bash scripts/stack/start.sh >/dev/null || { echo "npm start failed"; echo "0 passed, 1 failed"; exit 1; }
# shellcheck source=../stack/lib.sh
source scripts/stack/lib.sh
set +e
set -a
eval "$(bash scripts/stack/status.sh -o env)"
set +a
# Function tests call the test functions server (same stack, committed test env).
export TEST_API_URL="http://127.0.0.1:$TEST_API_PORT"
export PG_BIN KEYS_FILE NO_COLOR=1

passed=0
failed=0
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

# Adds a deno test run's "N passed | M failed" to the totals; a run that died without its summary fails.
count_deno() {
  local out=$1 code=$2 line
  line="$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$out" | tail -1)"
  if [ -z "$line" ]; then failed=$((failed + 1)); return; fi
  passed=$((passed + $(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$line")))
  failed=$((failed + $(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$line")))
  [ "$code" = 0 ] || grep -qE '\| [1-9][0-9]* failed' <<<"$line" || failed=$((failed + 1))
}

section() { printf '\n== %s\n' "$*"; }

section "migration guards and stack commands"
"$DENO" test --allow-all --quiet --ignore=scripts/test/cron_runs_test.ts scripts/test/ 2>&1 | tee "$results/migrations.txt"
count_deno "$results/migrations.txt" "${PIPESTATUS[0]}"

# pg_cron schedules by the minute: its test waits for real runs while the other suites go on.
"$DENO" test --allow-all --quiet scripts/test/cron_runs_test.ts >"$results/cron.txt" 2>&1 &
cron_pid=$!

section "pgTAP"
mapfile -t pgtap_files < <(find supabase/tests -name '*.test.sql' | sort)
PGPASSWORD="$DB_PASSWORD" pg_prove --verbose -h 127.0.0.1 -p "$DB_PORT" -U postgres -d postgres "${pgtap_files[@]}" \
  >"$results/pgtap.txt" 2>&1
pgtap_code=$?
grep -vE '^ok [0-9]+' "$results/pgtap.txt"
pg_ok=$(grep -cE '^ok [0-9]+' "$results/pgtap.txt")
pg_not_ok=$(grep -cE '^not ok [0-9]+' "$results/pgtap.txt")
passed=$((passed + pg_ok))
failed=$((failed + pg_not_ok))
if [ "$pgtap_code" != 0 ] && [ "$pg_not_ok" = 0 ]; then failed=$((failed + 1)); fi

section "Deno tests (functions and stack, over HTTP)"
"$DENO" test --allow-all supabase/functions/tests/ 2>&1 | tee "$results/deno.txt"
count_deno "$results/deno.txt" "${PIPESTATUS[0]}"

section "pg_cron runs the scheduled jobs (started after the migration guards)"
wait "$cron_pid"
cron_code=$?
cat "$results/cron.txt"
count_deno "$results/cron.txt" "$cron_code"

section "deno check, lint, fmt"
check_step() { # name command...
  local name=$1; shift
  if "$@" >"$results/step.txt" 2>&1; then
    passed=$((passed + 1)); echo "ok - $name"
  else
    failed=$((failed + 1)); echo "not ok - $name"; tail -40 "$results/step.txt"
  fi
}
mapfile -t ts_files < <(find supabase/functions scripts -name '*.ts' -not -path '*/node_modules/*' | sort)
check_step "deno check" "$DENO" check --quiet "${ts_files[@]}"
check_step "deno lint" "$DENO" lint --quiet
check_step "deno fmt --check" "$DENO" fmt --check --quiet

# On a machine where npm test started the stack (CI), npm stop must leave nothing running.
if [ "$was_running" = 0 ]; then
  section "npm stop"
  bash scripts/stack/stop.sh 2>/dev/null
  left=""
  for port in "$API_PORT" "$TEST_API_PORT" "$DB_PORT" "$REDIS_PORT" "$UPSTASH_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then left="$left $port"; fi
  done
  if [ -z "$left" ] && ! pgrep -f "$ROOT/scripts/stack/" >/dev/null; then
    passed=$((passed + 1)); echo "ok - npm stop stops everything npm start started"
  else
    failed=$((failed + 1)); echo "not ok - npm stop left ports open:$left"
  fi
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
