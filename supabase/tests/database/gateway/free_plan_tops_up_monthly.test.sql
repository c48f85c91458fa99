-- The free plan tops the balance up to its monthly allowance on the user's first call of the month (one
-- subscription_allowance row free:<user>:<YYYY-MM>, crediting only the difference, never above the allowance, and
-- whatever last month's top-up was); the calls are then debited their cost; a paid plan gets no top-up.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(18);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h_<input>_<max output>: what a call holds on
-- pgtap030-model.
select * from tests.create_gateway_fixtures() \gset
select to_char(now() at time zone 'UTC', 'YYYY-MM') as this_month \gset
select to_char((now() at time zone 'UTC') - interval '1 month', 'YYYY-MM') as last_month \gset

-- alice (pro) has one and a half holds of a call of input 100 and max output 500, one of them held.
select tests.create_user_on_plan('gw-alice', 'pro', :h_100_500 * 3 / 2) as alice \gset
select tests.admit(:'alice', 'pgtap030:pay:1', 100, 500) as alice_admitted \gset

-- ============================================================================ free plan top-up
select tests.create_user_on_plan('gw-carol', 'free') as carol \gset
select tests.create_user_on_plan('gw-dave', 'free', 60000) as dave \gset
select tests.create_user_on_plan('gw-erin', 'free', 150000) as erin \gset
select tests.create_user_on_plan('gw-frank', 'free') as frank \gset
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

select * from finish();
rollback;
