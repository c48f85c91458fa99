-- The LLM gateway in SQL: price history without overlaps; private.gateway_admit's outcomes (unauthorized,
-- forbidden, rate_limited, payment_required, ok with a hold in platform tokens) and the free plan's monthly
-- top-up; private.gateway_settle (a usage record, once per request id, releases the hold, the cost at the price in
-- force when the call was admitted incl. cached input, billed in platform tokens ceil(cost / rate), unpriced models
-- billed their raw tokens, the full cost even beyond the balance: below zero by the overage); gateway_release;
-- expired holds; the usage outbox; the usage_daily rollup; check_usage_alerts (thresholds in platform tokens billed,
-- once per period, spikes); get_usage_summary and RLS as the API roles see them; who may execute the gateway
-- functions; the cron jobs.
-- Expected platform tokens are computed here from the prices and the rate in force (:rate, micro-dollars per
-- million platform tokens): ceil(sum of tokens x price per million / rate).
begin;
\ir ../_helpers.psql
select plan(141);

-- ======================================================================================= fixtures
-- Prices of models of our own, so the seeded price list can change without breaking this file.
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
   effective_from)
values ('openai', 'pgtap030-model', 1000000, 250000, 4000000, '2026-01-01'),
       ('openai', 'pgtap030-nocache', 2000000, null, 2000000, '2026-01-01');
select id as price_model from public.model_pricing where model = 'pgtap030-model' \gset
select id as price_nocache from public.model_pricing where model = 'pgtap030-nocache' \gset
-- The platform token rate in force (the expectations below are computed from it and the prices above).
select micro_usd_per_mtok as rate from public.platform_token_rates
 where effective_from <= now() and (effective_to is null or effective_to > now()) \gset
-- What a call of input i and max output o holds on pgtap030-model ($1/M input, $4/M output):
-- ceil((i x 1000000 + o x 4000000) / rate) platform tokens.
select ceil((10 * 1000000::numeric + 10 * 4000000::numeric) / :rate)::bigint as h_10_10,
       ceil((100 * 1000000::numeric + 500 * 4000000::numeric) / :rate)::bigint as h_100_500,
       ceil((100 * 1000000::numeric + 300 * 4000000::numeric) / :rate)::bigint as h_100_300,
       ceil((50 * 1000000::numeric + 100 * 4000000::numeric) / :rate)::bigint as h_50_100,
       ceil((10 * 1000000::numeric + 8192 * 4000000::numeric) / :rate)::bigint as h_10_8192,
       ceil((10 * 1000000::numeric + 300 * 4000000::numeric) / :rate)::bigint as h_10_300 \gset

insert into public.subscription_plans
  (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens, allowed_models,
   is_active)
values ('pgtap030_limited', 'Limited', 0, 100, 1000000, 500, '{pgtap030-model}', false),
       ('pgtap030_rpm', 'Two a minute', 0, 2, 1000000, 500, '{}', false),
       ('pgtap030_tpm', 'Thousand tokens a minute', 0, 100, 1000, 500, '{}', false),
       ('pgtap030_alerts', 'Alerts', 1000, 100, 1000000, 500, '{}', false);

-- A user on a plan with a starting balance (an adjustment).
create function tests.gw_user(p_name text, p_plan text, p_balance bigint default 0) returns uuid
language plpgsql
as $$
declare
  v_id uuid := tests.create_user('gw-' || p_name || '@example.com');
begin
  update public.users set plan = p_plan where id = v_id;
  if p_balance > 0 then
    perform private.update_user_token_balance(v_id, p_balance, 'adjustment', 'pgtap030:start:' || p_name);
  end if;
  return v_id;
end;
$$;

-- gateway_admit without the limiter (as the gateway calls it when Upstash counts): outcome only.
create function tests.admit(p_user uuid, p_request text, p_input bigint, p_output integer,
                            p_model text default 'pgtap030-model', p_check_limits boolean default false)
returns text
language sql
as $$
  select outcome from private.gateway_admit(p_user, 'openai', p_model, p_request, p_input, p_output, p_check_limits)
$$;

-- gateway_settle with the usage record the gateway sends: tokens in, status ok (admitted_at only when given:
-- without it the call is priced as of now).
create function tests.settle(p_request text, p_user uuid, p_input bigint, p_cached bigint, p_output bigint,
                             p_model text default 'pgtap030-model', p_admitted_at timestamptz default null)
returns public.token_usage
language sql
as $$
  select * from private.gateway_settle(jsonb_strip_nulls(jsonb_build_object(
    'request_id', p_request, 'user_id', p_user, 'provider', 'openai', 'model', p_model, 'input_tokens', p_input,
    'cached_input_tokens', p_cached, 'output_tokens', p_output, 'status', 'ok', 'http_status', 200,
    'latency_ms', 120, 'upstream_request_id', 'up-' || p_request, 'tokens_estimated', false,
    'admitted_at', p_admitted_at)))
$$;

create function tests.balance(p_user uuid) returns bigint
language sql stable as $$ select balance from public.token_balances where user_id = p_user $$;
create function tests.held(p_user uuid) returns bigint
language sql stable as $$ select held from public.token_balances where user_id = p_user $$;

grant execute on all functions in schema tests to anon, authenticated, service_role;

