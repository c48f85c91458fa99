-- The worker's step log: begin_agent_run moves a queued run to in_progress (once; it returns what the run runs with);
-- record_agent_step stores steps only while the run is in progress, numbered 0, 1, 2 in the order they end (the run's
-- step_count), each moving the heartbeat; agent_run_heartbeat moves it too and says whether the user asked to cancel
-- (request_agent_run_cancel, theirs only: 404 run_not_found for another user's run), as record_agent_step does. Once
-- the run is over, nothing more is stored and the heartbeat answers no row.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(17);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-steps', p_prompt => 'PGTAP steps prompt');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-steps') as hire \gset
select tests.create_chat_user('pgtap-agents-bob', 'pgtap-agents-steps') as bob_hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select tests.user_id('pgtap-agents-bob@example.com') as bob \gset
select tests.start_run_id(:'ann', null, :'hire') as run \gset

-- Queued: nothing is stored yet.
select results_eq(format($$select cancel_requested, status from private.record_agent_step(%L, tests.step())$$, :'run'),
  $$values (false, 'queued'::text)$$, 'A step of a queued run is not stored (the status says why)');
select is((select count(*)::int from public.agent_run_steps where run_id = :'run'), 0, 'no step row');

select tests.last_heard(:'run', '1 minute');
select results_eq(format($$select status, system_prompt, user_id, max_steps from private.begin_agent_run(%L)$$, :'run'),
  format($$values ('in_progress'::text, 'PGTAP steps prompt'::text, %L::uuid, 8)$$, :'ann'),
  'begin_agent_run starts it and returns the pinned prompt, the owner and the limits');
select results_eq(format($$select started_at = now(), heartbeat_at = now() from public.agent_runs where id = %L$$, :'run'),
  $$values (true, true)$$, 'with started_at and the heartbeat now');

-- Steps, in order.
select tests.last_heard(:'run', '1 minute');
select results_eq(format($$select cancel_requested, status from private.record_agent_step(%L, tests.step())$$, :'run'),
  $$values (false, 'in_progress'::text)$$, 'A step of an in-progress run is stored');
select is((tests.run_of(:'run')).heartbeat_at, now(), 'and moves the heartbeat');
select private.record_agent_step(:'run', tests.step('pgtap_calculator')) is not null as stored \gset
select private.record_agent_step(:'run', tests.step(null, 'failed') || '{"error_code": "provider_error", "attempts": 3}') is not null as stored \gset
select results_eq(format($$select step_index, kind, tool_name, status, error_code, attempts, user_id from public.agent_run_steps where run_id = %L order by step_index$$, :'run'),
  format($$values (0, 'model_call'::text, null::text, 'completed'::text, null::text, 1, %1$L::uuid), (1, 'tool_call', 'pgtap_calculator', 'completed', null, 1, %1$L), (2, 'model_call', null, 'failed', 'provider_error', 3, %1$L)$$, :'ann'),
  'Steps are numbered 0, 1, 2 in the order they were recorded, with the owner of the run');
select is((tests.run_of(:'run')).step_count, 3, 'The run counts them');
select is(tests.api_error_code(format($$select * from private.record_agent_step(%L, tests.step() - 'kind')$$, :'run')),
  'sqlstate 23502', 'A step without a kind is refused');
select is((tests.run_of(:'run')).step_count, 3, 'and not counted');

-- Heartbeats and cancelling.
select tests.last_heard(:'run', '1 minute');
select results_eq(format($$select cancel_requested, status from private.agent_run_heartbeat(%L)$$, :'run'),
  $$values (false, 'in_progress'::text)$$, 'A heartbeat of an active run answers: not cancelled');
select is((tests.run_of(:'run')).heartbeat_at, now(), 'and moves the heartbeat');
select is(tests.api_error(format($$select * from private.request_agent_run_cancel(%L, %L)$$, :'bob', :'run')),
  '{"code": "run_not_found", "message": "No such agent run of yours", "details": null, "hint": null, "status": 404}'::jsonb,
  'Another user cannot cancel the run: 404 run_not_found');
select results_eq(format($$select status, cancel_requested from private.request_agent_run_cancel(%L, %L)$$, :'ann', :'run'),
  $$values ('in_progress'::text, true)$$, 'Its owner asks to cancel it');
select results_eq(format($$select (select cancel_requested from private.agent_run_heartbeat(%1$L)), (select cancel_requested from private.record_agent_step(%1$L, tests.step()))$$, :'run'),
  $$values (true, true)$$, 'The next heartbeat and the next step tell the worker');

-- Over: nothing more.
select private.finish_agent_run(:'run', 'cancelled', null, 'cancelled', 'Cancelled by the user', '{"content": "partial"}') is not null as finished \gset
select results_eq(format($$select cancel_requested, status from private.record_agent_step(%L, tests.step())$$, :'run'),
  $$values (true, 'cancelled'::text)$$, 'A step after the run ended is not stored');
select results_eq(format($$select (select count(*)::int from public.agent_run_steps where run_id = %1$L), (select step_count from public.agent_runs where id = %1$L), (select count(*)::int from private.agent_run_heartbeat(%1$L))$$, :'run'),
  $$values (4, 4, 0)$$, 'The four steps stored while it ran stay; the heartbeat of an ended run answers no row');

select * from finish();
rollback;
