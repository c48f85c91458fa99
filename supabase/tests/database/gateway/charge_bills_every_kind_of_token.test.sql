-- private._charge bills every kind of token at its own price (uncached input, cached, cache writes, output,
-- reasoning; the cached, cache-write and reasoning prices defaulting to input and output), adds the request fee of
-- the search context size, rounds up (a call that cost anything is at least 1 platform token), bills a call admitted
-- after its model's price was closed at the model's newest price and a model never priced its raw tokens 1:1 (with
-- an unpriced_model alert); gateway_settle records all of it on the usage row and debits it.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(21);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset

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

select tests.create_user_on_plan('pgtap032-nora', 'pgtap032_plan', 100000) as nora \gset
select results_eq(
  format($$select debited_tokens, cost_micro_usd, pricing_id, price_missing, rate_id
             from private.gateway_settle(tests.usage_record('pgtap032:never:1', %L, 'openai', 'pgtap032-never', 100, 50))$$,
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
select tests.create_user_on_plan('pgtap032-sol', 'pgtap032_plan', 100000) as sol \gset
-- 100 input of which 80 cached and 50 said written to the cache (only 20 are not cached), 10 output of which 30 said
-- reasoning (only 10 are output): 80 x 0.30 + 20 x 3.75 + 10 x 20 = 299 micro-dollars.
select results_eq(
  format($$select input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
                  cost_micro_usd, debited_tokens, pricing_id
             from private.gateway_settle(tests.usage_record('pgtap032:sol:1', %L, 'anthropic', 'pgtap032-all', 100, 10,
                    '{"cached_input_tokens": 80, "cache_write_tokens": 50, "reasoning_tokens": 30}'))$$, :'sol'),
  format($$values (100::bigint, 80::bigint, 20::bigint, 10::bigint, 10::bigint, 299::bigint, %s::bigint, %s::bigint)$$,
         ceil((80 * 300000::numeric + 20 * 3750000::numeric + 10 * 20000000::numeric) / :rate), :'p_all'),
  'Settlement keeps cache writes within the uncached input and reasoning within the output, and bills each at its price');
select results_eq(
  format($$select search_context_size, request_fee_micro_usd, cost_micro_usd, debited_tokens, rate_id
             from private.gateway_settle(tests.usage_record('pgtap032:sol:2', %L, 'perplexity', 'pgtap032-search', 3000, 150,
                    '{"search_context_size": "high"}'))$$, :'sol'),
  format($$values ('high', 12000::bigint, 15150::bigint, %s::bigint, %s::bigint)$$,
         ceil((3000 * 1000000::numeric + 150 * 1000000::numeric + 12000 * 1e6) / :rate), :'rate_id'),
  'A search call''s usage row records its context size, its fee (part of the cost) and the rate it was billed at');
select debited_tokens as sol3_debited from private.gateway_settle(tests.usage_record('pgtap032:sol:3', :'sol', 'openai',
  'pgtap032-tiny', 0, 0)) \gset
select debited_tokens as sol4_debited from private.gateway_settle(tests.usage_record('pgtap032:sol:4', :'sol', 'openai',
  'pgtap032-tiny', 1, 0)) \gset
select results_eq(
  $$select u.request_id, u.debited_tokens, t.delta from public.token_usage u
      left join public.token_transactions t on t.reference = 'usage:' || u.request_id
     where u.request_id in ('pgtap032:sol:3', 'pgtap032:sol:4') order by u.request_id$$,
  format($$values ('pgtap032:sol:3', 0::bigint, null::bigint), ('pgtap032:sol:4', %1$s::bigint, %2$s::bigint)$$,
         ceil(1 * 10000::numeric / :rate), -ceil(1 * 10000::numeric / :rate)),
  'A call of no tokens debits nothing and writes no ledger row; a one-token call debits its one platform token');

select * from finish();
rollback;
