-- Gateway billing by cost (migration 20261201110000_gateway_cost_billing), what 030 and 031 do not already cover:
--   private._charge          every kind of token at its own price (uncached input, cached, cache writes, output,
--                            reasoning; the cached, cache-write and reasoning prices defaulting to input and output),
--                            the request fee by search context size (none when the size is null), rounding (a call
--                            that cost anything is at least 1 platform token), a price closed retroactively (the
--                            model's newest price), a model never priced (raw tokens 1:1, an unpriced_model alert)
--   private._hold_tokens     the dearer of the input and cache-write prices, of the output and reasoning prices,
--                            choices, the request fee; gateway_lease holds the same and returns the prices and the
--                            rate it used
--   private.gateway_lease    unpriced models refused; payment_required while the balance is <= 0 (not for p_ahead);
--                            the plan's max input held when p_input_unbounded
--   below zero               a settlement overrunning its hold (one usage ledger row, the ledger sum equal to the
--                            balance), a later credit paying the debt first, the free top-up on a debt,
--                            update_user_token_balance's rules (a debit below zero refused, any credit accepted)
--   the outbox               dead letters (a data exception at once, any other failure on the 10th try, with
--                            backoff), their holds released, their alerts; replay_usage_dead_letter; a settled record
--                            re-sent changes nothing and leaves no hold
--   check_usage_alerts       thresholds and spikes in platform tokens billed
--   reference data           platform_token_rates' and model_request_fees' periods, RLS and grants; gateway_status
-- Every expected amount is computed here with plain arithmetic from the prices below and the platform token rate in
-- force (:rate, micro-dollars per million platform tokens): ceil((tokens x price + fee x 1e6) / rate).
begin;
\ir ../_helpers.psql
select plan(109);

-- ======================================================================================= fixtures
select micro_usd_per_mtok as rate, id as rate_id from public.platform_token_rates
 where effective_from <= now() and (effective_to is null or effective_to > now()) \gset
select monthly_token_allowance as free_allowance from public.subscription_plans where id = 'free' \gset

-- Prices of models of our own ($ per million tokens): input / cached / cache write / output / reasoning.
--   pgtap032-all         3 / 0.30 / 3.75 / 15 / 20      every price of its own
--   pgtap032-defaults    2 / -    / -    /  8 / -       cached and cache writes at input, reasoning at output
--   pgtap032-cheapwrite  4 / 1    / 1    / 10 / 5       cache writes and reasoning cheaper than input and output
--   pgtap032-search      1 / -    / -    /  1 / -       plus a fee per request: low 0.005, medium 0.008, high 0.012
--   pgtap032-tiny        0.01 / - / -    / 0.01 / -
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, cache_write_micro_usd_per_mtok,
   output_micro_usd_per_mtok, reasoning_micro_usd_per_mtok, effective_from)
values ('anthropic', 'pgtap032-all', 3000000, 300000, 3750000, 15000000, 20000000, '2026-01-01'),
       ('openai', 'pgtap032-defaults', 2000000, null, null, 8000000, null, '2026-01-01'),
       ('openai', 'pgtap032-cheapwrite', 4000000, 1000000, 1000000, 10000000, 5000000, '2026-01-01'),
       ('perplexity', 'pgtap032-search', 1000000, null, null, 1000000, null, '2026-01-01'),
       ('openai', 'pgtap032-tiny', 10000, null, null, 10000, null, '2026-01-01');
insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
values ('perplexity', 'pgtap032-search', 'low', 5000, '2026-01-01'),
       ('perplexity', 'pgtap032-search', 'medium', 8000, '2026-01-01'),
       ('perplexity', 'pgtap032-search', 'high', 12000, '2026-01-01');
select id as p_all from public.model_pricing where model = 'pgtap032-all' \gset
select id as p_defaults from public.model_pricing where model = 'pgtap032-defaults' \gset
select id as p_cheapwrite from public.model_pricing where model = 'pgtap032-cheapwrite' \gset
select id as p_search from public.model_pricing where model = 'pgtap032-search' \gset
select id as p_tiny from public.model_pricing where model = 'pgtap032-tiny' \gset

-- Prices closed retroactively: pgtap032-retro had $1/M until two hours ago and has $5/M since an hour ago (nothing
-- in force in between); pgtap032-retro-only had $7/M until two hours ago and nothing since.
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok, effective_from, effective_to)
values ('openai', 'pgtap032-retro', 1000000, 1000000, '2026-01-01', now() - interval '2 hours'),
       ('openai', 'pgtap032-retro', 5000000, 5000000, now() - interval '1 hour', null),
       ('openai', 'pgtap032-retro-only', 7000000, 7000000, '2026-01-01', now() - interval '2 hours');
select id as p_retro_new from public.model_pricing where model = 'pgtap032-retro' and effective_to is null \gset
select id as p_retro_only from public.model_pricing where model = 'pgtap032-retro-only' \gset

-- A roomy plan that holds an input it cannot measure as 5000 tokens, and one with a small allowance for alerts.
insert into public.subscription_plans
  (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens, allowed_models,
   is_active, max_input_tokens)
values ('pgtap032_plan', 'pgtap032 Roomy', 0, 1000, 100000000, 4096, '{}', false, 5000),
       ('pgtap032_alerts', 'pgtap032 Alerts', 1000, 1000, 100000000, 4096, '{}', false, 5000);

-- A user on a plan with a starting balance (an adjustment).
create function tests.u(p_name text, p_plan text, p_balance bigint default 0) returns uuid
language plpgsql
as $$
declare
  v_id uuid := tests.create_user('pgtap032-' || p_name || '@example.com');
begin
  update public.users set plan = p_plan where id = v_id;
  if p_balance > 0 then
    perform private.update_user_token_balance(v_id, p_balance, 'adjustment', 'pgtap032:start:' || p_name);
  end if;
  return v_id;
end;
$$;

