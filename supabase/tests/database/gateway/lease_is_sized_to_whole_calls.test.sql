-- How much private.gateway_lease holds, in platform tokens: one call's hold (input estimate and capped max output x
-- choices, at their prices) for p_calls 1, N calls' worth with a large balance, less p_have_tokens; topping a lease up
-- adds to its one row and pushes its expiry later; beyond the call at most a quarter of the unreserved balance, whole
-- calls only; p_ahead never refused (whole calls within the quarter, or nothing); the limits taken for N calls.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(19);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h10, :h100, …: what calls hold on pgtap031-model.
select * from tests.create_gateway_fixtures() \gset
-- The limiter windows are whole minutes (and hours): start well inside one, this file takes far less than 10 s.
select pg_sleep(case when extract(second from clock_timestamp()) > 50 then 61 - extract(second from clock_timestamp())
                     else 0 end);

-- olga holds nothing of her 100000; pete has one token less than a call of input 10 holds.
select tests.create_user_on_plan('pgtap031-olga', 'pgtap031_roomy', 100000) as olga \gset
select tests.create_user_on_plan('pgtap031-pete', 'pgtap031_roomy', :h10 - 1) as pete \gset

-- ============================================================================ gateway_lease sizing
select tests.create_user_on_plan('pgtap031-sam', 'pgtap031_roomy', 1000000) as sam \gset
select tests.create_user_on_plan('pgtap031-quinn', 'pgtap031_roomy', 20 * :h100) as quinn \gset
select tests.create_user_on_plan('pgtap031-vera', 'pgtap031_roomy', 10 * :h100) as vera \gset
select tests.create_user_on_plan('pgtap031-una', 'pgtap031_roomy', 3 * :h100) as una \gset
select tests.create_user_on_plan('pgtap031-zoe', 'pgtap031_roomy') as zoe \gset
select tests.create_user_on_plan('pgtap031-rob', 'pgtap031_roomy', 1000000) as rob \gset

-- One call: input 25 at $3/M + max output 500 capped at 100, two choices, at $6/M.
select results_eq(
  format($$select outcome, max_output_tokens, hold_tokens, granted_tokens
             from tests.lease(%L, 'pgtap031:lease:sam-1', 25, 500, p_choices => 2)$$, :'sam'),
  format($$values ('ok', 100, %1$s::bigint, %1$s::bigint)$$, :h_sam),
  'p_calls 1 holds exactly the call''s hold: input estimate + capped max output x choices, at their prices');
select results_eq(
  $$select user_id, amount from private.token_holds where request_id = 'pgtap031:lease:sam-1'$$,
  format($$values (%L::uuid, %s::bigint)$$, :'sam', :h_sam),
  'The hold is a token_holds row under the lease id');
select is(tests.held(:'sam'), :h_sam::bigint, 'token_balances.held counts the lease');

select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-3', 10, null, p_calls => 3)),
  (3 * :h10)::bigint, 'p_calls 3 with a large balance holds three calls'' worth');
select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-have', 10, null, p_have => :h10 / 2)),
  (:h10 - :h10 / 2)::bigint, 'p_have_tokens of half a call leaves the other half of the call''s hold to hold');
select is(tests.held(:'sam'), (:h_sam + 3 * :h10 + :h10 - :h10 / 2)::bigint, 'held is the sum of the user''s leases');

-- Topping the same lease up: one row, amounts summed, the expiry pushed later.
select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-top', 10, null, p_hold_seconds => 60)),
  :h10::bigint, 'A lease of one call held for 60 seconds');
select is((select expires_at from private.token_holds where request_id = 'pgtap031:lease:sam-top'),
  now() + interval '60 seconds', 'A lease expires p_hold_seconds after it was taken');
select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-top', 10, null, p_calls => 2)),
  (2 * :h10)::bigint, 'Topped up with two more calls under the same lease id');
select results_eq(
  $$select count(*)::int, sum(amount), max(expires_at) from private.token_holds where request_id = 'pgtap031:lease:sam-top'$$,
  format($$values (1, %s::numeric, now() + interval '900 seconds')$$, 3 * :h10),
  'A second lease under the same id adds to the same row (1 + 2 calls) and pushes its expiry later');

-- At most a quarter of the unreserved balance beyond the call, and beyond the call whole calls only.
select results_eq(
  format($$select outcome, granted_tokens, balance from tests.lease(%L, 'pgtap031:lease:quinn', 100, null, p_calls => 10)$$,
         :'quinn'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, 5 * :h100, 15 * :h100),
  'Ten calls with twenty calls'' worth unreserved: only a quarter of it is held (5 calls), 15 left');
select results_eq(
  format($$select outcome, granted_tokens, balance from tests.lease(%L, 'pgtap031:lease:vera', 100, null, p_calls => 5)$$,
         :'vera'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, 2 * :h100, 8 * :h100),
  'Five calls with ten calls'' worth unreserved: the quarter (2.5 calls) is rounded down to whole calls (2)');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:una', 100, null, p_calls => 5)$$, :'una'),
  format($$values ('ok', %s::bigint)$$, :h100),
  'With three calls'' worth unreserved the call itself is held although it is more than a quarter (0.75 calls)');

-- p_ahead: never refused.
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:zoe', 10, null, p_calls => 4,
           p_ahead => true)$$, :'zoe'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead with no balance at all is ok, granting nothing');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:zoe'$$,
  'A lease granted nothing places no hold row');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:pete-ahead', 10, null, p_ahead => true)$$,
         :'pete'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead with one token less than the call''s hold unreserved is ok, granting nothing (no whole call fits)');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:olga-ahead', 10, null, p_calls => 1000,
           p_ahead => true)$$, :'olga'),
  format($$values ('ok', %s::bigint)$$, 100000 / 4 / :h10 * :h10),
  'p_ahead needs nothing for the call: whole calls within a quarter of the unreserved 100000');

-- The limits, for four calls on a roomy plan.
select results_eq(
  format($$select outcome, granted_requests, granted_rate_tokens, granted_tokens, requests_remaining,
                  rate_tokens_remaining
             from tests.lease(%L, 'pgtap031:lease:rob', 10, null, p_calls => 4, p_check_limits => true)$$, :'rob'),
  format($$values ('ok', 4, 440::bigint, %s::bigint, 96, 999560)$$, 4 * :h10),
  'p_calls 4 with the limits: 4 requests, 4 calls of tokens per minute (4 x 110) and 4 holds of budget');
select results_eq(
  format($$select key, hits from private.rate_limit_buckets where key in (%L, %L) order by key$$,
         'gw:rpm:' || :'rob', 'gw:tpm:' || :'rob'),
  format($$values (%L, 4), (%L, 440)$$, 'gw:rpm:' || :'rob', 'gw:tpm:' || :'rob'),
  'The requests and tokens buckets count the 4 requests and 440 tokens taken');

select * from finish();
rollback;
