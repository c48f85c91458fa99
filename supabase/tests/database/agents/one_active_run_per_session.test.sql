-- At most one queued or in-progress run per session: a second start answers 409 run_in_progress with the active
-- run's id in details and writes nothing (no user message); another session of the same hire is not held up; once
-- the run ends (finished, or cancelled) the session takes a new one. Below the function, the partial unique index
-- refuses a second active run inserted directly, and allows any number of ended ones.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(11);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-one');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-one') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select * from tests.start_run(:'ann', null, :'hire', 'First') \gset first_

select count(*) as messages_before from public.chat_messages where session_id = :'first_session_id' \gset
select is(tests.api_error(format($$select * from tests.start_run(%L, %L, null, 'Again')$$, :'ann', :'first_session_id')),
  jsonb_build_object('code', 'run_in_progress', 'message', 'A run is already in progress on this session',
                     'details', :'first_run_id', 'hint', 'Wait for it to end, or cancel it (POST agents-execute/runs/{id}/cancel)',
                     'status', 409),
  'A second run on a session with a queued run: 409 run_in_progress, details = the active run''s id');
select is((select count(*) from public.chat_messages where session_id = :'first_session_id'), :messages_before::bigint,
  'and its message is not written');

select private.begin_agent_run(:'first_run_id') is not null as begun \gset
select is(tests.api_error_code(format($$select * from tests.start_run(%L, %L, null, 'Again')$$, :'ann', :'first_session_id')),
  'run_in_progress 409', 'The same while the run is in progress');
select is((select count(*)::int from public.agent_runs where session_id = :'first_session_id'), 1, 'The session has one run');

select * from tests.start_run(:'ann', null, :'hire', 'Elsewhere') \gset other_
select isnt(:'other_session_id'::uuid, :'first_session_id'::uuid, 'A new session with the same hire');
select is((tests.run_of(:'other_run_id')).status, 'queued', 'takes a run of its own meanwhile');

-- Ended: the session is free again.
select private.finish_agent_run(:'first_run_id', 'completed', null, null, null, '{"content": "Done"}') is not null as finished \gset
select * from tests.start_run(:'ann', :'first_session_id', null, 'Next') \gset next_
select is((tests.run_of(:'next_run_id')).status, 'queued', 'After the run completed, the session takes a new run');
select private.finish_agent_run(:'next_run_id', 'cancelled', null, 'cancelled_by_user', 'The user cancelled it', '{"content": ""}') is not null as finished \gset
select lives_ok(format($$select * from tests.start_run(%L, %L, null, 'After a cancel')$$, :'ann', :'first_session_id'),
  'and after a cancelled one');

-- The index itself: a direct second insert of an active run on the session is refused.
select is(tests.api_error_code(format($$
  insert into public.agent_runs (user_id, session_id, hire_id, employee_id, employee_version, provider, model,
                                 max_output_tokens, max_cost_tokens, status, started_at)
  select user_id, session_id, hire_id, employee_id, employee_version, provider, model, 1000, 1000, 'in_progress', now()
    from public.agent_runs where id = %L$$, :'other_run_id')),
  'sqlstate 23505', 'The partial unique index refuses a second active run on a session inserted directly');
select is(tests.api_error_code(format($$
  insert into public.agent_runs (user_id, session_id, hire_id, employee_id, employee_version, provider, model,
                                 max_output_tokens, max_cost_tokens, status, started_at, ended_at)
  select user_id, session_id, hire_id, employee_id, employee_version, provider, model, 1000, 1000, s, now(), now()
    from public.agent_runs, unnest(array['completed', 'failed', 'expired']) s where id = %L$$, :'other_run_id')),
  'no error', 'and allows ended runs beside the active one');
select is((select pg_get_indexdef('public.agent_runs_one_active_per_session_idx'::regclass) ~
           'UNIQUE INDEX .* \(session_id\) WHERE \(status = ANY \(ARRAY\[''queued''::text, ''in_progress''::text\]\)\)'),
  true, 'agent_runs_one_active_per_session_idx is unique on session_id over queued and in-progress runs');
select * from finish();
rollback;
