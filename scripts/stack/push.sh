#!/usr/bin/env bash
# Applies supabase/migrations (and, with --include-seed, supabase/seed.sql) with the pinned Supabase CLI,
# so the history lands in the real supabase_migrations.schema_migrations table.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
out="$("$SUPABASE" db push --db-url "$DB_URL" --yes "$@" 2>&1)" || { printf '%s\n' "$out" >&2; die "supabase db push failed"; }
printf '%s\n' "$out" >>"$LOG_DIR/push.log"