select to_char(now() at time zone 'UTC', 'YYYY-MM') as this_month \gset
select to_char((now() at time zone 'UTC') - interval '1 month', 'YYYY-MM') as last_month \gset
select (now() at time zone 'UTC')::date as today \gset
select date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' as month_start \gset

-- ============================================================================ price history
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok, effective_from, effective_to)
values ('openai', 'pgtap030-history', 1, 1, '2026-01-01', '2026-02-01');
select id as history_jan from public.model_pricing where model = 'pgtap030-history' \gset

select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from) values ('openai', 'pgtap030-history', 2, 2, '2026-01-15')$$,
  '23P01', null, 'A period overlapping the model''s existing period is refused (23P01)');
select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('openai', 'pgtap030-history', 2, 2, '2025-12-01', '2026-01-02')$$,
  '23P01', null, 'A period overlapping the start of the existing one is refused (23P01)');
select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from) values ('openai', 'pgtap030-model', 2, 2, '2026-06-01')$$,
  '23P01', null, 'A second open-ended price for a model that has one in force is refused (23P01)');
select lives_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from) values ('openai', 'pgtap030-history', 3, 3, '2026-02-01')$$,
  'A period starting where the previous one ends is accepted');
select lives_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('openai', 'pgtap030-history', 4, 4, '2025-12-01', '2026-01-01')$$,
  'A period ending where the next one starts is accepted');
select lives_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('anthropic', 'pgtap030-history', 5, 5, '2026-01-01', '2026-02-01')$$,
  'The same model name of another provider has its own history');
select throws_ok(
  $$insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
      effective_from, effective_to) values ('openai', 'pgtap030-other', 1, 1, '2026-02-01', '2026-02-01')$$,
  '23514', null, 'An empty period (effective_to = effective_from) is refused');
select is((private._price_in_force('openai', 'pgtap030-history', '2026-02-01')).input_micro_usd_per_mtok, 3::bigint,
  'At the boundary the new period''s price is in force');
select is((private._price_in_force('openai', 'pgtap030-history', '2026-01-31 23:59:59')).id, :'history_jan'::bigint,
  'Just before the boundary the old period''s price is in force');

-- ============================================================================ gateway_admit outcomes
-- alice has one and a half holds of a call of input 100 and max output 500.
select tests.gw_user('alice', 'pro', :h_100_500 * 3 / 2) as alice \gset
select tests.gw_user('bob', 'pro', 1000000) as bob \gset
select tests.gw_user('limited', 'pgtap030_limited', 10000) as limited \gset
select tests.gw_user('rpm', 'pgtap030_rpm', 100000) as rpm_user \gset
select tests.gw_user('tpm', 'pgtap030_tpm', 100000) as tpm_user \gset

-- unauthorized
select results_eq(
  $$select outcome, message from private.gateway_admit(extensions.gen_random_uuid(), 'openai', 'pgtap030-model',
      'pgtap030:unknown', 10, 10, false)$$,
  $$values ('unauthorized', 'Unknown user')$$,
  'An unknown user is unauthorized');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap030:unknown'$$,
  'An unauthorized call places no hold');

-- forbidden
select results_eq(
  format($$select outcome, plan from private.gateway_admit(%L, 'openai', 'gpt-4o', 'pgtap030:forbidden', 10, 10,
           false)$$, :'limited'),
  $$values ('forbidden', 'pgtap030_limited')$$,
  'A model outside the plan''s allowed_models is forbidden');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap030:forbidden'$$,
  'A forbidden call places no hold');
select is(tests.held(:'limited'), 0::bigint, 'A forbidden call holds nothing');
select is(tests.admit(:'limited', 'pgtap030:allowed', 10, 10), 'ok', 'A model in allowed_models is admitted');

-- rate_limited (requests per minute) with p_check_limits. The windows are whole minutes: start well inside one.
select pg_sleep(case when extract(second from clock_timestamp()) > 58 then 61 - extract(second from clock_timestamp())
                     else 0 end);
select is(tests.admit(:'rpm_user', 'pgtap030:rpm:1', 10, 10, p_check_limits => true), 'ok',
  'Call 1 of 2 a minute is admitted');
select is(tests.admit(:'rpm_user', 'pgtap030:rpm:2', 10, 10, p_check_limits => true), 'ok',
  'Call 2 of 2 a minute is admitted');
select results_eq(
  format($$select outcome, message, limit_value, limit_remaining from private.gateway_admit(%L, 'openai',
           'pgtap030-model', 'pgtap030:rpm:3', 10, 10, true)$$, :'rpm_user'),
  $$values ('rate_limited', 'Requests-per-minute limit reached', 2, 0)$$,
  'Call 3 of 2 a minute is rate_limited with the limit and 0 remaining');
select ok(
  (select limit_reset_at > clock_timestamp() and limit_reset_at <= clock_timestamp() + interval '60 seconds'
     from private.gateway_admit(:'rpm_user', 'openai', 'pgtap030-model', 'pgtap030:rpm:4', 10, 10, true)),
  'A rate_limited answer says when the minute''s window resets');
select is_empty($$select 1 from private.token_holds where request_id in ('pgtap030:rpm:3', 'pgtap030:rpm:4')$$,
  'A rate_limited call places no hold');