-- A usage record as the gateway sends it (p_extra adds or overrides fields).
create function tests.rec(p_request text, p_user uuid, p_provider text, p_model text, p_input numeric,
                          p_output numeric, p_extra jsonb default '{}')
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'request_id', p_request, 'user_id', p_user, 'provider', p_provider, 'model', p_model, 'input_tokens', p_input,
    'cached_input_tokens', 0, 'cache_write_tokens', 0, 'output_tokens', p_output, 'reasoning_tokens', 0,
    'status', 'ok', 'http_status', 200, 'latency_ms', 50, 'upstream_request_id', null, 'tokens_estimated', false,
    'admitted_at', now()) || p_extra
$$;

create function tests.balance(p_user uuid) returns bigint
language sql stable as $$ select balance from public.token_balances where user_id = p_user $$;
create function tests.held(p_user uuid) returns bigint
language sql stable as $$ select held from public.token_balances where user_id = p_user $$;
create function tests.hold(p_request text) returns bigint
language sql stable as $$ select amount from private.token_holds where request_id = p_request $$;
-- A price row by id, as _hold_tokens takes it.
create function tests.price(p_id bigint) returns public.model_pricing
language sql stable as $$ select * from public.model_pricing where id = p_id $$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

-- ============================================================================ _charge: every kind of token
select results_eq(
  $$select pricing_id, rate_id, cost_micro_usd, request_fee_micro_usd, platform_tokens
      from private._charge('anthropic', 'pgtap032-all', now(), 1000, 0, 0, 0, 0, null)$$,
  format($$values (%s::bigint, %s::bigint, 3000::bigint, 0::bigint, %s::bigint)$$, :'p_all', :'rate_id',
         ceil(1000 * 3000000::numeric / :rate)),
  '_charge bills uncached input at the input price, with the price and rate in force');
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('anthropic', 'pgtap032-all', now(), 1000, 1000, 0, 0, 0, null)$$,
  format($$values (300::bigint, %s::bigint)$$, ceil(1000 * 300000::numeric / :rate)),
  'Cached input is billed at the cached price');
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('anthropic', 'pgtap032-all', now(), 1000, 0, 1000, 0, 0, null)$$,
  format($$values (3750::bigint, %s::bigint)$$, ceil(1000 * 3750000::numeric / :rate)),
  'Input written to the cache is billed at the cache-write price');
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('anthropic', 'pgtap032-all', now(), 0, 0, 0, 1000, 0, null)$$,
  format($$values (15000::bigint, %s::bigint)$$, ceil(1000 * 15000000::numeric / :rate)),
  'Output is billed at the output price');
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('anthropic', 'pgtap032-all', now(), 0, 0, 0, 1000, 1000, null)$$,
  format($$values (20000::bigint, %s::bigint)$$, ceil(1000 * 20000000::numeric / :rate)),
  'Reasoning tokens (part of the output) are billed at the reasoning price');
-- 10000 input (2000 cached, 3000 written to the cache) and 4000 output (1000 reasoning):
-- 5000 x 3 + 2000 x 0.30 + 3000 x 3.75 + 3000 x 15 + 1000 x 20 = 91850 micro-dollars.
select results_eq(
  $$select cost_micro_usd, platform_tokens
      from private._charge('anthropic', 'pgtap032-all', now(), 10000, 2000, 3000, 4000, 1000, null)$$,
  format($$values (91850::bigint, %s::bigint)$$,
         ceil((5000 * 3000000::numeric + 2000 * 300000::numeric + 3000 * 3750000::numeric + 3000 * 15000000::numeric
               + 1000 * 20000000::numeric) / :rate)),
  'A call of every kind of token is billed each kind at its own price, in one ceil(cost / rate)');
select results_eq(
  $$select cost_micro_usd, platform_tokens
      from private._charge('openai', 'pgtap032-defaults', now(), 1000, 200, 300, 500, 100, null)$$,
  format($$values (6000::bigint, %s::bigint)$$, ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate)),
  'Without cached, cache-write and reasoning prices those tokens cost the input and output prices');

-- The request fee, by search context size: 1000 input + 100 output at $1/M = 1100 micro-dollars, plus the fee.
select results_eq(
  $$select s, c.cost_micro_usd, c.request_fee_micro_usd, c.platform_tokens
      from unnest(array['low', 'medium', 'high']) with ordinality as z (s, n)
     cross join lateral private._charge('perplexity', 'pgtap032-search', now(), 1000, 0, 0, 100, 0, z.s) c
     order by z.n$$,
  format($$values ('low', 6100::bigint, 5000::bigint, %s::bigint), ('medium', 9100, 8000, %s), ('high', 13100, 12000, %s)$$,
         ceil((1000 * 1000000::numeric + 100 * 1000000::numeric + 5000 * 1e6) / :rate),
         ceil((1000 * 1000000::numeric + 100 * 1000000::numeric + 8000 * 1e6) / :rate),
         ceil((1000 * 1000000::numeric + 100 * 1000000::numeric + 12000 * 1e6) / :rate)),
  'A search call adds the request fee of its search context size (low, medium, high) to its cost');
select results_eq(
  $$select cost_micro_usd, request_fee_micro_usd, platform_tokens
      from private._charge('perplexity', 'pgtap032-search', now(), 1000, 0, 0, 100, 0, null)$$,
  format($$values (1100::bigint, 0::bigint, %s::bigint)$$,
         ceil((1000 * 1000000::numeric + 100 * 1000000::numeric) / :rate)),
  'A call without a search context size pays no request fee');

-- Rounding.
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('openai', 'pgtap032-tiny', now(), 1, 0, 0, 0, 0, null)$$,
  format($$values (1::bigint, %s::bigint)$$, ceil(1 * 10000::numeric / :rate)),
  'A one-token call costs at least 1 micro-dollar and 1 platform token (both rounded up)');
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('openai', 'pgtap032-tiny', now(), 240, 0, 0, 0, 0, null)$$,
  format($$values (3::bigint, %s::bigint)$$, ceil(240 * 10000::numeric / :rate)),
  'The platform tokens are ceil(exact cost / rate), not of the cost rounded up to micro-dollars (2.4 -> 3)');
