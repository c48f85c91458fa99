-- private._hold_tokens holds a call's input at the dearer of the input and cache-write prices and its output, once
-- per choice, at the dearer of the output and reasoning prices, plus the request fee, rounded up; gateway_lease holds
-- exactly that and returns the prices, rate and fee it used; an input the gateway cannot measure is held as the plan's
-- max input (by gateway_lease and gateway_admit alike).
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(13);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset

-- A price row by id, as _hold_tokens takes it.
create function tests.price(p_id bigint) returns public.model_pricing
language sql stable as $$ select * from public.model_pricing where id = p_id $$;

-- ============================================================================ _hold_tokens
select is(private._hold_tokens(tests.price(:'p_all'), :rate, 1000, 500, 1, 0),
  ceil((1000 * 3750000::numeric + 500 * 20000000::numeric) / :rate)::bigint,
  '_hold_tokens holds the input at the dearer cache-write price and the output at the dearer reasoning price');
select is(private._hold_tokens(tests.price(:'p_cheapwrite'), :rate, 1000, 500, 1, 0),
  ceil((1000 * 4000000::numeric + 500 * 10000000::numeric) / :rate)::bigint,
  '_hold_tokens holds input and output at their own prices when cache writes and reasoning are cheaper');
select is(private._hold_tokens(tests.price(:'p_defaults'), :rate, 1000, 500, 1, 0),
  ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate)::bigint,
  '_hold_tokens without cache-write and reasoning prices holds at the input and output prices');
select is(private._hold_tokens(tests.price(:'p_all'), :rate, 1000, 500, 3, 0),
  ceil((1000 * 3750000::numeric + 3 * 500 * 20000000::numeric) / :rate)::bigint,
  '_hold_tokens holds the max output once per choice (the input once)');
select is(private._hold_tokens(tests.price(:'p_search'), :rate, 1000, 100, 1, 12000),
  ceil((1000 * 1000000::numeric + 100 * 1000000::numeric + 12000 * 1e6) / :rate)::bigint,
  '_hold_tokens adds the request fee');
select is(private._hold_tokens(tests.price(:'p_tiny'), :rate, 1, 0, 1, 0), 1::bigint,
  '_hold_tokens rounds up: a one-token call holds 1 platform token');

-- gateway_lease holds the same (table-driven), and returns what the gateway needs to compute it.
select tests.create_user_on_plan('pgtap032-tom', 'pgtap032_plan', 100000000) as tom \gset
select results_eq(
  format($$select c.n, l.outcome, l.hold_tokens, l.granted_tokens
             from (values (1, 'anthropic', 'pgtap032-all', 1000, 500, 1, null::text),
                          (2, 'openai', 'pgtap032-cheapwrite', 1000, 500, 1, null),
                          (3, 'openai', 'pgtap032-defaults', 1000, 500, 1, null),
                          (4, 'anthropic', 'pgtap032-all', 1000, 500, 3, null),
                          (5, 'perplexity', 'pgtap032-search', 1000, 100, 1, 'high'),
                          (6, 'perplexity', 'pgtap032-search', 1000, 100, 1, null)) c (n, provider, model, input,
                                                                                       output, choices, size)
            cross join lateral private.gateway_lease(tests.lease_request(%L, c.provider, 'pgtap032:agree:' || c.n, c.model, c.input,
                                                     c.output, c.choices, p_check_limits => false,
                                                     p_search_context_size => c.size)) l
            order by c.n$$, :'tom'),
  format($$values (1, 'ok', %1$s::bigint, %1$s::bigint), (2, 'ok', %2$s, %2$s), (3, 'ok', %3$s, %3$s),
                  (4, 'ok', %4$s, %4$s), (5, 'ok', %5$s, %5$s), (6, 'ok', %6$s, %6$s)$$,
         ceil((1000 * 3750000::numeric + 500 * 20000000::numeric) / :rate),
         ceil((1000 * 4000000::numeric + 500 * 10000000::numeric) / :rate),
         ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate),
         ceil((1000 * 3750000::numeric + 3 * 500 * 20000000::numeric) / :rate),
         ceil((1000 * 1000000::numeric + 100 * 1000000::numeric + 12000 * 1e6) / :rate),
         ceil((1000 * 1000000::numeric + 100 * 1000000::numeric) / :rate)),
  'gateway_lease holds exactly what _hold_tokens computes, for every kind of price, choices and fee');
select results_eq(
  format($$select pricing_id, input_micro_usd_per_mtok, cache_write_micro_usd_per_mtok, output_micro_usd_per_mtok,
                  reasoning_micro_usd_per_mtok, rate_micro_usd_per_mtok, request_fee_micro_usd, plan_max_input
             from private.gateway_lease(tests.lease_request(%L, 'anthropic', 'pgtap032:agree:prices', 'pgtap032-all', 10, 10,
                                        p_check_limits => false))$$, :'tom'),
  format($$values (%s::bigint, 3000000::bigint, 3750000::bigint, 15000000::bigint, 20000000::bigint, %s::bigint,
                   0::bigint, 5000)$$, :'p_all', :'rate'),
  'gateway_lease returns the prices, the rate and the plan''s max input it held by (for the instance''s next calls)');
select is(
  (select request_fee_micro_usd from private.gateway_lease(tests.lease_request(:'tom', 'perplexity', 'pgtap032:agree:fee', 'pgtap032-search',
     10, 10, p_check_limits => false, p_search_context_size => 'medium'))),
  8000::bigint, 'gateway_lease returns the request fee of the search context size');

-- An input the gateway cannot measure is held as the plan's max input (5000 on pgtap032_plan).
select tests.create_user_on_plan('pgtap032-ulla', 'pgtap032_plan', 10000000) as ulla \gset
select results_eq(
  format($$select outcome, plan_max_input, hold_tokens, granted_tokens, granted_rate_tokens
             from private.gateway_lease(tests.lease_request(%L, 'openai', 'pgtap032:lease:ulla-1', 'pgtap032-defaults', 100, 100,
                                        p_input_unbounded => true))$$, :'ulla'),
  format($$values ('ok', 5000, %1$s::bigint, %1$s::bigint, 5100::bigint)$$,
         ceil((5000 * 2000000::numeric + 100 * 8000000::numeric) / :rate)),
  'p_input_unbounded holds the plan''s max input (5000, not the estimate of 100), and counts it against the limits');
select is(
  (select hold_tokens from private.gateway_lease(tests.lease_request(:'ulla', 'openai', 'pgtap032:lease:ulla-2', 'pgtap032-defaults', 8000,
     100, p_input_unbounded => true, p_check_limits => false))),
  ceil((8000 * 2000000::numeric + 100 * 8000000::numeric) / :rate)::bigint,
  'An estimate above the plan''s max input is held as estimated');
select results_eq(
  format($$select outcome, hold_tokens from private.gateway_admit(%L, 'perplexity', 'pgtap032-search',
           'pgtap032:admit:ulla', 100, 200, false, 1, 900, true, 'high')$$, :'ulla'),
  format($$values ('ok', %s::bigint)$$, ceil((5000 * 1000000::numeric + 200 * 1000000::numeric + 12000 * 1e6) / :rate)),
  'gateway_admit holds an unmeasured input as the plan''s max input, and the request fee of its search');
select results_eq(
  $$select id, max_input_tokens from public.subscription_plans where id in ('free', 'pro', 'max') order by monthly_token_allowance$$,
  $$values ('free', 32000), ('pro', 200000), ('max', 1000000)$$,
  'The plans hold an unmeasured input as 32000 (free), 200000 (pro) and 1000000 (max) tokens');

select * from finish();
rollback;
