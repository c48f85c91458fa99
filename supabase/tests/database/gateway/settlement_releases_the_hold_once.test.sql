-- private.gateway_settle settles a request id once: one usage row with the tokens and the cost (cached input at its
-- own price), the hold of exactly that call released, its cost debited in platform tokens as a ledger row
-- usage:<request id>; settling it again returns the same row and changes nothing. gateway_release gives a hold back
-- once, and release_expired_holds the expired ones; neither changes the balance.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(22);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h_<input>_<max output>: what a call holds on
-- pgtap030-model.
select * from tests.create_gateway_fixtures() \gset

select tests.create_user_on_plan('gw-bob', 'pro', 1000000) as bob \gset
-- bob's calls in flight: two held at pro's max output of 8192 (one asked for more, one for nothing), one of 300.
select hold_tokens as cap1 from private.gateway_admit(:'bob', 'openai', 'pgtap030-model', 'pgtap030:cap:1', 10, 100000,
  false) \gset
select hold_tokens as cap2 from private.gateway_admit(:'bob', 'openai', 'pgtap030-model', 'pgtap030:cap:2', 10, null,
  false) \gset
select hold_tokens as cap3 from private.gateway_admit(:'bob', 'openai', 'pgtap030-model', 'pgtap030:cap:3', 10, 300,
  false) \gset

-- ============================================================================ gateway_settle
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

select * from finish();
rollback;