select results_eq(
  $$select cost_micro_usd, platform_tokens from private._charge('openai', 'pgtap032-tiny', now(), 0, 0, 0, 0, 0, null)$$,
  $$values (0::bigint, 0::bigint)$$,
  'A call of no tokens costs nothing');

-- A price closed retroactively: the call was admitted 90 minutes ago, when no price is in force any more.
select results_eq(
  $$select pricing_id, cost_micro_usd, platform_tokens
      from private._charge('openai', 'pgtap032-retro', now() - interval '90 minutes', 1000, 0, 0, 1000, 0, null)$$,
  format($$values (%s::bigint, 10000::bigint, %s::bigint)$$, :'p_retro_new',
         ceil((1000 * 5000000::numeric + 1000 * 5000000::numeric) / :rate)),
  'A call admitted when no price is in force (closed retroactively) is billed at the model''s newest price');
select results_eq(
  $$select pricing_id, cost_micro_usd, platform_tokens
      from private._charge('openai', 'pgtap032-retro-only', now() - interval '90 minutes', 1000, 0, 0, 1000, 0, null)$$,
  format($$values (%s::bigint, 14000::bigint, %s::bigint)$$, :'p_retro_only',
         ceil((1000 * 7000000::numeric + 1000 * 7000000::numeric) / :rate)),
  'A model whose only price was closed before the call is billed at that price, its newest');

-- A model that never had a price: its raw tokens, one platform token each.
select results_eq(
  $$select pricing_id, rate_id, cost_micro_usd, request_fee_micro_usd, platform_tokens
      from private._charge('openai', 'pgtap032-never', now(), 100, 20, 10, 50, 5, null)$$,
  format($$values (null::bigint, %s::bigint, null::bigint, 0::bigint, 150::bigint)$$, :'rate_id'),
  'A model that never had a price is billed its raw tokens 1:1 (100 input + 50 output), without a price or cost');

select tests.u('nora', 'pgtap032_plan', 100000) as nora \gset
select results_eq(
  format($$select debited_tokens, cost_micro_usd, pricing_id, price_missing, rate_id
             from private.gateway_settle(tests.rec('pgtap032:never:1', %L, 'openai', 'pgtap032-never', 100, 50))$$,
         :'nora'),
  format($$values (150::bigint, null::bigint, null::bigint, true, %s::bigint)$$, :'rate_id'),
  'Settling a call of a model never priced debits its raw tokens and flags price_missing');
select results_eq(
  $$select kind, user_id, details from private.admin_alerts
     where dedupe_key = 'unpriced_model:openai:pgtap032-never:' || to_char(now(), 'YYYY-MM-DD')$$,
  $$values ('unpriced_model', null::uuid, '{"provider": "openai", "model": "pgtap032-never"}'::jsonb)$$,
  'and raises an unpriced_model alert for operators');
select is(tests.balance(:'nora'), (100000 - 150)::bigint, 'The raw tokens are debited from the balance');

-- ============================================================================ settlement: the usage row
select tests.u('sol', 'pgtap032_plan', 100000) as sol \gset
-- 100 input of which 80 cached and 50 said written to the cache (only 20 are not cached), 10 output of which 30 said
-- reasoning (only 10 are output): 80 x 0.30 + 20 x 3.75 + 10 x 20 = 299 micro-dollars.
select results_eq(
  format($$select input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
                  cost_micro_usd, debited_tokens, pricing_id
             from private.gateway_settle(tests.rec('pgtap032:sol:1', %L, 'anthropic', 'pgtap032-all', 100, 10,
                    '{"cached_input_tokens": 80, "cache_write_tokens": 50, "reasoning_tokens": 30}'))$$, :'sol'),
  format($$values (100::bigint, 80::bigint, 20::bigint, 10::bigint, 10::bigint, 299::bigint, %s::bigint, %s::bigint)$$,
         ceil((80 * 300000::numeric + 20 * 3750000::numeric + 10 * 20000000::numeric) / :rate), :'p_all'),
  'Settlement keeps cache writes within the uncached input and reasoning within the output, and bills each at its price');
select results_eq(
  format($$select search_context_size, request_fee_micro_usd, cost_micro_usd, debited_tokens, rate_id
             from private.gateway_settle(tests.rec('pgtap032:sol:2', %L, 'perplexity', 'pgtap032-search', 3000, 150,
                    '{"search_context_size": "high"}'))$$, :'sol'),
  format($$values ('high', 12000::bigint, 15150::bigint, %s::bigint, %s::bigint)$$,
         ceil((3000 * 1000000::numeric + 150 * 1000000::numeric + 12000 * 1e6) / :rate), :'rate_id'),
  'A search call''s usage row records its context size, its fee (part of the cost) and the rate it was billed at');
select debited_tokens as sol3_debited from private.gateway_settle(tests.rec('pgtap032:sol:3', :'sol', 'openai',
  'pgtap032-tiny', 0, 0)) \gset
select debited_tokens as sol4_debited from private.gateway_settle(tests.rec('pgtap032:sol:4', :'sol', 'openai',
  'pgtap032-tiny', 1, 0)) \gset
