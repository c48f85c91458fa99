-- finish_agent_run writes the run's assistant message once, whole, in the transaction that ends the run: a second
-- finish (a retry, or a worker finishing a run already ended) answers finished = false and writes nothing. The run's
-- status maps to the message's: completed and incomplete (a limit stopped it, with its reason) are complete answers;
-- failed and cancelled keep their error code on both. An incomplete run needs a reason, a completed one has none,
-- and a worker cannot end a run as expired or queued: each refused, and nothing written.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/agents.psql
select plan(14);

select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-finish');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-finish') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset

select tests.run_in_progress(:'ann', :'hire') as run \gset
select * from private.finish_agent_run(:'run', 'completed', null, 'ignored_code', 'ignored message',
  '{"content": "The answer", "parts": [{"type": "text", "text": "The answer"}], "gateway_request_id": "pgtap-req-1"}') \gset first_
select results_eq(format($$select %L::boolean, %L::text, run_id, role, content, parts, parent_id = (select user_message_id from public.agent_runs where id = %L), model, provider, gateway_request_id, status, error_code from public.chat_messages where id = %L$$, :'first_finished', :'first_status', :'run', :'first_assistant_message_id'),
  format($$values (true, 'completed'::text, %L::uuid, 'assistant'::text, 'The answer'::text, '[{"type": "text", "text": "The answer"}]'::jsonb, true, 'pgtap040-model'::text, 'openai'::text, 'pgtap-req-1'::text, 'complete'::text, null::text)$$, :'run'),
  'A completed run writes one complete assistant message: its content, parts, model, gateway request, answering the user message');
select results_eq(format($$select status, assistant_message_id, ended_at = now(), error_code, error_message from public.agent_runs where id = %L$$, :'run'),
  format($$values ('completed'::text, %L::uuid, true, null::text, null::text)$$, :'first_assistant_message_id'),
  'The run is completed, ended now, and names its message (no error code or message on success)');
select results_eq(format($$select finished, status, assistant_message_id from private.finish_agent_run(%L, 'failed', null, 'provider_error', 'late', '{"content": "Another"}')$$, :'run'),
  format($$values (false, 'completed'::text, %L::uuid)$$, :'first_assistant_message_id'),
  'Finishing it again answers finished = false with the status and message it ended with');
select results_eq(format($$select (select count(*)::int from public.chat_messages where run_id = %1$L), (select status from public.agent_runs where id = %1$L)$$, :'run'),
  $$values (1, 'completed'::text)$$, 'and writes no second message, nor changes the run');

-- Each way a worker ends a run.
select tests.run_in_progress(:'ann', :'hire') as incomplete_run \gset
select private.finish_agent_run(:'incomplete_run', 'incomplete', 'max_steps', null, null, '{"content": "So far"}') is not null as finished \gset
select results_eq(format($$select r.incomplete_reason, m.status, m.content, m.error_code from public.agent_runs r join public.chat_messages m on m.id = r.assistant_message_id where r.id = %L$$, :'incomplete_run'),
  $$values ('max_steps'::text, 'complete'::text, 'So far'::text, null::text)$$,
  'An incomplete run keeps its reason; its message is complete, with what was produced');
select tests.run_in_progress(:'ann', :'hire') as failed_run \gset
select private.finish_agent_run(:'failed_run', 'failed', null, 'provider_error', 'The provider answered 500', '{}') is not null as finished \gset
select results_eq(format($$select r.status, r.error_code, r.error_message, m.status, m.error_code, m.content from public.agent_runs r join public.chat_messages m on m.id = r.assistant_message_id where r.id = %L$$, :'failed_run'),
  $$values ('failed'::text, 'provider_error'::text, 'The provider answered 500'::text, 'failed'::text, 'provider_error'::text, ''::text)$$,
  'A failed run and its message carry the error code (a message without content is empty)');
select tests.run_in_progress(:'ann', :'hire') as cancelled_run \gset
select private.finish_agent_run(:'cancelled_run', 'cancelled', null, 'cancelled', repeat('x', 2000), '{"content": "Half"}') is not null as finished \gset
select results_eq(format($$select r.status, r.error_code, char_length(r.error_message), m.status, m.error_code, m.content from public.agent_runs r join public.chat_messages m on m.id = r.assistant_message_id where r.id = %L$$, :'cancelled_run'),
  $$values ('cancelled'::text, 'cancelled'::text, 1000, 'cancelled'::text, 'cancelled'::text, 'Half'::text)$$,
  'A cancelled run''s message is cancelled, with what was produced; the error message is cut to 1 000 characters');

-- Refused ends write nothing.
select tests.run_in_progress(:'ann', :'hire') as open_run \gset
select is(tests.api_error_code(format($$select * from private.finish_agent_run(%L, 'incomplete', null, null, null, '{"content": "x"}')$$, :'open_run')),
  'sqlstate 23514', 'An incomplete run without a reason is refused');
select is(tests.api_error_code(format($$select * from private.finish_agent_run(%L, 'completed', 'max_steps', null, null, '{"content": "x"}')$$, :'open_run')),
  'sqlstate 23514', 'A completed run with a reason is refused');
select is(tests.api_error_code(format($$select * from private.finish_agent_run(%L, 'incomplete', 'tired', null, null, '{"content": "x"}')$$, :'open_run')),
  'sqlstate 23514', 'An unknown reason is refused');
select is(tests.api_error_code(format($$select * from private.finish_agent_run(%L, 'expired', null, null, null, '{"content": "x"}')$$, :'open_run')),
  'sqlstate 22023', 'A worker cannot end a run as expired (the sweep does)');
select is(tests.api_error_code(format($$select * from private.finish_agent_run(%L, 'queued', null, null, null, '{"content": "x"}')$$, :'open_run')),
  'sqlstate 22023', 'nor as queued');
select results_eq(format($$select (tests.run_of(%1$L)).status, (tests.run_of(%1$L)).assistant_message_id, (select count(*)::int from public.chat_messages where run_id = %1$L)$$, :'open_run'),
  $$values ('in_progress'::text, null::uuid, 0)$$, 'None of them wrote a message or ended the run');
select results_eq(format($$select finished from private.finish_agent_run(%L, 'completed', null, null, null, '{"content": "ok"}')$$, extensions.gen_random_uuid()),
  $$values (false)$$, 'Finishing a run that does not exist answers finished = false');

select * from finish();
rollback;