select is(tests.held(:'rpm_user'), (2 * :h_10_10)::bigint, 'Only the two admitted calls hold tokens (2 x the call''s hold)');
select is((select hits from private.rate_limit_buckets where key = 'gw:rpm:' || :'rpm_user'), 4,
  'The user''s requests-per-minute bucket counted all four hits');
select is(tests.admit(:'rpm_user', 'pgtap030:rpm:5', 10, 10, p_check_limits => false), 'ok',
  'Without p_check_limits (Upstash counts) the Postgres limiter is not consulted');
select is((select hits from private.rate_limit_buckets where key = 'gw:rpm:' || :'rpm_user'), 4,
  'Without p_check_limits nothing is counted in Postgres');

-- rate_limited (tokens per minute): the window counts the call's tokens (input + max output), not its hold
select is(tests.admit(:'tpm_user', 'pgtap030:tpm:1', 100, 500, p_check_limits => true), 'ok',
  'A call of 600 tokens (input + max output) fits a window of 1000 tokens a minute');
select results_eq(
  format($$select outcome, message, limit_value from private.gateway_admit(%L, 'openai', 'pgtap030-model',
           'pgtap030:tpm:2', 100, 500, true)$$, :'tpm_user'),
  $$values ('rate_limited', 'Tokens-per-minute limit reached', 1000)$$,
  'A second call of 600 tokens exceeds 1000 tokens a minute although the first call has not finished');
select is(tests.held(:'tpm_user'), :h_100_500::bigint, 'The refused call holds nothing (held: the first call''s hold)');

-- payment_required
select results_eq(
  format($$select outcome, hold_tokens, balance from private.gateway_admit(%L, 'openai', 'pgtap030-model',
           'pgtap030:pay:1', 100, 500, false)$$, :'alice'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, :h_100_500, :h_100_500 * 3 / 2 - :h_100_500),
  'A hold of ceil(($1/M x 100 + $4/M x 500) / rate) against one and a half holds is admitted, half a hold left');
select results_eq(
  format($$select outcome, hold_tokens, balance from private.gateway_admit(%L, 'openai', 'pgtap030-model',
           'pgtap030:pay:2', 100, 500, false)$$, :'alice'),
  format($$values ('payment_required', %s::bigint, %s::bigint)$$, :h_100_500, :h_100_500 * 3 / 2 - :h_100_500),
  'A second such hold with half a hold unreserved is payment_required (balance - held < hold)');
select is(tests.held(:'alice'), :h_100_500::bigint, 'A payment_required call holds nothing');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap030:pay:2'$$,
  'A payment_required call places no hold row');
select is(tests.balance(:'alice'), (:h_100_500 * 3 / 2)::bigint, 'Admission never changes a paid plan''s balance');

-- ok: the hold
select results_eq(
  $$select user_id, provider, model, amount, pricing_id from private.token_holds where request_id = 'pgtap030:pay:1'$$,
  format($$values (%L::uuid, 'openai', 'pgtap030-model', %s::bigint, %s::bigint)$$, :'alice', :h_100_500,
         :'price_model'),
  'An admitted call''s hold records user, model, amount and the price in force');
select is((select expires_at from private.token_holds where request_id = 'pgtap030:pay:1'), now() + interval '15 minutes',
  'A hold expires after 15 minutes');
select results_eq(
  format($$select outcome, max_output_tokens, hold_tokens from private.gateway_admit(%L, 'openai', 'pgtap030-model',
           'pgtap030:cap:1', 10, 100000, false)$$, :'bob'),
  format($$values ('ok', 8192, %s::bigint)$$, :h_10_8192),
  'A requested max output above the plan''s is capped at the plan''s (8192 on pro) and held as such');
select results_eq(
  format($$select max_output_tokens, hold_tokens from private.gateway_admit(%L, 'openai', 'pgtap030-model',
           'pgtap030:cap:2', 10, null, false)$$, :'bob'),
  format($$values (8192, %s::bigint)$$, :h_10_8192),
  'Without a requested max output the plan''s maximum is held');
select results_eq(
  format($$select max_output_tokens, hold_tokens from private.gateway_admit(%L, 'openai', 'pgtap030-model',
           'pgtap030:cap:3', 10, 300, false)$$, :'bob'),
  format($$values (300, %s::bigint)$$, :h_10_300),
  'A smaller requested max output is held as requested');
select is(tests.held(:'bob'), (2 * :h_10_8192 + :h_10_300)::bigint, 'held is the sum of the user''s holds');

-- ============================================================================ free plan top-up
select tests.gw_user('carol', 'free') as carol \gset
select tests.gw_user('dave', 'free', 60000) as dave \gset
select tests.gw_user('erin', 'free', 150000) as erin \gset
select tests.gw_user('frank', 'free') as frank \gset
select id as frank_last_month from private.update_user_token_balance(:'frank', 5000, 'subscription_allowance',
  'free:' || :'frank' || ':' || :'last_month') \gset

select is(tests.admit(:'carol', 'pgtap030:free:1', 100, 500), 'ok', 'A free user with no tokens is admitted');
select results_eq(
  format($$select delta, reason, balance_after from public.token_transactions where reference = %L$$,
         'free:' || :'carol' || ':' || :'this_month'),
  $$values (100000::bigint, 'subscription_allowance', 100000::bigint)$$,
  'The first call of the month tops the free allowance up (reference free:<user>:<YYYY-MM>)');