select results_eq(
  $$select u.request_id, u.debited_tokens, t.delta from public.token_usage u
      left join public.token_transactions t on t.reference = 'usage:' || u.request_id
     where u.request_id in ('pgtap032:sol:3', 'pgtap032:sol:4') order by u.request_id$$,
  format($$values ('pgtap032:sol:3', 0::bigint, null::bigint), ('pgtap032:sol:4', %1$s::bigint, %2$s::bigint)$$,
         ceil(1 * 10000::numeric / :rate), -ceil(1 * 10000::numeric / :rate)),
  'A call of no tokens debits nothing and writes no ledger row; a one-token call debits its one platform token');

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
select tests.u('tom', 'pgtap032_plan', 100000000) as tom \gset
select results_eq(
  format($$select c.n, l.outcome, l.hold_tokens, l.granted_tokens
             from (values (1, 'anthropic', 'pgtap032-all', 1000, 500, 1, null::text),
                          (2, 'openai', 'pgtap032-cheapwrite', 1000, 500, 1, null),
                          (3, 'openai', 'pgtap032-defaults', 1000, 500, 1, null),
                          (4, 'anthropic', 'pgtap032-all', 1000, 500, 3, null),
                          (5, 'perplexity', 'pgtap032-search', 1000, 100, 1, 'high'),
                          (6, 'perplexity', 'pgtap032-search', 1000, 100, 1, null)) c (n, provider, model, input,
                                                                                       output, choices, size)
            cross join lateral private.gateway_lease(%L, c.provider, 'pgtap032:agree:' || c.n, c.model, c.input,
                                                     c.output, c.choices, p_check_limits => false,
                                                     p_search_context_size => c.size) l
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
             from private.gateway_lease(%L, 'anthropic', 'pgtap032:agree:prices', 'pgtap032-all', 10, 10,
                                        p_check_limits => false)$$, :'tom'),
  format($$values (%s::bigint, 3000000::bigint, 3750000::bigint, 15000000::bigint, 20000000::bigint, %s::bigint,
                   0::bigint, 5000)$$, :'p_all', :'rate'),
  'gateway_lease returns the prices, the rate and the plan''s max input it held by (for the instance''s next calls)');
select is(
  (select request_fee_micro_usd from private.gateway_lease(:'tom', 'perplexity', 'pgtap032:agree:fee', 'pgtap032-search',
     10, 10, p_check_limits => false, p_search_context_size => 'medium')),
  8000::bigint, 'gateway_lease returns the request fee of the search context size');

-- ============================================================================ gateway_lease refusals
select results_eq(
  format($$select outcome, message, granted_tokens from private.gateway_lease(%L, 'openai', 'pgtap032:lease:never',
           'pgtap032-never', 10, 10, p_check_limits => false)$$, :'tom'),
  $$values ('unpriced', 'Model pgtap032-never has no price here, so its calls cannot be billed', 0::bigint)$$,
  'A lease for a model without a price is refused: unpriced');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap032:lease:never'$$,
  'An unpriced lease holds nothing');
select results_eq(
  format($$select outcome, hold_tokens from private.gateway_admit(%L, 'openai', 'pgtap032-retro-only',
           'pgtap032:admit:retro-only', 10, 10, false)$$, :'tom'),
  $$values ('unpriced', null::bigint)$$,
  'A model whose prices all ended is not admitted either (unpriced), although a call already made is billed');

-- Balances at zero and below: the user's calls are refused even when the instance has tokens for them.
select tests.u('zack', 'pgtap032_plan') as zack \gset
select tests.u('ned', 'pgtap032_plan') as ned \gset
select ceil((20000 * 2000000::numeric + 5000 * 8000000::numeric) / :rate)::bigint as ned_debt \gset
select ok((private.gateway_settle(tests.rec('pgtap032:ned:overage', :'ned', 'openai', 'pgtap032-defaults', 20000, 5000)))
  .debited_tokens > 0, 'ned owes what a call cost beyond his balance (an overage)');
select is(tests.balance(:'ned'), (-:ned_debt)::bigint, 'ned''s balance is below zero by what the call cost');
select results_eq(
  format($$select outcome, message, granted_tokens from private.gateway_lease(%L, 'openai', 'pgtap032:lease:zack',
           'pgtap032-defaults', 10, 10, p_have_tokens => 1000000, p_check_limits => false)$$, :'zack'),
  $$values ('payment_required', 'Token balance exhausted (0): add tokens to make calls', 0::bigint)$$,
  'With a balance of 0 a call is payment_required even when the instance already has its tokens');
select results_eq(
  format($$select outcome, message, granted_tokens, balance from private.gateway_lease(%L, 'openai',
           'pgtap032:lease:ned', 'pgtap032-defaults', 10, 10, p_have_tokens => 1000000, p_check_limits => false)$$,
         :'ned'),
  format($$values ('payment_required', 'Token balance exhausted (%1$s): add tokens to make calls', 0::bigint,
                   %1$s::bigint)$$, -:ned_debt),
  'With a balance below zero a call is payment_required, naming the balance');
