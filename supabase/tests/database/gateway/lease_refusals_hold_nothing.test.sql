-- private.gateway_lease refuses without holding anything: an unknown user (unauthorized), a model outside the plan's
-- allowed_models (forbidden), no model or a model without a price (unpriced; nor does gateway_admit admit a model
-- whose prices all ended), the plan's requests or tokens per minute reached (rate_limited, naming the limit), a
-- balance short of the call's hold (payment_required, naming available and needed) or at or below zero
-- (payment_required even when the instance already has tokens for the call; p_ahead is never refused).
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(25);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h10, :h100, …: what calls hold on pgtap031-model.
select * from tests.create_gateway_fixtures() \gset
-- The limiter windows are whole minutes (and hours): start well inside one, this file takes far less than 10 s.
select pg_sleep(case when extract(second from clock_timestamp()) > 50 then 61 - extract(second from clock_timestamp())
                     else 0 end);

-- ============================================================================ gateway_lease outcomes
select tests.create_user_on_plan('pgtap031-olga', 'pgtap031_roomy', 100000) as olga \gset
select tests.create_user_on_plan('pgtap031-pete', 'pgtap031_roomy', :h10 - 1) as pete \gset
select tests.create_user_on_plan('pgtap031-rita', 'pgtap031_rpm', 1000000) as rita \gset
select tests.create_user_on_plan('pgtap031-tara', 'pgtap031_tpm', 1000000) as tara \gset

-- unauthorized
select results_eq(
  format($$select outcome, message, granted_tokens from tests.lease(%L, 'pgtap031:lease:unknown', 10, null)$$,
         extensions.gen_random_uuid()),
  $$values ('unauthorized', 'Unknown user', 0::bigint)$$,
  'A lease for an unknown user is unauthorized');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:unknown'$$,
  'An unauthorized lease holds nothing');

-- forbidden, and no model check without a model
select results_eq(
  format($$select outcome, message from tests.lease(%L, 'pgtap031:lease:olga-other', 10, null,
           p_model => 'pgtap031-other')$$, :'olga'),
  $$values ('forbidden', 'Model pgtap031-other is not available on the pgtap031 Roomy plan')$$,
  'A model outside the plan''s allowed_models is forbidden');
select is(tests.held(:'olga'), 0::bigint, 'A forbidden lease holds nothing');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:olga-any', 10, null, p_model => null)$$,
         :'olga'),
  $$values ('unpriced', 0::bigint)$$,
  'Without a model (p_model null) the allowed_models check is skipped, but there is no price to bill it: unpriced');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:olga-any'$$,
  'A lease without a model holds nothing');

-- rate_limited: requests per minute (a plan of 2 a minute, and a first lease asking for 4 calls)
select results_eq(
  format($$select outcome, granted_requests, granted_rate_tokens, granted_tokens
             from tests.lease(%L, 'pgtap031:lease:rita', 10, null, p_calls => 4, p_check_limits => true)$$, :'rita'),
  format($$values ('ok', 2, 220::bigint, %s::bigint)$$, 2 * :h10),
  'Limits leaving only 2 requests: p_calls 4 is granted 2 requests, 2 calls of tokens per minute and 2 holds of budget');
select results_eq(
  format($$select outcome, message, limit_value, granted_tokens
             from tests.lease(%L, 'pgtap031:lease:rita', 10, null, p_check_limits => true)$$, :'rita'),
  $$values ('rate_limited', 'Requests-per-minute limit reached', 2, 0::bigint)$$,
  'With no request left in the minute the lease is rate_limited, with the plan''s requests per minute');
select is(tests.held(:'rita'), (2 * :h10)::bigint, 'A rate_limited lease holds nothing more');

-- rate_limited: tokens per minute (1000 a minute; a call counts 100 + 500 tokens)
select results_eq(
  format($$select outcome, granted_rate_tokens, granted_tokens from tests.lease(%L, 'pgtap031:lease:tara', 100, null,
           p_check_limits => true)$$, :'tara'),
  format($$values ('ok', 600::bigint, %s::bigint)$$, :h_tara),
  'A call of 600 tokens fits a window of 1000 tokens a minute (and holds its cost in platform tokens)');