select is(tests.balance(:'carol'), 100000::bigint, 'The free user''s balance is the monthly allowance');
select ceil((20000 * 1000000::numeric + 10000 * 4000000::numeric) / :rate)::bigint as carol_cost \gset
select ok((tests.settle('pgtap030:free:1', :'carol', 20000, 0, 10000)).request_id is not null,
  'The free user''s call settles');
select is(tests.balance(:'carol'), (100000 - :carol_cost)::bigint,
  'The call debited its cost in platform tokens, ceil(($1/M x 20000 + $4/M x 10000) / rate)');
select is(tests.admit(:'carol', 'pgtap030:free:2', 100, 500), 'ok', 'The free user''s next call is admitted');
select is(tests.balance(:'carol'), (100000 - :carol_cost)::bigint, 'The second call of the month tops nothing up');
select is((select count(*)::int from public.token_transactions where user_id = :'carol' and reason = 'subscription_allowance'),
  1, 'One top-up per month');

select is(tests.admit(:'dave', 'pgtap030:free:3', 100, 500), 'ok', 'A free user with 60000 tokens is admitted');
select is(tests.balance(:'dave'), 100000::bigint, 'The top-up brings 60000 up to the allowance, never above it');
select is((select delta from public.token_transactions where reference = 'free:' || :'dave' || ':' || :'this_month'),
  40000::bigint, 'The top-up credits the difference only');

select is(tests.admit(:'erin', 'pgtap030:free:4', 100, 500), 'ok', 'A free user above the allowance is admitted');
select is(tests.balance(:'erin'), 150000::bigint, 'A balance above the allowance is not topped up');
select is((select count(*)::int from public.token_transactions where user_id = :'erin' and reason = 'subscription_allowance'),
  0, 'No top-up row for a balance above the allowance');

select is(tests.admit(:'frank', 'pgtap030:free:5', 100, 500), 'ok', 'A free user topped up last month is admitted');
select is(tests.balance(:'frank'), 100000::bigint, 'Last month''s top-up does not stop this month''s');

select is(tests.admit(:'alice', 'pgtap030:free:6', 10, 10), 'ok', 'A pro user is admitted');
select is(tests.balance(:'alice'), (:h_100_500 * 3 / 2)::bigint, 'A paid plan gets no free top-up');

-- ============================================================================ gateway_settle
-- gina has exactly one hold of a call of input 100 and max output 300, hank two.
select tests.gw_user('gina', 'pro', :h_100_300) as gina \gset
select tests.gw_user('hank', 'pro', 2 * :h_100_300) as hank \gset
select tests.gw_user('ivy', 'pro', 1000000) as ivy \gset

select is(tests.admit(:'bob', 'pgtap030:settle:1', 50, 100), 'ok', 'bob''s call is admitted (input 50, output 100)');
select is(tests.held(:'bob'), (2 * :h_10_8192 + :h_10_300 + :h_50_100)::bigint, 'bob holds that call''s hold more');
select id as settle1_id from tests.settle('pgtap030:settle:1', :'bob', 1000, 300, 201) \gset
-- 700 uncached at $1/M + 300 cached at $0.25/M + 201 output at $4/M = 700 + 75 + 804 micro-dollars, billed
-- ceil(1579 micro-dollars / rate) platform tokens.
select ceil((700 * 1000000::numeric + 300 * 250000::numeric + 201 * 4000000::numeric) / :rate)::bigint as settle1_cost \gset
select results_eq(
  $$select input_tokens, cached_input_tokens, output_tokens, cost_micro_usd, price_missing, debited_tokens, status,
           http_status, upstream_request_id from public.token_usage where request_id = 'pgtap030:settle:1'$$,
  format($$values (1000::bigint, 300::bigint, 201::bigint, 1579::bigint, false, %s::bigint, 'ok', 200,
                   'up-pgtap030:settle:1')$$, :settle1_cost),
  'Settling writes one usage row with the tokens, the cost with cached input at its own price, and the debit in platform tokens');
select is((select pricing_id from public.token_usage where request_id = 'pgtap030:settle:1'), :'price_model'::bigint,
  'The usage row references the price it was billed at');
select is(tests.held(:'bob'), (2 * :h_10_8192 + :h_10_300)::bigint, 'Settling releases exactly the call''s hold');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap030:settle:1'$$,
  'Settling removes the hold row');
select is(tests.balance(:'bob'), (1000000 - :settle1_cost)::bigint, 'Settling debits the call''s cost in platform tokens');
select results_eq(
  $$select delta, balance_after, reason, metadata from public.token_transactions
     where reference = 'usage:pgtap030:settle:1'$$,
  format($$values (%s::bigint, %s::bigint, 'usage',
                   '{"provider": "openai", "model": "pgtap030-model", "cost_micro_usd": 1579}'::jsonb)$$,
         -:settle1_cost, 1000000 - :settle1_cost),
  'The debit is a ledger row usage:<request id> with the balance after it and the call''s cost in micro-dollars');

select is((tests.settle('pgtap030:settle:1', :'bob', 99999, 0, 99999)).id, :'settle1_id'::bigint,
  'Settling the same request id again returns the same usage row');
select is(tests.balance(:'bob'), (1000000 - :settle1_cost)::bigint, 'A repeated settlement debits nothing more');
select is((select count(*)::int from public.token_usage where request_id = 'pgtap030:settle:1'), 1,
  'A repeated settlement adds no usage row');
