-- Usage as the API roles see it: usage_daily sums each UTC day's calls per model (unpriced calls counted apart); a
-- signed-in user reads only their own usage rows, daily usage and alerts, and get_usage_summary returns their days in
-- the range; they can neither call the gateway's functions nor write usage or read holds; anon reads none of it.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(18);

-- Prices, plans and the rate (_fixtures/gateway.psql).
select * from tests.create_gateway_fixtures() \gset
select (now() at time zone 'UTC')::date as today \gset

-- ivy's calls today (as gateway/settlement_bills_full_cost and the outbox settle them).
select tests.create_user_on_plan('gw-ivy', 'pro', 1000000) as ivy \gset
select (tests.settle('pgtap030:settle:2', :'ivy', 7, 3, 1)).debited_tokens;
select (tests.settle('pgtap030:settle:3', :'ivy', 10, 4, 5, 'pgtap030-nocache')).debited_tokens;
select (tests.settle('pgtap030:settle:5', :'ivy', 10, 0, 5, 'pgtap030-unpriced')).debited_tokens;
select (tests.settle('pgtap030:settle:4', :'ivy', 1000, 0, 1000)).debited_tokens;
select (tests.settle('pgtap030:outbox:1', :'ivy', 100, 0, 50, 'pgtap030-nocache')).debited_tokens;

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

-- Someone else's usage and alerts (jack's: 850 of his 1000 platform tokens billed), for ivy not to see.
select tests.create_user_on_plan('gw-jack', 'pgtap030_alerts') as jack \gset
select tests.usage(:'jack', 'pgtap030:alert:1', 850);
select private.check_usage_alerts() as alerts_added \gset

-- ============================================================================ API roles: RLS
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

select tests.authenticate_as_anon();
select throws_ok('select 1 from public.token_usage', '42501', null, 'anon cannot read usage');
select throws_ok('select 1 from public.usage_daily', '42501', null, 'anon cannot read daily usage');
select throws_ok('select 1 from public.usage_alerts', '42501', null, 'anon cannot read usage alerts');
select throws_ok(format('select * from public.get_usage_summary(%L, %L)', :'today', :'today'), '42501', null,
  'anon cannot call get_usage_summary');
select throws_ok('select private.process_usage_outbox()', '42501', null, 'anon cannot call process_usage_outbox');
select tests.clear_authentication();

select * from finish();
rollback;
