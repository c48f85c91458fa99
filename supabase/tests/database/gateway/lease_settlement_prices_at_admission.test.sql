-- A call settled under a lease is priced as in force when it was admitted (the old price before :t_change, the new
-- one after) and what it cost comes off the lease, held and the balance (a ledger row usage:<request id>); a repeat
-- changes nothing; a call costing more than is left is debited its full cost and the used-up lease is deleted; under
-- a lease already gone a call still debits its full cost, even into what another lease holds. gateway_admit (a
-- one-call lease) keeps the price in force on its hold, and refuses its request id twice.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(21);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h10, :h100, …: what calls hold on pgtap031-model.
select * from tests.create_gateway_fixtures() \gset

-- gateway_settle of a call admitted under a lease (the usage record the gateway sends).
create function tests.settle_lease(p_request text, p_user uuid, p_input bigint, p_cached bigint, p_output bigint,
                             p_lease text, p_admitted_at timestamptz default null)
returns public.token_usage
language sql
as $$
  select * from private.gateway_settle(jsonb_build_object(
    'request_id', p_request, 'user_id', p_user, 'provider', 'openai', 'model', 'pgtap031-model',
    'input_tokens', p_input, 'cached_input_tokens', p_cached, 'output_tokens', p_output, 'status', 'ok',
    'http_status', 200, 'latency_ms', 100, 'upstream_request_id', 'up-' || p_request, 'tokens_estimated', false,
    'lease_id', p_lease, 'admitted_at', coalesce(p_admitted_at, now())))
$$;

