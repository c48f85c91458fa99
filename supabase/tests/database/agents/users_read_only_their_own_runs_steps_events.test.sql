-- agent_runs, agent_run_steps and agent_run_events under RLS: a signed-in user reads their own runs, steps and events
-- and nothing of another user's; anon reads none of the tables at all; no client role may insert, update or delete
-- a row of any of them (the agents service writes them, through its private functions, which neither anon nor
-- authenticated can execute; the service role can).
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(24);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-rls');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-rls') as ann_hire \gset
select tests.create_chat_user('pgtap-agents-bob', 'pgtap-agents-rls') as bob_hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select tests.user_id('pgtap-agents-bob@example.com') as bob \gset
select tests.run_in_progress(:'ann', :'ann_hire') as ann_run \gset
select private.record_agent_step(:'ann_run', tests.step()) is not null as stepped \gset
select private.record_agent_step(:'ann_run', tests.step('pgtap_clock')) is not null as stepped \gset
select private.append_agent_run_events(:'ann_run', '[{"sequence_number": 1, "type": "run.created", "data": {}}, {"sequence_number": 2, "type": "run.in_progress", "data": {}}, {"sequence_number": 3, "type": "done", "data": {}}]');
select tests.run_in_progress(:'bob', :'bob_hire') as bob_run \gset
select private.record_agent_step(:'bob_run', tests.step()) is not null as stepped \gset
select private.append_agent_run_events(:'bob_run', '[{"sequence_number": 1, "type": "run.created", "data": {}}]');

-- ============================================================================ reading
select tests.authenticate_as(:'ann');
select results_eq($$select id from public.agent_runs$$, format($$values (%L::uuid)$$, :'ann_run'), 'A user reads their own run, and only it');
select results_eq($$select run_id, step_index from public.agent_run_steps order by step_index$$,
  format($$values (%1$L::uuid, 0), (%1$L, 1)$$, :'ann_run'), 'their own steps');
select results_eq($$select run_id, sequence_number from public.agent_run_events order by sequence_number$$,
  format($$values (%1$L::uuid, 1), (%1$L, 2), (%1$L, 3)$$, :'ann_run'), 'their own events');
select is_empty(format($$select 1 from public.agent_runs where id = %L union all select 1 from public.agent_run_steps where run_id = %1$L union all select 1 from public.agent_run_events where run_id = %1$L$$, :'bob_run'),
  'and nothing of another user''s run, even by its id');
select tests.clear_authentication();

select tests.authenticate_as(:'bob');
select is_empty(format($$select 1 from public.agent_runs where user_id = %1$L union all select 1 from public.agent_run_steps where user_id = %1$L union all select 1 from public.agent_run_events where user_id = %1$L$$, :'ann'),
  'Another user sees none of the first user''s runs, steps or events');
select is((select count(*)::int from public.agent_runs), 1, 'only their own run');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok($$select * from public.agent_runs$$, '42501', null, 'anon cannot read agent_runs');
select throws_ok($$select * from public.agent_run_steps$$, '42501', null, 'nor agent_run_steps');
select throws_ok($$select * from public.agent_run_events$$, '42501', null, 'nor agent_run_events');
select tests.clear_authentication();

-- ============================================================================ writing
select tests.authenticate_as(:'ann');
select throws_ok(format($$update public.agent_runs set status = 'completed', ended_at = now() where id = %L$$, :'ann_run'),
  '42501', null, 'A user cannot change their own run');
select throws_ok(format($$update public.agent_runs set cost_tokens = 0 where id = %L$$, :'ann_run'),
  '42501', null, 'nor its totals');
select throws_ok(format($$delete from public.agent_runs where id = %L$$, :'ann_run'), '42501', null, 'nor delete it');
select throws_ok(format($$insert into public.agent_runs (user_id, session_id, hire_id, employee_id, employee_version, provider, model, max_output_tokens, max_cost_tokens) select user_id, session_id, hire_id, employee_id, employee_version, provider, model, 1, 1 from tests.run_of(%L)$$, :'ann_run'),
  '42501', null, 'nor insert a run');
select throws_ok(format($$insert into public.agent_run_steps (run_id, step_index, user_id, kind, status, started_at, ended_at) values (%L, 9, %L, 'model_call', 'completed', now(), now())$$, :'ann_run', :'ann'),
  '42501', null, 'nor insert a step');
select throws_ok(format($$update public.agent_run_steps set output = '{}' where run_id = %L$$, :'ann_run'), '42501', null, 'nor change one');
select throws_ok(format($$delete from public.agent_run_steps where run_id = %L$$, :'ann_run'), '42501', null, 'nor delete one');
select throws_ok(format($$insert into public.agent_run_events (run_id, sequence_number, user_id, type, data) values (%L, 9, %L, 'done', '{}')$$, :'ann_run', :'ann'),
  '42501', null, 'nor insert an event');
select throws_ok(format($$delete from public.agent_run_events where run_id = %L$$, :'ann_run'), '42501', null, 'nor delete one');
select tests.clear_authentication();

select is((select array_agg(format('%s %s %s', r, t, p) order by r, t, p) from unnest(array['anon', 'authenticated']) r,
            unnest(array['public.agent_runs', 'public.agent_run_steps', 'public.agent_run_events']) t,
            unnest(array['insert', 'update', 'delete', 'truncate', 'references', 'trigger']) p
           where has_table_privilege(r, t, p)),
  null, 'Neither anon nor authenticated holds any write privilege on the three tables');
select is((select array_agg(t order by t) from unnest(array['public.agent_runs', 'public.agent_run_steps', 'public.agent_run_events']) t
            where has_table_privilege('anon', t, 'select') or not has_table_privilege('authenticated', t, 'select')),
  null, 'authenticated may select from each (under RLS), anon from none');

-- ============================================================================ the service's functions
select array_agg(p.oid::regprocedure::text order by 1) as fns from pg_proc p join pg_namespace n on n.oid = p.pronamespace
 where n.nspname = 'private' and p.proname in ('start_agent_run', 'begin_agent_run', 'agent_thread', 'record_agent_step',
   'agent_run_heartbeat', 'finish_agent_run', 'append_agent_run_events', 'request_agent_run_cancel',
   'expire_stale_agent_runs', 'purge_agent_run_events', 'tg_token_usage__roll_up_agent_runs') \gset
select is(cardinality(:'fns'::text[]), 11, 'The agents'' private functions are all there');
select is((select array_agg(format('%s %s', r, f)) from unnest(:'fns'::text[]) f, unnest(array['anon', 'authenticated']) r
            where has_function_privilege(r, f, 'execute')),
  null, 'Neither anon nor authenticated can execute any of them');
select is((select array_agg(f) from unnest(:'fns'::text[]) f
            where f not like 'private.tg\_%' and not has_function_privilege('service_role', f, 'execute')),
  null, 'The service role can execute each (but the trigger function)');
select tests.authenticate_as(:'ann');
select throws_ok(format($$select * from private.finish_agent_run(%L, 'completed', null, null, null, '{}')$$, :'ann_run'),
  '42501', null, 'A user calling one is refused');
select tests.clear_authentication();

select * from finish();
rollback;
