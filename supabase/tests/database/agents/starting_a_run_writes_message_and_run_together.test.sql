-- private.start_agent_run (agents-execute's first transaction) writes the user message and the queued run together:
-- on a hire it opens a new session; on an existing session it answers the newest message, or the parent it is given
-- (an edit or a regeneration branches there); the run is pinned to the hire's version as it is now (a later upgrade
-- does not move it). A start that fails writes neither the message, nor the run, nor a session.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(18);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-start') as employee \gset
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-start') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset

-- ============================================================================ a new session, through the hire
select * from tests.start_run(:'ann', null, :'hire', 'First question') \gset first_
select is(:'first_replayed'::boolean, false, 'A new run is not a replay');
select results_eq(format($$select user_id, hire_id, employee_id, title from public.chat_sessions where id = %L$$, :'first_session_id'),
  format($$values (%L::uuid, %L::uuid, %L::uuid, 'First question'::text)$$, :'ann', :'hire', :'employee'),
  'Starting on a hire opens a session of the caller with that hire and its employee, titled by the message');
select results_eq(format($$select session_id, user_id, role, content, parent_id, status, run_id from public.chat_messages where id = %L$$, :'first_user_message_id'),
  format($$values (%L::uuid, %L::uuid, 'user'::text, 'First question'::text, null::uuid, 'complete'::text, null::uuid)$$, :'first_session_id', :'ann'),
  'The user message is in it, the session''s first (no parent)');
select results_eq(format($$select session_id, hire_id, employee_id, employee_version, provider, model, user_message_id, status, step_count, ended_at, started_at from public.agent_runs where id = %L$$, :'first_run_id'),
  format($$values (%L::uuid, %L::uuid, %L::uuid, 1, 'openai'::text, 'pgtap040-model'::text, %L::uuid, 'queued'::text, 0, null::timestamptz, null::timestamptz)$$,
         :'first_session_id', :'hire', :'employee', :'first_user_message_id'),
  'The run is queued on that session, answering that message, pinned to the hire''s version 1 and its model');
select results_eq(format($$select max_steps, max_output_tokens, max_cost_tokens, cost_tokens from public.agent_runs where id = %L$$, :'first_run_id'),
  $$values (8, 1000, 100000::bigint, 0::bigint)$$, 'with the limits it was given, and nothing spent yet');
select is((tests.session_of(:'first_session_id')).message_count, 1, 'The session counts the message');

-- An answer, then a second run on the same session: it answers the newest message.
select private.finish_agent_run(:'first_run_id', 'completed', null, null, null, '{"content": "First answer"}') is not null as finished \gset
select assistant_message_id as first_answer from public.agent_runs where id = :'first_run_id' \gset
select * from tests.start_run(:'ann', :'first_session_id', null, 'Second question') \gset second_
select is(:'second_session_id'::uuid, :'first_session_id'::uuid, 'A run on an existing session stays on it');
select is((select parent_id from public.chat_messages where id = :'second_user_message_id'), :'first_answer'::uuid,
  'Its message answers the newest message of the session (the first answer)');
select is((select count(*)::int from public.chat_sessions where user_id = :'ann'), 1, 'No other session was opened');

-- ============================================================================ a given parent: a branch
select private.finish_agent_run(:'second_run_id', 'completed', null, null, null, '{"content": "Second answer"}') is not null as finished \gset
select * from tests.start_run(:'ann', :'first_session_id', null, 'Regenerate from here', :'first_answer') \gset branch_
select is((select parent_id from public.chat_messages where id = :'branch_user_message_id'), :'first_answer'::uuid,
  'A message given a parent answers that parent, not the newest message');
select private.finish_agent_run(:'branch_run_id', 'completed', null, null, null, '{"content": "Branch answer"}') is not null as finished \gset

-- ============================================================================ the pinned version
-- The operator publishes version 2 and the hire is upgraded to it: runs started before keep version 1.
update public.ai_employees set system_prompt = 'PGTAP-SECRET-PROMPT v2' where id = :'employee';
select is((select max(version) from public.ai_employee_versions where employee_id = :'employee'), 2,
  'A new system prompt is a new version');
update public.purchased_employees set pinned_version = 2 where id = :'hire';
select run_id as upgraded_run from tests.start_run(:'ann', :'first_session_id', null, 'After the upgrade') \gset
select results_eq(format($$select employee_version from public.agent_runs where id in (%L, %L) order by created_at, id = %L$$, :'first_run_id', :'upgraded_run', :'upgraded_run'),
  $$values (1), (2)$$, 'A run records the version pinned when it started: the old run 1, the new one 2');
select is((private.begin_agent_run(:'upgraded_run')).system_prompt, 'PGTAP-SECRET-PROMPT v2',
  'and begins with that version''s prompt');
select private.finish_agent_run(:'upgraded_run', 'completed', null, null, null, '{"content": "ok"}') is not null as finished \gset

-- ============================================================================ a failure writes neither
select count(*) as messages_before from public.chat_messages where user_id = :'ann' \gset
select count(*) as runs_before from public.agent_runs where user_id = :'ann' \gset
select is(tests.api_error_code(format($$select * from tests.start_run(%L, null, %L, repeat('x', 100001))$$, :'ann', :'hire')),
  'sqlstate 23514', 'A message over 100 000 characters is refused');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, null, %L, 'Fine', p_max_steps => 0)$$, :'ann', :'hire')),
  'sqlstate 23514', 'So is a run whose limits are out of bounds (after its message was written)');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, %L, null, 'Fine', %L)$$, :'ann', :'first_session_id', extensions.gen_random_uuid())),
  'message_not_found 404', 'And a parent that is not a message of the session');
select results_eq(format($$select (select count(*) from public.chat_messages where user_id = %1$L), (select count(*) from public.agent_runs where user_id = %1$L), (select count(*) from public.chat_sessions where user_id = %1$L)$$, :'ann'),
  format($$values (%s::bigint, %s::bigint, 1::bigint)$$, :messages_before, :runs_before),
  'None of them wrote a message, a run or a session');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, %L, %L, 'Both')$$, :'ann', :'first_session_id', :'hire')),
  'invalid_request 400', 'Both a session and a hire: 400 invalid_request');

select * from finish();
rollback;