select is((select count(*)::int from public.token_transactions where reference = 'usage:pgtap030:settle:1'), 1,
  'A repeated settlement adds no ledger row');
select is(tests.held(:'bob'), (2 * :h_10_8192 + :h_10_300)::bigint, 'A repeated settlement releases nothing more');

-- Rounding up, no cached price.
select results_eq(
  format($$select cost_micro_usd, debited_tokens from tests.settle('pgtap030:settle:2', %L, 7, 3, 1)$$, :'ivy'),
  format($$values (9::bigint, %s::bigint)$$, ceil((4 * 1000000::numeric + 3 * 250000::numeric + 1 * 4000000::numeric) / :rate)),
  'The cost is rounded up to a whole micro-dollar (4 + 0.75 + 4 = 8.75 -> 9), the debit up to a whole platform token');
select is((tests.settle('pgtap030:settle:3', :'ivy', 10, 4, 5, 'pgtap030-nocache')).cost_micro_usd, 30::bigint,
  'Cached input of a model without a cached price costs the input price');

-- An unpriced model.
select results_eq(
  format($$select cost_micro_usd, pricing_id, price_missing, debited_tokens
             from tests.settle('pgtap030:settle:5', %L, 10, 0, 5, 'pgtap030-unpriced')$$, :'ivy'),
  $$values (null::bigint, null::bigint, true, 15::bigint)$$,
  'A call to a model that never had a price records cost null and price_missing, and debits its raw tokens 1:1');
select is(
  (select count(*)::int from private.admin_alerts
    where kind = 'unpriced_model' and dedupe_key = 'unpriced_model:openai:pgtap030-unpriced:' || to_char(now(), 'YYYY-MM-DD')),
  1, 'An unpriced model in use raises one operator alert a day');

-- The full cost, even beyond the balance: the overage takes it below zero.
select ceil((600 * 1000000::numeric + 400 * 4000000::numeric) / :rate)::bigint as gina_cost,
       ceil((600 * 1000000::numeric + 300 * 4000000::numeric) / :rate)::bigint as hank_cost \gset
select is(tests.admit(:'gina', 'pgtap030:short:1', 100, 300), 'ok', 'gina''s call holds all of her balance');
select results_eq(
  format($$select debited_tokens, cost_micro_usd from tests.settle('pgtap030:short:1', %L, 600, 0, 400)$$, :'gina'),
  format($$values (%s::bigint, 2200::bigint)$$, :gina_cost),
  'A call that cost more than the balance is debited its full cost (600 + 1600 micro-dollars, in platform tokens)');
select results_eq(format($$select tests.balance(%1$L), tests.held(%1$L)$$, :'gina'),
  format($$values (%s::bigint, 0::bigint)$$, :h_100_300 - :gina_cost),
  'The balance goes below zero by the overage; nothing stays held');
select results_eq(
  $$select delta, balance_after, reason from public.token_transactions where reference = 'usage:pgtap030:short:1'$$,
  format($$values (%s::bigint, %s::bigint, 'usage')$$, -:gina_cost, :h_100_300 - :gina_cost),
  'The overage is an ordinary usage ledger row, its balance_after negative');

select is(tests.admit(:'hank', 'pgtap030:short:2', 100, 300), 'ok', 'hank''s first call holds half his balance');
select is(tests.admit(:'hank', 'pgtap030:short:3', 100, 300), 'ok', 'hank''s second call holds the other half');
select is((tests.settle('pgtap030:short:2', :'hank', 600, 0, 300)).debited_tokens, :hank_cost::bigint,
  'An overrunning call is debited in full, even beyond what other calls have not reserved');
select is(tests.balance(:'hank'), (2 * :h_100_300 - :hank_cost)::bigint,
  'The balance falls below what the other call holds');
select is(tests.held(:'hank'), :h_100_300::bigint, 'The other call''s hold stays');
select results_eq(
  format($$select outcome, balance from private.gateway_admit(%L, 'openai', 'pgtap030-model', 'pgtap030:short:4',
           1, 1, false)$$, :'hank'),
  format($$values ('payment_required', %s::bigint)$$, 2 * :h_100_300 - :hank_cost - :h_100_300),
  'With the unreserved balance below zero even the smallest call is payment_required');

-- The price in force when the call was admitted.
select is(tests.admit(:'ivy', 'pgtap030:settle:4', 10, 10), 'ok', 'ivy''s call is admitted at the current price');
-- The price changes after the call was admitted (its usage record says when: admitted_at, two minutes ago here)
-- and before it is settled (now).
update public.model_pricing set effective_to = now() - interval '1 minute' where id = :'price_model';
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
   effective_from)
values ('openai', 'pgtap030-model', 9000000, 9000000, 9000000, now() - interval '1 minute');
select results_eq(
  format($$select pricing_id, cost_micro_usd, debited_tokens
             from tests.settle('pgtap030:settle:4', %L, 1000, 0, 1000,
                               p_admitted_at => now() - interval '2 minutes')$$, :'ivy'),
  format('values (%s::bigint, 5000::bigint, %s::bigint)', :'price_model',
         ceil((1000 * 1000000::numeric + 1000 * 4000000::numeric) / :rate)),
  'A call admitted before a price change is billed at the price in force when it was admitted');