select results_eq(
  format($$select outcome, granted_tokens from private.gateway_lease(%L, 'openai', 'pgtap032:lease:zack-ahead',
           'pgtap032-defaults', 10, 10, p_ahead => true, p_check_limits => false)$$, :'zack'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead is not refused at a balance of 0: ok, granting nothing');
-- Topping up ahead needs nothing now, so a balance below zero does not refuse it either.
select results_eq(
  format($$select outcome, granted_tokens from private.gateway_lease(%L, 'openai', 'pgtap032:lease:ned-ahead',
           'pgtap032-defaults', 10, 10, p_ahead => true, p_check_limits => false)$$, :'ned'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead is not refused at a balance below zero either: ok, granting nothing');
select is_empty(format('select 1 from private.token_holds where user_id in (%L, %L)', :'zack', :'ned'),
  'Nothing is held for users at or below zero');

-- An input the gateway cannot measure is held as the plan's max input (5000 on pgtap032_plan).
select tests.u('ulla', 'pgtap032_plan', 10000000) as ulla \gset
select results_eq(
  format($$select outcome, plan_max_input, hold_tokens, granted_tokens, granted_rate_tokens
             from private.gateway_lease(%L, 'openai', 'pgtap032:lease:ulla-1', 'pgtap032-defaults', 100, 100,
                                        p_input_unbounded => true)$$, :'ulla'),
  format($$values ('ok', 5000, %1$s::bigint, %1$s::bigint, 5100::bigint)$$,
         ceil((5000 * 2000000::numeric + 100 * 8000000::numeric) / :rate)),
  'p_input_unbounded holds the plan''s max input (5000, not the estimate of 100), and counts it against the limits');
select is(
  (select hold_tokens from private.gateway_lease(:'ulla', 'openai', 'pgtap032:lease:ulla-2', 'pgtap032-defaults', 8000,
     100, p_input_unbounded => true, p_check_limits => false)),
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

-- ============================================================================ below zero
select tests.u('oscar', 'pgtap032_plan') as oscar \gset
select ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate)::bigint as oscar_hold,
       ceil((20000 * 2000000::numeric + 5000 * 8000000::numeric) / :rate)::bigint as oscar_cost \gset
select id as oscar_start from private.update_user_token_balance(:'oscar', :oscar_hold, 'adjustment',
  'pgtap032:start:oscar') \gset
select results_eq(
  format($$select outcome, hold_tokens, balance from private.gateway_admit(%L, 'openai', 'pgtap032-defaults',
           'pgtap032:oscar:1', 1000, 500, false)$$, :'oscar'),
  format($$values ('ok', %s::bigint, 0::bigint)$$, :oscar_hold),
  'oscar''s call holds all of his balance');
select results_eq(
  format($$select debited_tokens from private.gateway_settle(tests.rec('pgtap032:oscar:1', %L, 'openai',
           'pgtap032-defaults', 20000, 5000))$$, :'oscar'),
  format($$values (%s::bigint)$$, :oscar_cost),
  'A call using far more than it held is debited its full cost');
select results_eq(format($$select tests.balance(%1$L), tests.held(%1$L)$$, :'oscar'),
  format($$values (%s::bigint, 0::bigint)$$, :oscar_hold - :oscar_cost),
  'The overage takes the balance below zero, and the hold is released');
select results_eq(
  format($$select delta, balance_after, reason from public.token_transactions
             where user_id = %L and reference like 'usage:%%'$$, :'oscar'),
  format($$values (%s::bigint, %s::bigint, 'usage')$$, -:oscar_cost, :oscar_hold - :oscar_cost),
  'The overage is one usage ledger row with the negative balance after it');
select is(
  (select sum(delta) from public.token_transactions where user_id = :'oscar'), tests.balance(:'oscar')::numeric,
  'The ledger sums to the balance');
select is(
  (select s.balances_in_debt - (select count(*) from public.token_balances b join auth.users u on u.id = b.user_id
                                 where b.balance < 0 and u.email not like 'pgtap032-%')
     from private.gateway_status s),
  2::bigint, 'gateway_status counts the balances in debt (ned''s and oscar''s)');

-- A later credit pays the debt first.
select results_eq(
  format($$select delta, balance_after, reason from private.update_user_token_balance(%L, %s, 'token_pack_purchase',
           'pgtap032:pack:oscar')$$, :'oscar', 2 * (:oscar_cost - :oscar_hold)),
  format($$values (%s::bigint, %s::bigint, 'token_pack_purchase')$$, 2 * (:oscar_cost - :oscar_hold),
         :oscar_cost - :oscar_hold),
  'A token pack credited on a debt pays the debt first: the balance after is the pack less the debt');
select results_eq(
  format($$select tests.balance(%1$L), (select sum(delta) from public.token_transactions where user_id = %1$L)$$,
         :'oscar'),
  format($$values (%1$s::bigint, %1$s::numeric)$$, :oscar_cost - :oscar_hold),
  'The balance is what the pack left after the debt, and the ledger still sums to it');
select is(
  (select outcome from private.gateway_admit(:'oscar', 'openai', 'pgtap032-defaults', 'pgtap032:oscar:2', 10, 10, false)),
  'ok', 'Out of debt, oscar''s calls are admitted again');

select throws_ok(
  format($$select private.update_user_token_balance(%L, -1, 'adjustment', 'pgtap032:debit:ned')$$, :'ned'),
  'PB402', format('insufficient token balance: %s available, 1 requested', -:ned_debt),
  'update_user_token_balance refuses any debit on a balance below zero (PB402)');
select throws_ok(
  format($$select private.update_user_token_balance(%L, %s, 'adjustment', 'pgtap032:debit:oscar')$$, :'oscar',
         -(:oscar_cost - :oscar_hold) - 1),
  'PB402', null, 'update_user_token_balance refuses a debit that would take a balance below zero (PB402)');
select throws_ok(
  format($$insert into public.token_transactions (user_id, delta, balance_after, reason, reference)
           values (%L, -1, -1, 'adjustment', 'pgtap032:ledger:negative')$$, :'ned'),
  '23514', null, 'A ledger row may record a negative balance after it only for usage, or a credit paying a debt');
-- A credit smaller than the debt lands, and leaves the balance below zero (a ledger row with delta > 0).
select lives_ok(
  format($$select private.update_user_token_balance(%L, 1, 'token_pack_purchase', 'pgtap032:pack:ned')$$, :'ned'),
  'update_user_token_balance accepts a credit smaller than the debt');
select is(tests.balance(:'ned'), (1 - :ned_debt)::bigint, 'which pays part of the debt');

-- The free plan's top-up on a debt: the whole allowance is credited, the debt paid from it.
select tests.u('fiona', 'free') as fiona \gset
select ceil((10000 * 2000000::numeric + 1000 * 8000000::numeric) / :rate)::bigint as fiona_debt \gset
select id as fiona_overage from private.gateway_settle(tests.rec('pgtap032:fiona:overage', :'fiona', 'openai',
  'pgtap032-defaults', 10000, 1000)) \gset
select is(tests.balance(:'fiona'), (-:fiona_debt)::bigint, 'fiona starts the month owing a call''s overage');
select is(
  (select outcome from private.gateway_admit(:'fiona', 'openai', 'pgtap032-defaults', 'pgtap032:fiona:1', 10, 10, false)),
  'ok', 'fiona''s first call of the month is admitted');
select results_eq(
  format($$select delta, balance_after, reason from public.token_transactions where reference = %L$$,
         'free:' || :'fiona' || ':' || to_char(now() at time zone 'UTC', 'YYYY-MM')),
  format($$values (%s::bigint, %s::bigint, 'subscription_allowance')$$, :free_allowance,
         :free_allowance - :fiona_debt),
  'The free top-up credits the whole allowance on a debt: the balance after is the allowance less the debt');
select is(tests.balance(:'fiona'), (:free_allowance - :fiona_debt)::bigint, 'fiona''s balance is the allowance less the debt');

-- fred owes twice the allowance: a call of allowance x rate / $1 input tokens at $2/M.
select tests.u('fred', 'free') as fred \gset
select :free_allowance::bigint * :rate / 1000000 as fred_input \gset
select ceil(:fred_input * 2000000::numeric / :rate)::bigint as fred_debt \gset
select id as fred_overage from private.gateway_settle(tests.rec('pgtap032:fred:overage', :'fred', 'openai',
  'pgtap032-defaults', :fred_input, 0)) \gset
select is(tests.balance(:'fred'), (-:fred_debt)::bigint, 'fred starts the month owing twice the free allowance');
-- The top-up of a debt larger than the allowance lands too, paying part of it.
select lives_ok(
  format($$select * from private.gateway_admit(%L, 'openai', 'pgtap032-defaults', 'pgtap032:fred:1', 10, 10, false)$$,
         :'fred'),
  'A free user owing more than the allowance is answered (payment_required), not an error');
select is(
  (select balance_after from public.token_transactions
    where reference = 'free:' || :'fred' || ':' || to_char(now() at time zone 'UTC', 'YYYY-MM')),
  (:free_allowance - :fred_debt)::bigint,
  'and still topped up: the allowance pays part of the debt');

-- ============================================================================ the outbox: dead letters
select tests.u('uma', 'pgtap032_plan', 1000000) as uma \gset
select ceil((1000 * 2000000::numeric + 500 * 8000000::numeric) / :rate)::bigint as uma_hold \gset
select is((select granted_tokens from private.gateway_lease(:'uma', 'openai', 'pgtap032:lease:uma', 'pgtap032-defaults',
  1000, 500, p_calls => 2, p_check_limits => false)), (2 * :uma_hold)::bigint, 'uma leases two calls');

-- A record with a fractional token count can never apply: dead-lettered at once.
select tests.rec('pgtap032:frac', :'uma', 'openai', 'pgtap032-defaults', 12.5, 100,
                 '{"lease_id": "pgtap032:lease:uma"}') as frac_record \gset
select private.enqueue_usage(:'frac_record', 'lock timeout');
select results_eq(
  format($$select tests.hold('pgtap032:lease:uma'), tests.hold('pgtap032:frac'), tests.held(%L)$$, :'uma'),
  format($$values (null::bigint, %1$s::bigint, %1$s::bigint)$$, 2 * :uma_hold),
  'A parked record whose counts cannot be read keeps all of its lease held for it');
select private.process_usage_outbox();
select results_eq(
  $$select attempts, dead_at, dead_reason, last_error = dead_reason, applied_at
      from private.usage_outbox where request_id = 'pgtap032:frac'$$,
  $$values (1, now(), '22P02: invalid input syntax for type bigint: "12.5"', true, null::timestamptz)$$,
  'A record with a fractional token count is dead-lettered on its first try, with its reason');
select results_eq(
  format($$select tests.hold('pgtap032:frac'), tests.held(%1$L), tests.balance(%1$L)$$, :'uma'),
  $$values (null::bigint, 0::bigint, 1000000::bigint)$$,
  'Its hold is released (the user is not blocked by it) and nothing is debited');
select results_eq(
  $$select kind, user_id, details, acknowledged_at from private.admin_alerts
     where dedupe_key = 'usage_dead_letter:pgtap032:frac'$$,
  format($$values ('usage_dead_letter', %L::uuid,
                   '{"request_id": "pgtap032:frac", "error": "22P02: invalid input syntax for type bigint: \"12.5\"",
                     "attempts": 1}'::jsonb, null::timestamptz)$$, :'uma'),
  'An operator alert is raised for the dead letter');
select is(
  (select s.usage_dead_letters - (select count(*) from private.usage_outbox o
                                   where o.dead_at is not null and o.applied_at is null
                                     and o.request_id not like 'pgtap032:%')
     from private.gateway_status s),
  1::bigint, 'gateway_status counts the dead letter');
select private.process_usage_outbox();
select is((select attempts from private.usage_outbox where request_id = 'pgtap032:frac'), 1,
  'A dead letter is not retried');

-- replay_usage_dead_letter: raises while the record still cannot apply, settles it once corrected.
select throws_ok($$select private.replay_usage_dead_letter('pgtap032:frac')$$, '22P02', null,
  'Replaying the record as it is raises its error again');
select throws_ok(
  format($$select private.replay_usage_dead_letter('pgtap032:frac', %L::jsonb || '{"request_id": "pgtap032:other"}')$$,
         :'frac_record'),
  '22023', null, 'A corrected record must keep its request id (22023)');
select results_eq(
  $$select dead_at is not null, applied_at is null, (select acknowledged_at from private.admin_alerts
                                                     where dedupe_key = 'usage_dead_letter:pgtap032:frac')
      from private.usage_outbox where request_id = 'pgtap032:frac'$$,
  $$values (true, true, null::timestamptz)$$,
  'A failed replay changes nothing: still dead, its alert open');
select ceil((13 * 2000000::numeric + 100 * 8000000::numeric) / :rate)::bigint as frac_cost \gset
select tests.authenticate_as_service_role();
select results_eq(
  format($$select request_id, input_tokens, debited_tokens
             from private.replay_usage_dead_letter('pgtap032:frac', %L::jsonb || '{"input_tokens": 13}')$$,
         :'frac_record'),
  format($$values ('pgtap032:frac', 13::bigint, %s::bigint)$$, :frac_cost),
  'The service role replays the corrected record: it is settled at its price');
select tests.clear_authentication();
select results_eq(
  $$select applied_at, dead_at, (payload ->> 'input_tokens')::int, attempts from private.usage_outbox
     where request_id = 'pgtap032:frac'$$,
  $$values (now(), null::timestamptz, 13, 2)$$,
  'The outbox row is applied, no longer dead, with the corrected payload');
select is((select acknowledged_at from private.admin_alerts where dedupe_key = 'usage_dead_letter:pgtap032:frac'),
  now(), 'The dead letter''s alert is acknowledged');
select throws_ok($$select private.replay_usage_dead_letter('pgtap032:frac', null)$$, 'PB404', null,
  'It cannot be replayed twice (PB404: not a dead letter any more)');
select results_eq(
  format($$select tests.balance(%1$L), (select count(*)::int from public.token_transactions
                                          where reference = 'usage:pgtap032:frac')$$, :'uma'),
  format($$values (%s::bigint, 1)$$, 1000000 - :frac_cost),
  'The replayed record is debited once');
select is(
  (select s.usage_dead_letters - (select count(*) from private.usage_outbox o
                                   where o.dead_at is not null and o.applied_at is null
                                     and o.request_id not like 'pgtap032:%')
     from private.gateway_status s),
  0::bigint, 'gateway_status counts it no longer');

-- A record failing for another reason (here token_usage's status check) is retried with backoff, and given up on its
-- 10th try.
select is((select granted_tokens from private.gateway_lease(:'uma', 'openai', 'pgtap032:lease:uma-2', 'pgtap032-defaults',
  1000, 500, p_check_limits => false)), :uma_hold::bigint, 'uma leases another call');
select ceil((100 * 2000000::numeric + 50 * 8000000::numeric) / :rate)::bigint as bad_cost \gset
select private.enqueue_usage(tests.rec('pgtap032:bad', :'uma', 'openai', 'pgtap032-defaults', 100, 50,
                                       '{"status": "exploded", "lease_id": "pgtap032:lease:uma-2"}'), 'lock timeout');
select results_eq(
  $$select tests.hold('pgtap032:lease:uma-2'), tests.hold('pgtap032:bad')$$,
  format($$values (%s::bigint, %s::bigint)$$, :uma_hold - :bad_cost, :bad_cost),
  'A parked record that can be read keeps what it cost held for it, off its lease');
create table tests.backoff (run integer, attempts integer, wait interval, dead boolean, held bigint);
do $$
begin
  for i in 1 .. 9 loop
    update private.usage_outbox set next_attempt_at = now() where request_id = 'pgtap032:bad';
    perform private.process_usage_outbox();
    insert into tests.backoff
    select i, attempts, next_attempt_at - now(), dead_at is not null, tests.hold('pgtap032:bad')
      from private.usage_outbox where request_id = 'pgtap032:bad';
  end loop;
end
$$;
select results_eq('select attempts, wait, dead, held from tests.backoff order by run',
  format($$values (1, interval '1 minute', false, %1$s::bigint), (2, interval '2 minutes', false, %1$s),
                  (3, interval '4 minutes', false, %1$s), (4, interval '8 minutes', false, %1$s),
                  (5, interval '16 minutes', false, %1$s), (6, interval '32 minutes', false, %1$s),
                  (7, interval '1 hour', false, %1$s), (8, interval '1 hour', false, %1$s),
                  (9, interval '1 hour', false, %1$s)$$, :bad_cost),
  'Each failed try waits twice as long before the next (1, 2, 4 ... minutes, at most an hour), the record still held');
update private.usage_outbox set next_attempt_at = now() where request_id = 'pgtap032:bad';
select private.process_usage_outbox();
select results_eq(
  $$select attempts, dead_at, split_part(dead_reason, ':', 1), applied_at from private.usage_outbox
     where request_id = 'pgtap032:bad'$$,
  $$values (10, now(), '23514', null::timestamptz)$$,
  'The 10th failed try dead-letters the record, with its reason');
select results_eq(
  format($$select tests.hold('pgtap032:bad'), tests.held(%L),
                  (select (details ->> 'attempts')::int from private.admin_alerts
                    where dedupe_key = 'usage_dead_letter:pgtap032:bad')$$, :'uma'),
  format($$values (null::bigint, %s::bigint, 10)$$, :uma_hold - :bad_cost),
  'Its hold is released (the rest of its lease stays) and an alert says it took 10 tries');

-- A record already settled, re-sent, changes nothing and leaves no hold.
select tests.u('vic', 'pgtap032_plan', 100000) as vic \gset
select outcome as vic_admitted from private.gateway_admit(:'vic', 'openai', 'pgtap032-defaults', 'pgtap032:vic:1', 100,
  50, false) \gset
select tests.rec('pgtap032:vic:1', :'vic', 'openai', 'pgtap032-defaults', 100, 50) as vic_record \gset
select id as vic_usage from private.gateway_settle(:'vic_record') \gset
select granted_tokens as vic_lease from private.gateway_lease(:'vic', 'openai', 'pgtap032:lease:vic',
  'pgtap032-defaults', 100, 50, p_check_limits => false) \gset
select tests.balance(:'vic') as vic_balance, tests.held(:'vic') as vic_held \gset
select is((private.gateway_settle(:'vic_record'::jsonb || '{"input_tokens": 99999, "lease_id": "pgtap032:lease:vic"}')).id,
  :'vic_usage'::bigint, 'A settled record re-sent to gateway_settle returns its usage row');
select private.enqueue_usage(:'vic_record'::jsonb || '{"lease_id": "pgtap032:lease:vic"}', 'again');
select results_eq(
  format($$select tests.balance(%1$L), tests.held(%1$L), tests.hold('pgtap032:lease:vic'), tests.hold('pgtap032:vic:1'),
                  (select count(*)::int from public.token_transactions where user_id = %1$L),
                  (select count(*)::int from private.usage_outbox where request_id = 'pgtap032:vic:1')$$, :'vic'),
  format($$values (%s::bigint, %s::bigint, %s::bigint, null::bigint, 2, 0)$$, :vic_balance, :vic_held, :vic_lease),
  'Re-sent to gateway_settle and enqueue_usage it changes nothing: no debit, no outbox row, no hold, the lease untouched');
-- A hold left under its request id (as an outbox copy racing its settlement could) goes back when it is re-sent.
insert into private.token_holds (request_id, user_id, provider, model, amount, expires_at)
values ('pgtap032:vic:1', :'vic', 'openai', 'pgtap032-defaults', 50, now() + interval '1 day');
update public.token_balances set held = held + 50 where user_id = :'vic';
select id as vic_again from private.gateway_settle(:'vic_record') \gset
select results_eq(
  format($$select tests.hold('pgtap032:vic:1'), tests.held(%1$L), tests.balance(%1$L)$$, :'vic'),
  format($$values (null::bigint, %s::bigint, %s::bigint)$$, :vic_held, :vic_balance),
  'A hold parked for a settled record is released when the record is re-sent, and nothing is debited');

-- ============================================================================ check_usage_alerts
select tests.u('wes', 'pgtap032_alerts') as wes \gset
select tests.u('xena', 'pgtap032_alerts') as xena \gset
select tests.u('yan', 'pgtap032_plan') as yan \gset
select tests.u('zed', 'pgtap032_plan') as zed \gset
-- Calls billed few platform tokens for many raw tokens, and the other way round.
insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens, cost_micro_usd,
                                pricing_id, debited_tokens, status)
values ('pgtap032:alert:wes', :'wes', 'anthropic', 'pgtap032-all', 10, 0, 0, null, 1000, 'ok'),
       ('pgtap032:alert:xena', :'xena', 'openai', 'pgtap032-tiny', 5000, 0, 0, null, 400, 'ok'),
       ('pgtap032:spike:yan', :'yan', 'anthropic', 'pgtap032-all', 100, 0, 0, null, 60000, 'ok'),
       ('pgtap032:spike:zed', :'zed', 'openai', 'pgtap032-tiny', 60000, 0, 0, null, 100, 'ok');
select private.check_usage_alerts();
select results_eq(
  format('select threshold_percent, used_tokens, allowance_tokens from public.usage_alerts where user_id = %L order by 1',
         :'wes'),
  $$values (50, 1000::bigint, 1000::bigint), (80, 1000::bigint, 1000::bigint), (100, 1000::bigint, 1000::bigint)$$,
  'A call billed 1000 platform tokens (of 10 raw tokens) crosses all three thresholds of an allowance of 1000');
select is_empty(format('select 1 from public.usage_alerts where user_id = %L', :'xena'),
  'A call of 5000 raw tokens billed 400 platform tokens crosses none (40 %)');
select results_eq(
  format($$select kind, details ->> 'last_hour_tokens' from private.admin_alerts where user_id = %L$$, :'yan'),
  $$values ('usage_spike', '60000')$$,
  'A spike is measured in platform tokens billed (60000 of 100 raw tokens)');
select is_empty(format('select 1 from private.admin_alerts where user_id = %L', :'zed'),
  'and 60000 raw tokens billed 100 platform tokens are no spike');

-- ============================================================================ reference data
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from) values (1000000, '2026-06-01')$$,
  '23P01', null, 'A platform rate overlapping the one in force is refused (23P01)');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1000000, '2025-06-01', '2026-01-02')$$,
  '23P01', null, 'A platform rate overlapping the start of the one in force is refused (23P01)');
select lives_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1000000, '2025-06-01', '2026-01-01')$$,
  'A platform rate ending where the next one starts is accepted');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1000000, '2025-01-01', '2025-01-01')$$,
  '23514', null, 'An empty period of the platform rate is refused');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (0, '2024-01-01', '2024-02-01')$$,
  '23514', null, 'A platform rate of zero is refused');
