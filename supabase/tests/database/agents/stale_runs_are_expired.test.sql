-- The sweep (expire_stale_agent_runs, run every minute by aie_agent_runs_expire): a queued or in-progress run whose
-- worker has sent no heartbeat for longer than the limit (2 minutes by default) is expired with worker_lost; a failed
-- assistant message (run_expired, empty) answering its user message shows in the thread that no answer came;
-- run.expired and done events follow the ones already streamed, so replaying clients stop; its session takes a new
-- run. Runs heard from recently, and runs already over, are left as they are; a worker finishing an expired run
-- writes nothing more. A second sweep finds nothing.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(15);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-sweep');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-sweep') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset

-- A stale in-progress run that streamed three events, a stale queued run, a fresh one, a run just under the limit,
-- and a stale-looking one that already completed.
select tests.run_in_progress(:'ann', :'hire') as stale \gset
select private.append_agent_run_events(:'stale', '[{"sequence_number": 1, "type": "run.created", "data": {}},
  {"sequence_number": 2, "type": "run.in_progress", "data": {}}, {"sequence_number": 3, "type": "message.delta", "data": {"delta": "Hel"}}]');
select tests.last_heard(:'stale', '10 minutes');
select tests.start_run_id(:'ann', null, :'hire') as stale_queued \gset
select tests.last_heard(:'stale_queued', '3 minutes');
select tests.run_in_progress(:'ann', :'hire') as fresh \gset
select tests.run_in_progress(:'ann', :'hire') as recent \gset
select tests.last_heard(:'recent', '119 seconds');
select tests.run_in_progress(:'ann', :'hire') as done \gset
select private.finish_agent_run(:'done', 'completed', null, null, null, '{"content": "ok"}') is not null as finished \gset
select tests.last_heard(:'done', '1 hour');

select tests.authenticate_as_service_role();
-- (It counts every stale run in the database: others may be committed by tests running meanwhile.)
select cmp_ok(private.expire_stale_agent_runs(), '>=', 2, 'The sweep expires runs: at least the two stale ones');
select tests.clear_authentication();

select results_eq(format($$select status, error_code, error_message, ended_at = now() from public.agent_runs where id in (%L, %L) order by id$$, :'stale', :'stale_queued'),
  $$values ('expired'::text, 'worker_lost'::text, 'The worker running it stopped before it ended'::text, true),
           ('expired', 'worker_lost', 'The worker running it stopped before it ended', true)$$,
  'Both are expired: worker_lost, ended now (the queued one too)');
select results_eq(format($$select m.role, m.content, m.status, m.error_code, m.parent_id = r.user_message_id, m.run_id = r.id, m.model, m.provider from public.agent_runs r join public.chat_messages m on m.id = r.assistant_message_id where r.id = %L$$, :'stale'),
  $$values ('assistant'::text, ''::text, 'failed'::text, 'run_expired'::text, true, true, 'pgtap040-model'::text, 'openai'::text)$$,
  'The expired run''s answer is a failed, empty assistant message (run_expired) under its user message');
select is((select count(*)::int from public.chat_messages where run_id = :'stale'), 1, 'and only one');
select results_eq(format($$select sequence_number, type, data from public.agent_run_events where run_id = %L order by sequence_number$$, :'stale'),
  format($$values (1, 'run.created'::text, '{}'::jsonb), (2, 'run.in_progress', '{}'), (3, 'message.delta', '{"delta": "Hel"}'),
                  (4, 'run.expired', jsonb_build_object('run_id', %L::uuid, 'status', 'expired', 'error_code', 'worker_lost')), (5, 'done', '{}')$$, :'stale'),
  'run.expired and done follow the events already streamed (4 and 5)');
select results_eq(format($$select sequence_number, type from public.agent_run_events where run_id = %L order by sequence_number$$, :'stale_queued'),
  $$values (1, 'run.expired'::text), (2, 'done'::text)$$, 'A run that streamed nothing gets them as 1 and 2');

select results_eq(format($$select id, status from public.agent_runs where id in (%1$L, %2$L, %3$L) order by id = %3$L, id = %2$L$$, :'fresh', :'recent', :'done'),
  format($$values (%L::uuid, 'in_progress'::text), (%L, 'in_progress'), (%L, 'completed')$$, :'fresh', :'recent', :'done'),
  'A fresh run, one heard from just under two minutes ago, and a completed one are left as they are');
select results_eq(format($$select count(*)::int from public.chat_messages where run_id in (%L, %L)$$, :'fresh', :'recent'),
  $$values (0)$$, 'and get no message');

-- The session is free again, and the worker that comes back writes nothing more.
select lives_ok(format($$select * from tests.start_run(%L, %L, null, 'Are you there?')$$, :'ann', (tests.run_of(:'stale')).session_id),
  'The expired run''s session takes a new run');
select results_eq(format($$select finished, status from private.finish_agent_run(%L, 'completed', null, null, null, '{"content": "Late answer"}')$$, :'stale'),
  $$values (false, 'expired'::text)$$, 'The worker finishing an expired run is told it is over');
select results_eq(format($$select cancel_requested, status from private.record_agent_step(%L, tests.step())$$, :'stale'),
  $$values (false, 'expired'::text)$$, 'and its steps are not stored');
select results_eq(format($$select (select count(*)::int from public.chat_messages where run_id = %1$L), (select count(*)::int from public.agent_run_steps where run_id = %1$L), (select status from public.agent_runs where id = %1$L)$$, :'stale'),
  $$values (1, 0, 'expired'::text)$$, 'nothing of it is written');

select private.expire_stale_agent_runs() is not null as swept_again \gset
select results_eq(format($$select (select count(*)::int from public.chat_messages where run_id in (%1$L, %2$L)), (select count(*)::int from public.agent_run_events where run_id in (%1$L, %2$L))$$, :'stale', :'stale_queued'),
  $$values (2, 7)$$, 'A second sweep leaves the expired runs as they are (one message each, no more events)');
select private.expire_stale_agent_runs(interval '1 minute') is not null as swept_sooner \gset
select is((tests.run_of(:'recent')).status, 'expired', 'With a shorter limit, the run heard from two minutes ago is stale too');
select is((tests.run_of(:'fresh')).status, 'in_progress', 'but not the fresh one');

select * from finish();
rollback;