select isnt((private._price_in_force('openai', 'pgtap030-model', now())).id, :'price_model'::bigint,
  '(the new price is the one in force at settlement)');

-- ============================================================================ gateway_release
select is(tests.admit(:'bob', 'pgtap030:release:1', 10, 10), 'ok', 'bob''s call is admitted');
select is(private.gateway_release('pgtap030:release:1'), true, 'gateway_release gives a hold back');
select is(tests.held(:'bob'), (2 * :h_10_8192 + :h_10_300)::bigint, 'The released hold no longer counts in held');
select is(private.gateway_release('pgtap030:release:1'), false, 'Releasing it again does nothing');
select is(private.gateway_release('pgtap030:no-such-request'), false, 'Releasing an unknown request does nothing');
select is(tests.balance(:'bob'), (1000000 - :settle1_cost)::bigint, 'Releasing never changes the balance');

-- ============================================================================ expired holds
update private.token_holds set expires_at = now() - interval '1 minute'
 where request_id in ('pgtap030:cap:1', 'pgtap030:cap:2');
select ok(private.release_expired_holds() >= 2, 'release_expired_holds releases the expired holds');
select is(tests.held(:'bob'), :h_10_300::bigint, 'Expired holds are given back; the live one stays');
select is_empty($$select 1 from private.token_holds where request_id in ('pgtap030:cap:1', 'pgtap030:cap:2')$$,
  'Expired hold rows are gone');

-- ============================================================================ the usage outbox
select private.enqueue_usage(jsonb_build_object(
  'request_id', 'pgtap030:outbox:1', 'user_id', :'ivy', 'provider', 'openai', 'model', 'pgtap030-nocache',
  'input_tokens', 100, 'cached_input_tokens', 0, 'output_tokens', 50, 'status', 'ok', 'http_status', 200,
  'latency_ms', 5, 'upstream_request_id', null, 'tokens_estimated', false), 'lock timeout');
select private.enqueue_usage(jsonb_build_object('request_id', 'pgtap030:outbox:1', 'user_id', :'ivy'), 'again');
select results_eq($$select last_error, applied_at is null from private.usage_outbox where request_id = 'pgtap030:outbox:1'$$,
  $$values ('lock timeout', true)$$, 'enqueue_usage parks a record once per request id');
select private.enqueue_usage(jsonb_build_object(
  'request_id', 'pgtap030:outbox:2', 'user_id', :'ivy', 'provider', 'openai',
  'model', 'pgtap030-nocache', 'input_tokens', 1, 'output_tokens', 1, 'status', 'not-a-status'), null);
select private.enqueue_usage(jsonb_build_object(
  'request_id', 'pgtap030:outbox:3', 'user_id', extensions.gen_random_uuid(), 'provider', 'openai',
  'model', 'pgtap030-nocache', 'input_tokens', 1, 'output_tokens', 1, 'status', 'ok'), null);
select ok(private.process_usage_outbox() >= 1, 'process_usage_outbox applies waiting records');
select results_eq(
  $$select input_tokens, output_tokens, cost_micro_usd, debited_tokens from public.token_usage
     where request_id = 'pgtap030:outbox:1'$$,
  format($$values (100::bigint, 50::bigint, 300::bigint, %s::bigint)$$,
         ceil((100 * 2000000::numeric + 50 * 2000000::numeric) / :rate)),
  'The parked record becomes its usage row, billed at its price');
select results_eq(
  $$select applied_at is not null, attempts, last_error from private.usage_outbox where request_id = 'pgtap030:outbox:1'$$,
  $$values (true, 1, null::text)$$,
  'The applied record is marked applied');
select results_eq(
  $$select applied_at is null, dead_at is null, attempts, split_part(last_error, ':', 1), next_attempt_at > now()
      from private.usage_outbox where request_id = 'pgtap030:outbox:2'$$,
  $$values (true, true, 1, '23514', true)$$,
  'A record that cannot be applied for now (a check violation, not a data exception) stays, with its error, and waits');
select results_eq(
  $$select applied_at is not null, last_error from private.usage_outbox where request_id = 'pgtap030:outbox:3'$$,
  $$values (true, 'discarded: the user no longer exists')$$,
  'A record of a user who no longer exists is discarded, not retried forever');
select private.process_usage_outbox();
select is((select count(*)::int from public.token_usage where request_id = 'pgtap030:outbox:1'), 1,
  'Processing again adds nothing');
select is((select attempts from private.usage_outbox where request_id = 'pgtap030:outbox:2'), 1,
  'A failed record is not retried before its next attempt time');

-- ============================================================================ usage_daily rollup
-- ivy so far: settle:2 (7/3/1, 9), settle:4 (1000/0/1000, 5000) on pgtap030-model; settle:3 (10/4/5, 30) and
-- outbox:1 (100/0/50, 300) on pgtap030-nocache; settle:5 (10/0/5, unpriced).
insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens, cost_micro_usd,
                                pricing_id, status, created_at)
