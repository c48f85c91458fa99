-- The client's Idempotency-Key: the same key from the same user with the same request returns the same run (replayed,
-- same session and message, nothing new written), also once the run has ended; with another request (another
-- fingerprint) it is refused with 422 idempotency_key_reused, naming the run; keys are per user, so another user's
-- identical key starts a run of their own. A direct insert of a duplicate key for one user is refused by the
-- constraint.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(11);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-idem');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-idem') as ann_hire \gset
select tests.create_chat_user('pgtap-agents-bob', 'pgtap-agents-idem') as bob_hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select tests.user_id('pgtap-agents-bob@example.com') as bob \gset

select * from tests.start_run(:'ann', null, :'ann_hire', 'Hello', null, 'key-1', 'fp-a') \gset first_
select is(:'first_replayed'::boolean, false, 'The first request with a key starts a run');
select results_eq(format($$select run_id, session_id, user_message_id, replayed from tests.start_run(%L, null, %L, 'Hello', null, 'key-1', 'fp-a')$$, :'ann', :'ann_hire'),
  format($$values (%L::uuid, %L::uuid, %L::uuid, true)$$, :'first_run_id', :'first_session_id', :'first_user_message_id'),
  'The same key and request again: the same run, session and message, replayed = true');
select results_eq(format($$select (select count(*) from public.agent_runs where user_id = %1$L), (select count(*) from public.chat_messages where user_id = %1$L), (select count(*) from public.chat_sessions where user_id = %1$L)$$, :'ann'),
  $$values (1::bigint, 1::bigint, 1::bigint)$$, 'The replay wrote no run, message or session');
select is(tests.api_error(format($$select * from tests.start_run(%L, null, %L, 'Something else', null, 'key-1', 'fp-b')$$, :'ann', :'ann_hire')),
  jsonb_build_object('code', 'idempotency_key_reused', 'message', 'This Idempotency-Key was used with a different request',
                     'details', :'first_run_id', 'hint', 'Use a new key for a new request', 'status', 422),
  'The same key with another request: 422 idempotency_key_reused, details = the run');
select is(tests.api_error_code(format($$select * from tests.start_run(%L, null, %L, 'Hello', null, 'key-1', null)$$, :'ann', :'ann_hire')),
  'idempotency_key_reused 422', 'as is the key without a fingerprint');
select is((select count(*)::int from public.agent_runs where user_id = :'ann'), 1, 'and neither wrote a run');

-- A replay while the session has its run active is not a 409: it is that run.
select is((select replayed from tests.start_run(:'ann', :'first_session_id', null, 'Hello', null, 'key-1', 'fp-a')), true,
  'A replay is answered before the one-run-per-session check (the run it replays is the active one)');

-- Ended: still the same run.
select private.finish_agent_run(:'first_run_id', 'completed', null, null, null, '{"content": "Hi"}') is not null as finished \gset
select results_eq(format($$select run_id, replayed from tests.start_run(%L, null, %L, 'Hello', null, 'key-1', 'fp-a')$$, :'ann', :'ann_hire'),
  format($$values (%L::uuid, true)$$, :'first_run_id'), 'After the run ended, the key still returns it');

-- Per user.
select * from tests.start_run(:'bob', null, :'bob_hire', 'Hello', null, 'key-1', 'fp-a') \gset bob_
select results_eq(format($$select user_id, %L::boolean from public.agent_runs where id = %L$$, :'bob_replayed', :'bob_run_id'),
  format($$values (%L::uuid, false)$$, :'bob'), 'Another user''s identical key is a new run of theirs');
select isnt(:'bob_run_id'::uuid, :'first_run_id'::uuid, 'not the first user''s run');

select is(tests.api_error_code(format($$
  insert into public.agent_runs (user_id, session_id, hire_id, employee_id, employee_version, provider, model,
                                 max_output_tokens, max_cost_tokens, status, started_at, ended_at, idempotency_key)
  select user_id, session_id, hire_id, employee_id, employee_version, provider, model, 1000, 1000, 'completed', now(),
         now(), idempotency_key
    from public.agent_runs where id = %L$$, :'first_run_id')),
  'sqlstate 23505', 'A second run of one user with the same key inserted directly is refused (unique per user)');

select * from finish();
rollback;