-- ============================================================================ gateway_settle under a lease
-- What the calls below cost, in platform tokens, at the price in force when each was admitted.
select ceil((60 * 1000000::numeric + 40 * 500000::numeric + 50 * 2000000::numeric) / :rate)::bigint as c_lena1,
       ceil((100 * 3000000::numeric + 100 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_lena2,
       ceil((1000 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_lena3,
       ceil((400 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_gus \gset
select tests.create_user_on_plan('pgtap031-lena', 'pgtap031_roomy', 40 * :h100) as lena \gset
-- gus has one and a half calls (of input 700) worth.
select tests.create_user_on_plan('pgtap031-gus', 'pgtap031_roomy', 3 * :h700 / 2) as gus \gset

select is((select granted_tokens from tests.lease(:'lena', 'pgtap031:lease:lena', 100, null, p_calls => 4)),
  (4 * :h100)::bigint, 'lena leases four calls of input 100');

-- Call 1, admitted before the price change: 60 uncached at $1/M + 40 cached at $0.50/M + 50 output at $2/M = 180.
select results_eq(
  format($$select input_tokens + output_tokens, debited_tokens, pricing_id, cost_micro_usd
             from tests.settle_lease('pgtap031:lena:1', %L, 100, 40, 50, 'pgtap031:lease:lena',
                               %L::timestamptz - interval '1 minute')$$, :'lena', :'t_change'),
  format($$values (150::bigint, %s::bigint, %s::bigint, 180::bigint)$$, :c_lena1, :'price_old'),
  'A call admitted before the price change is priced at the old price in force at admitted_at');
select is(tests.hold('pgtap031:lease:lena'), (4 * :h100 - :c_lena1)::bigint,
  'What the call cost comes off the lease');
select is(tests.held(:'lena'), (4 * :h100 - :c_lena1)::bigint, 'held goes down by the same');
select is(tests.balance(:'lena'), (40 * :h100 - :c_lena1)::bigint, 'The balance is debited what the call cost');
select results_eq(
  $$select delta, reason from public.token_transactions where reference = 'usage:pgtap031:lena:1'$$,
  format($$values (%s::bigint, 'usage')$$, -:c_lena1),
  'The debit is a ledger row usage:<request id>');

-- Call 2, admitted after it: 100 uncached + 100 cached at $3/M (no cached price) + 100 output at $6/M = 1200.
select results_eq(
  format($$select pricing_id, cost_micro_usd, debited_tokens
             from tests.settle_lease('pgtap031:lena:2', %L, 200, 100, 100, 'pgtap031:lease:lena',
                               %L::timestamptz + interval '1 minute')$$, :'lena', :'t_change'),
  format($$values (%s::bigint, 1200::bigint, %s::bigint)$$, :'price_new', :c_lena2),
  'A call admitted after the price change is priced at the new price');
select is(tests.hold('pgtap031:lease:lena'), (4 * :h100 - :c_lena1 - :c_lena2)::bigint,
  'The lease has what the two calls did not cost left');

select id as lena2_id from public.token_usage where request_id = 'pgtap031:lena:2' \gset
select is((tests.settle_lease('pgtap031:lena:2', :'lena', 9999, 0, 9999, 'pgtap031:lease:lena')).id, :'lena2_id'::bigint,
  'Settling the same request again returns the existing usage row');
select results_eq(
  format($$select tests.hold('pgtap031:lease:lena'), tests.held(%1$L), tests.balance(%1$L)$$, :'lena'),
  format($$values (%1$s::bigint, %1$s::bigint, %2$s::bigint)$$, 4 * :h100 - :c_lena1 - :c_lena2,
         40 * :h100 - :c_lena1 - :c_lena2),
  'A repeated settlement changes neither the lease, nor held, nor the balance');

select is((tests.settle_lease('pgtap031:lena:3', :'lena', 1000, 0, 100, 'pgtap031:lease:lena')).debited_tokens,
  :c_lena3::bigint, 'A call costing more than is left of the lease is debited its full cost');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:lena'$$,
  'A lease used up is deleted');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'lena'),
  format($$values (0::bigint, %s::bigint)$$, 40 * :h100 - :c_lena1 - :c_lena2 - :c_lena3),
  'Nothing is held once the lease is used up, and the balance paid all three calls in full');

-- A lease already gone (closed or expired): the call still debits its full cost, even into another hold's tokens.
select is((select granted_tokens from tests.lease(:'gus', 'pgtap031:lease:gus', 700, null)), :h700::bigint,
  'gus holds a call of input 700 of his one and a half under another lease');
select results_eq(
  format($$select input_tokens + output_tokens, debited_tokens
             from tests.settle_lease('pgtap031:gus:1', %L, 400, 0, 100, 'pgtap031:lease:gus-gone')$$, :'gus'),
  format($$values (500::bigint, %s::bigint)$$, :c_gus),
  'A call under a lease that is gone is debited its full cost, more than is not held');
select results_eq(
  format($$select tests.balance(%1$L), tests.held(%1$L), tests.hold('pgtap031:lease:gus')$$, :'gus'),
  format($$values (%s::bigint, %2$s::bigint, %2$s::bigint)$$, 3 * :h700 / 2 - :c_gus, :h700),
  'The balance falls below what the other lease holds; the other lease is untouched');
select results_eq(
  $$select delta, balance_after, metadata ? 'shortfall' from public.token_transactions
     where reference = 'usage:pgtap031:gus:1'$$,
  format($$values (%s::bigint, %s::bigint, false)$$, -:c_gus, 3 * :h700 / 2 - :c_gus),
  'The ledger row debits the full cost: there is no shortfall any more');

-- ============================================================================ gateway_admit
select tests.create_user_on_plan('pgtap031-adam', 'pgtap031_roomy', 100000) as adam \gset
select results_eq(
  format($$select outcome, hold_tokens, pricing_id from private.gateway_admit(%L, 'openai', 'pgtap031-model',
           'pgtap031:adam:1', 10, null, false)$$, :'adam'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, :h10, :'price_new'),
  'gateway_admit admits one call with the price in force');
select results_eq(
  $$select amount, pricing_id from private.token_holds where request_id = 'pgtap031:adam:1'$$,
  format($$values (%s::bigint, %s::bigint)$$, :h10, :'price_new'),
  'gateway_admit''s hold is exactly the call''s and keeps the price in force');

select throws_ok(
  format($$select * from private.gateway_admit(%L, 'openai', 'pgtap031-model', 'pgtap031:adam:1', 10, null, false)$$,
         :'adam'),
  '23505', null, 'Admitting the same request id again is refused');
select is(tests.held(:'adam'), :h10::bigint, 'and holds nothing more');

select * from finish();
rollback;