select throws_ok(
  $$insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
    values ('perplexity', 'pgtap032-search', 'low', 1, '2026-06-01')$$,
  '23P01', null, 'A request fee overlapping the same model''s fee for the same size is refused (23P01)');
select lives_ok(
  $$insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
    values ('perplexity', 'pgtap032-other', 'low', 1, '2026-06-01')$$,
  'Another model''s fees have their own history');

select tests.authenticate_as_anon();
select results_eq(
  $$select (select count(*) from public.platform_token_rates where effective_to is null) = 1,
           (select count(*)::int from public.model_request_fees where model = 'pgtap032-search')$$,
  $$values (true, 3)$$,
  'anon reads the platform rate and the request fees');
select throws_ok(
  $$insert into public.platform_token_rates (micro_usd_per_mtok, effective_from, effective_to)
    values (1, '2020-01-01', '2020-02-01')$$,
  '42501', null, 'anon cannot add a platform rate');
select throws_ok($$update public.model_request_fees set micro_usd_per_request = 0$$, '42501', null,
  'anon cannot change request fees');
select tests.clear_authentication();
select tests.authenticate_as(:'uma');
select results_eq(
  $$select (select count(*) from public.platform_token_rates where effective_to is null) = 1,
           (select count(*)::int from public.model_request_fees where model = 'pgtap032-search')$$,
  $$values (true, 3)$$,
  'authenticated reads the platform rate and the request fees');