select results_eq(
  format($$select outcome, message, limit_value from tests.lease(%L, 'pgtap031:lease:tara', 100, null,
           p_check_limits => true)$$, :'tara'),
  $$values ('rate_limited', 'Tokens-per-minute limit reached', 1000)$$,
  'A second call of 600 does not fit the 400 left: rate_limited with the plan''s tokens per minute');
select is(tests.held(:'tara'), :h_tara::bigint, 'The refused call holds nothing');

-- payment_required
select results_eq(
  format($$select outcome, message, granted_tokens from tests.lease(%L, 'pgtap031:lease:pete', 10, null)$$, :'pete'),
  format($$values ('payment_required', 'Token balance too low for this call: %s available, up to %s needed',
                   0::bigint)$$, :h10 - 1, :h10),
  'A balance one token short of the call''s hold cannot cover it: payment_required, naming available and needed');
select is(tests.held(:'pete'), 0::bigint, 'A payment_required lease holds nothing');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:pete'$$,
  'A payment_required lease places no hold row');

-- ============================================================================ unpriced models, balances <= 0
select tests.create_user_on_plan('pgtap032-tom', 'pgtap032_plan', 100000000) as tom \gset
select results_eq(
  format($$select outcome, message, granted_tokens from private.gateway_lease(tests.lease_request(%L, 'openai', 'pgtap032:lease:never',
           'pgtap032-never', 10, 10, p_check_limits => false))$$, :'tom'),
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
select tests.create_user_on_plan('pgtap032-zack', 'pgtap032_plan') as zack \gset
select tests.create_user_on_plan('pgtap032-ned', 'pgtap032_plan') as ned \gset
select ceil((20000 * 2000000::numeric + 5000 * 8000000::numeric) / :rate)::bigint as ned_debt \gset
select ok((private.gateway_settle(tests.usage_record('pgtap032:ned:overage', :'ned', 'openai', 'pgtap032-defaults', 20000, 5000)))
  .debited_tokens > 0, 'ned owes what a call cost beyond his balance (an overage)');
select is(tests.balance(:'ned'), (-:ned_debt)::bigint, 'ned''s balance is below zero by what the call cost');
select results_eq(
  format($$select outcome, message, granted_tokens from private.gateway_lease(tests.lease_request(%L, 'openai', 'pgtap032:lease:zack',
           'pgtap032-defaults', 10, 10, p_have_tokens => 1000000, p_check_limits => false))$$, :'zack'),
  $$values ('payment_required', 'Token balance exhausted (0): add tokens to make calls', 0::bigint)$$,
  'With a balance of 0 a call is payment_required even when the instance already has its tokens');
select results_eq(
  format($$select outcome, message, granted_tokens, balance from private.gateway_lease(tests.lease_request(%L, 'openai',
           'pgtap032:lease:ned', 'pgtap032-defaults', 10, 10, p_have_tokens => 1000000, p_check_limits => false))$$,
         :'ned'),
  format($$values ('payment_required', 'Token balance exhausted (%1$s): add tokens to make calls', 0::bigint,
                   %1$s::bigint)$$, -:ned_debt),
  'With a balance below zero a call is payment_required, naming the balance');
select results_eq(
  format($$select outcome, granted_tokens from private.gateway_lease(tests.lease_request(%L, 'openai', 'pgtap032:lease:zack-ahead',
           'pgtap032-defaults', 10, 10, p_ahead => true, p_check_limits => false))$$, :'zack'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead is not refused at a balance of 0: ok, granting nothing');
-- Topping up ahead needs nothing now, so a balance below zero does not refuse it either.
select results_eq(
  format($$select outcome, granted_tokens from private.gateway_lease(tests.lease_request(%L, 'openai', 'pgtap032:lease:ned-ahead',
           'pgtap032-defaults', 10, 10, p_ahead => true, p_check_limits => false))$$, :'ned'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead is not refused at a balance below zero either: ok, granting nothing');
select is_empty(format('select 1 from private.token_holds where user_id in (%L, %L)', :'zack', :'ned'),
  'Nothing is held for users at or below zero');

select * from finish();
rollback;
