-- A run's totals (input, cached input and output tokens, and cost_tokens: the platform tokens debited) are the sums of
-- its calls' token_usage rows, whichever way the settlement wrote them: gateway_settle at once, gateway_batch_settle
-- (several of the run's calls in one batch), the usage outbox later (also after the run ended), or one multi-row
-- insert holding calls of two runs and a proxy call. A settlement repeated is counted once; usage without a run
-- (a proxy call) adds to no run.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/marketplace.psql
\ir ../../_fixtures/chat.psql
\ir ../../_fixtures/gateway.psql
\ir ../../_fixtures/agents.psql
select plan(10);

-- Prices (pgtap030-model: $1/M input, $0.25/M cached, $4/M output) and the rate, from _fixtures/gateway.psql.
select rate from tests.create_gateway_fixtures() \gset
select tests.create_marketplace_fixtures();
select tests.create_employee('pgtap-agents-totals');
select tests.create_chat_user('pgtap-agents-ann', 'pgtap-agents-totals') as hire \gset
select tests.user_id('pgtap-agents-ann@example.com') as ann \gset
select private.update_user_token_balance(:'ann', 1000000, 'adjustment', 'tests:start:pgtap-agents-ann') is not null as credited \gset
select tests.run_in_progress(:'ann', :'hire') as run \gset
select (tests.run_of(:'run')).session_id as session \gset
select tests.run_in_progress(:'ann', :'hire') as other_run \gset
select (tests.run_of(:'other_run')).session_id as other_session \gset

-- Totals of a run against the sums of its token_usage rows.
create function tests.totals_match(p_run uuid) returns table (run_totals text, usage_sums text)
language sql stable
as $$
  select (r.input_tokens, r.cached_input_tokens, r.output_tokens, r.cost_tokens)::text,
         (select (coalesce(sum(u.input_tokens), 0), coalesce(sum(u.cached_input_tokens), 0),
                  coalesce(sum(u.output_tokens), 0), coalesce(sum(u.debited_tokens), 0))::text
            from public.token_usage u where u.run_id = p_run)
    from public.agent_runs r where r.id = p_run
$$;
-- An agent call's usage record of the run (on its session), on pgtap030-model.
create function tests.agent_record(p_request text, p_user uuid, p_run uuid, p_session uuid, p_input bigint,
                                   p_cached bigint, p_output bigint, p_extra jsonb default '{}')
returns jsonb
language sql stable
as $$
  select tests.usage_record(p_request, p_user, 'openai', 'pgtap030-model', p_input, p_output,
    jsonb_build_object('session_id', p_session, 'run_id', p_run, 'cached_input_tokens', p_cached) || p_extra)
$$;

-- ============================================================================ gateway_settle, at once
select (private.gateway_settle(tests.agent_record('pgtap-agents:settle:1', :'ann', :'run', :'session', 1000, 400, 500))).debited_tokens as d1 \gset
select is(:d1::bigint, ceil((600 * 1000000::numeric + 400 * 250000::numeric + 500 * 4000000::numeric) / :rate)::bigint,
  'The call is billed at pgtap030-model''s prices');
select results_eq(format($$select input_tokens, cached_input_tokens, output_tokens, cost_tokens from public.agent_runs where id = %L$$, :'run'),
  format($$values (1000::bigint, 400::bigint, 500::bigint, %s::bigint)$$, :d1),
  'A call settled at once adds its tokens and what it was debited to the run');
select private.gateway_settle(tests.agent_record('pgtap-agents:settle:1', :'ann', :'run', :'session', 1000, 400, 500)) is not null as again \gset
select is((tests.run_of(:'run')).cost_tokens, :d1::bigint, 'The same settlement repeated is counted once');

-- ============================================================================ gateway_batch_settle
select granted_tokens > 0 as leased from tests.lease(:'ann', 'pgtap-agents:lease', 1000, 500, p_calls => 3, p_model => 'pgtap030-model') \gset
select is(:'leased'::boolean, true, 'The run''s next calls are leased');
create table tests.batch as
select * from private.gateway_batch_settle(jsonb_build_array(
  tests.agent_record('pgtap-agents:batch:1', :'ann', :'run', :'session', 300, 0, 100, '{"lease_id": "pgtap-agents:lease"}'),
  tests.agent_record('pgtap-agents:batch:2', :'ann', :'run', :'session', 200, 100, 50, '{"lease_id": "pgtap-agents:lease"}'),
  tests.usage_record('pgtap-agents:batch:proxy', :'ann', 'openai', 'pgtap030-model', 999, 999, '{"lease_id": "pgtap-agents:lease"}')),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap-agents:lease', 'user_id', :'ann')));
select is((select count(*)::int from tests.batch where error is null), 4, 'The batch settles its three calls and closes the lease');
select results_eq(format($$select * from tests.totals_match(%L)$$, :'run'), format($$select usage_sums, usage_sums from tests.totals_match(%L)$$, :'run'),
  'Calls settled in a batch add up into the run (the proxy call in it adds nothing)');

-- ============================================================================ the outbox, after the run ended
select private.finish_agent_run(:'run', 'completed', null, null, null, '{"content": "Done"}') is not null as finished \gset
select private.enqueue_usage(tests.agent_record('pgtap-agents:outbox:1', :'ann', :'run', :'session', 70, 0, 30), 'PB000: simulated') is not null as parked \gset
select cost_tokens as before_outbox from public.agent_runs where id = :'run' \gset
select cmp_ok(private.process_usage_outbox(), '>=', 1, 'The outbox settles the parked call');
select results_eq(format($$select r.cost_tokens - %s, r.output_tokens from public.agent_runs r where r.id = %L$$, :before_outbox, :'run'),
  $$select debited_tokens, (select sum(output_tokens) from public.token_usage where request_id like 'pgtap-agents:%' and request_id <> 'pgtap-agents:batch:proxy')::bigint
      from public.token_usage where request_id = 'pgtap-agents:outbox:1' and debited_tokens > 0$$,
  'A call settled from the outbox after the run ended still adds what it was debited to it');

-- ============================================================================ one multi-row statement, two runs
insert into public.token_usage (request_id, user_id, provider, model, input_tokens, cached_input_tokens, output_tokens,
                                cost_micro_usd, debited_tokens, status, session_id, run_id)
values ('pgtap-agents:multi:1', :'ann', 'openai', 'pgtap030-model', 11, 1, 7, 1, 13, 'ok', :'session', :'run'),
       ('pgtap-agents:multi:2', :'ann', 'openai', 'pgtap030-model', 23, 3, 5, 1, 17, 'ok', :'other_session', :'other_run'),
       ('pgtap-agents:multi:3', :'ann', 'openai', 'pgtap030-model', 31, 0, 2, 1, 19, 'ok', :'other_session', :'other_run'),
       ('pgtap-agents:multi:4', :'ann', 'openai', 'pgtap030-model', 41, 0, 3, 1, 29, 'ok', null, null);
select results_eq(format($$select * from tests.totals_match(%L)$$, :'other_run'),
  $$values ('(54,3,7,36)'::text, '(54,3,7,36)'::text)$$,
  'A multi-row insert adds each run''s own rows to it (two rows of the second run: their sums)');
select results_eq(format($$select * from tests.totals_match(%L)$$, :'run'), format($$select usage_sums, usage_sums from tests.totals_match(%L)$$, :'run'),
  'and the first run''s totals are still exactly the sums of all its calls, however they were settled');

select * from finish();
rollback;