values ('pgtap030:yesterday', :'ivy', 'openai', 'pgtap030-model', 40, 2, 7, :'price_model', 'ok', now() - interval '1 day');
select results_eq(
  format($$select model, requests, input_tokens, cached_input_tokens, output_tokens, cost_micro_usd, unpriced_requests
             from public.usage_daily where user_id = %L and day = %L order by model$$, :'ivy', :'today'),
  $$values ('pgtap030-model', 2::bigint, 1007::bigint, 3::bigint, 1001::bigint, 5009::bigint, 0::bigint),
           ('pgtap030-nocache', 2::bigint, 110::bigint, 4::bigint, 55::bigint, 330::bigint, 0::bigint),
           ('pgtap030-unpriced', 1::bigint, 10::bigint, 0::bigint, 5::bigint, 0::bigint, 1::bigint)$$,
  'usage_daily sums each day''s calls per model (unpriced calls counted apart)');
select results_eq(
  format($$select requests, input_tokens, cost_micro_usd from public.usage_daily where user_id = %L and day = %L$$,
         :'ivy', ((now() - interval '1 day') at time zone 'UTC')::date),
  $$values (1::bigint, 40::bigint, 7::bigint)$$,
  'A call of another UTC day goes to that day''s row');

-- ============================================================================ check_usage_alerts
select tests.gw_user('jack', 'pgtap030_alerts') as jack \gset
select tests.gw_user('kate', 'pgtap030_alerts') as kate \gset
select tests.gw_user('leo', 'pro') as leo \gset
select tests.gw_user('mia', 'pro') as mia \gset
insert into public.user_subscriptions
  (user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, current_period_start,
   stripe_updated_at)
values (:'kate', 'pgtap030_alerts', 'monthly', 'active', 'sub_pgtap030Kate', 'cus_pgtap030Kate',
        now() - interval '2 days', now());

-- A call billed p_tokens platform tokens (of ten times as many raw tokens: the alerts count what was billed).
create function tests.usage(p_user uuid, p_request text, p_tokens bigint, p_at timestamptz default now())
returns void
language sql
as $$
  insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens, cost_micro_usd,
                                  pricing_id, debited_tokens, status, created_at)
  values (p_request, p_user, 'openai', 'pgtap030-nocache', 10 * p_tokens, 0, 0, null, p_tokens, 'ok', p_at)
$$;
select tests.usage(:'jack', 'pgtap030:alert:1', 850);
select tests.usage(:'kate', 'pgtap030:alert:2', 900, now() - interval '5 days');
select tests.usage(:'kate', 'pgtap030:alert:3', 100);
select tests.usage(:'leo', 'pgtap030:spike:1', 60000);
select tests.usage(:'mia', 'pgtap030:steady:1', 1680000, now() - interval '3 days');
select tests.usage(:'mia', 'pgtap030:steady:2', 60000);

select ok(private.check_usage_alerts() >= 3, 'check_usage_alerts adds alerts');
select results_eq(
  format($$select threshold_percent, period_start, used_tokens, allowance_tokens from public.usage_alerts
             where user_id = %L order by threshold_percent$$, :'jack'),
  format($$values (50, %1$L::timestamptz, 850::bigint, 1000::bigint), (80, %1$L::timestamptz, 850::bigint, 1000::bigint)$$,
         :'month_start'),
  '850 of 1000 platform tokens billed this month: the 50 % and 80 % alerts, for the UTC month');
select is_empty(format('select 1 from public.usage_alerts where user_id = %L', :'kate'),
  'Usage before the subscription''s current period does not count (100 of 1000)');
select results_eq(
  format($$select kind, details ->> 'last_hour_tokens' from private.admin_alerts where user_id = %L$$, :'leo'),
  $$values ('usage_spike', '60000')$$,
  'An hour far above the user''s trailing average raises a usage_spike admin alert');
select is_empty(format('select 1 from private.admin_alerts where user_id = %L', :'mia'),
  'An hour within 10x the trailing hourly average raises none');

select private.check_usage_alerts();
select is((select count(*)::int from public.usage_alerts where user_id in (:'jack', :'kate')), 2,
  'Running it again adds no usage alert');
select is((select count(*)::int from private.admin_alerts where user_id = :'leo'), 1,
  'Running it again adds no spike alert in the same hour');

select tests.usage(:'jack', 'pgtap030:alert:4', 200);
select tests.usage(:'kate', 'pgtap030:alert:5', 450);
select private.check_usage_alerts();
select results_eq(
  format('select threshold_percent, used_tokens from public.usage_alerts where user_id = %L order by threshold_percent',
         :'jack'),
  $$values (50, 850::bigint), (80, 850::bigint), (100, 1050::bigint)$$,
  'Crossing 100 % adds only the 100 % alert; earlier alerts stay as they were');
select results_eq(
  format('select threshold_percent, period_start from public.usage_alerts where user_id = %L', :'kate'),
  $$values (50, now() - interval '2 days')$$,
  '550 of 1000 in the subscription''s period: the 50 % alert, for that period');

-- ============================================================================ API roles: RLS
select id as jack_alert from public.usage_alerts where user_id = :'jack' and threshold_percent = 50 \gset
select id as kate_alert from public.usage_alerts where user_id = :'kate' \gset

select tests.authenticate_as(:'ivy');
select results_eq('select distinct user_id from public.token_usage', array[:'ivy']::uuid[],
  'ivy reads only her own usage rows');
select is((select count(*)::int from public.token_usage), 6, 'ivy reads all six of her usage rows');
select results_eq('select distinct user_id from public.usage_daily', array[:'ivy']::uuid[],
  'ivy reads only her own daily usage');
