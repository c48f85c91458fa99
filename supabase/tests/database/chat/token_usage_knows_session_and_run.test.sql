-- token_usage gains the session and run of an agent call: nullable columns without foreign keys (usage lands through
-- the outbox after the call, and outlives a deleted session), and the index "a user's usage per session" (the seed's
-- idx_token_usage_user_session) reads.
begin;
\ir ../../_helpers.psql
select plan(5);

select col_is_null('public', 'token_usage', 'session_id', 'token_usage.session_id is nullable (proxy calls have none)');
select col_is_null('public', 'token_usage', 'run_id', 'token_usage.run_id is nullable');
select is((select count(*)::int from pg_constraint c
            where c.conrelid = 'public.token_usage'::regclass and c.contype = 'f'
              and (select array_agg(a.attname::text) from pg_attribute a
                    where a.attrelid = c.conrelid and a.attnum = any (c.conkey)) && array['session_id', 'run_id']),
  0, 'Neither has a foreign key (a usage row never fails for a session deleted meanwhile)');
select is((select pg_get_indexdef('public.token_usage_user_session_idx'::regclass) ~ '\(user_id, session_id, created_at DESC\)'), true,
  'token_usage_user_session_idx is (user_id, session_id, created_at)');
select is((select pg_get_expr(i.indpred, i.indrelid) from pg_index i
            where i.indexrelid = 'public.token_usage_user_session_idx'::regclass),
  '(session_id IS NOT NULL)', 'and holds only agent calls');

select * from finish();
rollback;