select throws_ok($$update public.platform_token_rates set micro_usd_per_mtok = 1$$, '42501', null,
  'authenticated cannot change the platform rate');
select throws_ok($$delete from public.model_request_fees$$, '42501', null,
  'authenticated cannot delete request fees');
select throws_ok(
  $$insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
    values ('perplexity', 'x', 'low', 1, '2020-01-01')$$,
  '42501', null, 'authenticated cannot add a request fee');
select tests.clear_authentication();

select is(
  (select array_agg(format('%s:%s', r, f) order by r, f)
     from unnest(array['anon', 'authenticated']) r,
          unnest(array[
            'private.replay_usage_dead_letter(text,jsonb)',
            'private._dead_letter_usage(private.usage_outbox,text)',
            'private._charge(text,text,timestamp with time zone,bigint,bigint,bigint,bigint,bigint,text)',
            'private._hold_tokens(public.model_pricing,bigint,bigint,bigint,integer,bigint)',
            'private._platform_tokens(numeric,bigint)',
            'private._call_cost_micro_usd(public.model_pricing,bigint,bigint,bigint,bigint,bigint)',
            'private._usage_records(jsonb)', 'private._settle_set(jsonb)',
            'private._alert_unpriced_model(text,text)']) f
    where has_function_privilege(r, f, 'execute')),
  null, 'anon and authenticated hold EXECUTE on none of the new private functions');
select ok(has_function_privilege('service_role', 'private.replay_usage_dead_letter(text,jsonb)', 'execute'),
  'The service role may replay dead letters');

select * from finish();
rollback;