select is_empty('select 1 from public.usage_alerts', 'ivy reads no one else''s usage alerts');
select results_eq(
  format($$select day, model, requests, cost_micro_usd from public.get_usage_summary(%L, %L)$$, :'today', :'today'),
  format($$values (%1$L::date, 'pgtap030-model', 2::bigint, 5009::bigint),
                  (%1$L::date, 'pgtap030-nocache', 2::bigint, 330::bigint),
                  (%1$L::date, 'pgtap030-unpriced', 1::bigint, 0::bigint)$$, :'today'),
  'get_usage_summary returns the caller''s days in the range, per model');
select is((select count(*)::int from public.get_usage_summary(:'today'::date - 1, :'today')), 4,
  'get_usage_summary includes the earlier day when the range does');
select throws_ok(format('select private.gateway_admit(%L, ''openai'', ''gpt-4o'', ''x'', 1, 1, false)', :'ivy'),
  '42501', null, 'authenticated cannot call gateway_admit');
select throws_ok(
  format($$select private.gateway_settle(jsonb_build_object('request_id', 'x', 'user_id', %L, 'provider', 'openai',
           'model', 'gpt-4o', 'input_tokens', 1, 'output_tokens', 1, 'status', 'ok'))$$, :'ivy'),
  '42501', null, 'authenticated cannot call gateway_settle');
select throws_ok('select private.process_usage_outbox()', '42501', null,
  'authenticated cannot call process_usage_outbox');
select throws_ok(
  format($$insert into public.token_usage (request_id, user_id, provider, model, status) values ('x', %L, 'openai',
           'gpt-4o', 'ok')$$, :'ivy'),
  '42501', null, 'authenticated cannot write usage rows');
select throws_ok('select 1 from private.token_holds', '42501', null, 'authenticated cannot read holds');

select tests.clear_authentication();
select tests.authenticate_as(:'jack');
select results_eq('select threshold_percent from public.usage_alerts order by threshold_percent',
  array[50, 80, 100], 'jack reads his own three usage alerts');
select is(tests.affected_rows(format('update public.usage_alerts set read_at = now() where id = %L', :'jack_alert')), 1,
  'jack marks his own alert read');
select is(tests.affected_rows(format('update public.usage_alerts set read_at = now() where id = %L', :'kate_alert')), 0,
  'jack cannot mark kate''s alert read');
select throws_ok(format('update public.usage_alerts set used_tokens = 0 where id = %L', :'jack_alert'),
  '42501', null, 'jack cannot change anything but read_at');
select throws_ok(format('delete from public.usage_alerts where id = %L', :'jack_alert'),
  '42501', null, 'jack cannot delete an alert');
select results_eq('select request_id from public.token_usage order by request_id',
  array['pgtap030:alert:1', 'pgtap030:alert:4'], 'jack reads exactly his own two usage rows');
select tests.clear_authentication();
select isnt((select read_at from public.usage_alerts where id = :'jack_alert'), null, 'jack''s alert is marked read');
select is((select read_at from public.usage_alerts where id = :'kate_alert'), null, 'kate''s alert is untouched');

select tests.authenticate_as_anon();
select ok((select count(*) from public.model_pricing where model = 'pgtap030-model') = 2, 'anon reads model prices');
select throws_ok('select 1 from public.token_usage', '42501', null, 'anon cannot read usage');
select throws_ok('select 1 from public.usage_daily', '42501', null, 'anon cannot read daily usage');
select throws_ok('select 1 from public.usage_alerts', '42501', null, 'anon cannot read usage alerts');
select throws_ok(format('select * from public.get_usage_summary(%L, %L)', :'today', :'today'), '42501', null,
  'anon cannot call get_usage_summary');
select throws_ok('select private.process_usage_outbox()', '42501', null, 'anon cannot call process_usage_outbox');
select tests.clear_authentication();

select is(
  (select array_agg(format('%s:%s', r, f) order by r, f)
     from unnest(array['anon', 'authenticated']) r,
          unnest(array[
            'private.gateway_admit(uuid,text,text,text,bigint,integer,boolean,integer,integer,boolean,text)',
            'private.gateway_settle(jsonb)',
            'private.gateway_lease(uuid,text,text,text,bigint,integer,integer,integer,bigint,integer,bigint,boolean,boolean,integer,boolean,text)',
            'private.gateway_settle_batch(jsonb,jsonb)', 'private.rate_limit_take(text,integer,integer,integer,integer)',
            'private.gateway_release(text)', 'private.enqueue_usage(jsonb,text)',
            'private.process_usage_outbox(integer)', 'private.release_expired_holds()',
            'private.check_usage_alerts(numeric,bigint)']) f
    where has_function_privilege(r, f, 'execute')),
  null, 'anon and authenticated hold EXECUTE on none of the gateway''s private functions');

-- ============================================================================ cron
select results_eq(
  $$select format('%s | %s | %s', jobname, schedule, command) collate "default" from cron.job
     where jobname in ('aie_release_expired_holds', 'aie_usage_outbox', 'aie_usage_alerts') order by jobname$$,
  array['aie_release_expired_holds | * * * * * | select private.release_expired_holds()',
        'aie_usage_alerts | */15 * * * * | select private.check_usage_alerts()',
        'aie_usage_outbox | * * * * * | select private.process_usage_outbox()'],
  'The three gateway cron jobs are scheduled');

select * from finish();
rollback;
