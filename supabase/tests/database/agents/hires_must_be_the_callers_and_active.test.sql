-- A run is started only with the caller's own active hire: another user's hire answers 404 hire_not_found and
-- another user's session 404 session_not_found (the same as one that does not exist: nothing tells them apart); a
-- deactivated hire answers 409 hire_inactive (through a new session or an existing one), until it is reactivated.
-- None of the refusals writes a session, a message or a run.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(12);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-hire');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-hire') as ann_hire \gset
select tests.create_chat_user('pgtap-agents-bob', 'pgtap-agents-hire') as bob_hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select tests.user_id('pgtap-agents-bob@example.com') as bob \gset
select tests.start_session_as(:'bob', :'bob_hire') as bob_session \gset
select tests.start_session_as(:'ann', :'ann_hire') as ann_session \gset

select is(tests.api_error(format($$select * from tests.start_run(%L, null, %L)$$, :'ann', :'bob_hire')),
  '{"code": "hire_not_found", "message": "No such hired employee of yours", "details": null, "hint": null, "status": 404}'::jsonb,
  'Another user''s hire: 404 hire_not_found');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, null, %L)$$, :'ann', extensions.gen_random_uuid())),
  'hire_not_found 404', 'the same as a hire that does not exist');
select is(tests.api_error(format($$select * from tests.start_run(%L, %L, null)$$, :'ann', :'bob_session')),
  '{"code": "session_not_found", "message": "No such chat session of yours", "details": null, "hint": null, "status": 404}'::jsonb,
  'Another user''s session: 404 session_not_found');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, %L, null)$$, :'ann', extensions.gen_random_uuid())),
  'session_not_found 404', 'the same as a session that does not exist');
select results_eq(format($$select (select count(*) from public.chat_sessions where user_id = %1$L), (select count(*) from public.chat_messages where session_id = %2$L), (select count(*) from public.agent_runs where user_id in (%1$L, %3$L))$$, :'ann', :'bob_session', :'bob'),
  $$values (1::bigint, 0::bigint, 0::bigint)$$,
  'Nothing was written: no session for the caller, no message in the other''s session, no run');

-- Deactivated (the user does it, as supabase-js would).
select tests.authenticate_as(:'ann');
update public.purchased_employees set is_active = false where id = :'ann_hire';
select tests.clear_authentication();
select is((tests.hire_of(:'ann', 'pgtap-agents-hire')).is_active, false, 'Ann deactivated her hire');
select is(tests.api_error(format($$select * from tests.start_run(%L, null, %L)$$, :'ann', :'ann_hire')),
  jsonb_build_object('code', 'hire_inactive', 'message', 'This hired employee is deactivated', 'details', :'ann_hire',
                     'hint', 'Reactivate it (purchased_employees.is_active) to work with it again', 'status', 409),
  'A run on a deactivated hire: 409 hire_inactive, details = the hire');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, %L, null)$$, :'ann', :'ann_session')),
  'hire_inactive 409', 'also on an existing session with it');
select results_eq(format($$select (select count(*) from public.chat_sessions where user_id = %1$L), (select count(*) from public.chat_messages where user_id = %1$L), (select count(*) from public.agent_runs where user_id = %1$L)$$, :'ann'),
  $$values (1::bigint, 0::bigint, 0::bigint)$$, 'and neither wrote a session, a message or a run');

select tests.authenticate_as(:'ann');
update public.purchased_employees set is_active = true where id = :'ann_hire';
select tests.clear_authentication();
select is((select replayed from tests.start_run(:'ann', :'ann_session', null)), false, 'Reactivated, the hire runs again');

-- Bob's own hire and session are his to run.
select run_id as bob_run from tests.start_run(:'bob', :'bob_session', null) \gset
select is((tests.run_of(:'bob_run')).user_id, :'bob'::uuid,
  'The other user runs on his own session');
select is((select count(*)::int from public.agent_runs where user_id = :'ann'), 1, 'Ann has the one run she started');

select * from finish();
rollback;
