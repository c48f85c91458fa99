-- private.gateway_admit's outcomes: an unknown user is unauthorized, a model outside the plan's allowed_models
-- forbidden, a call beyond the requests or tokens per minute (counted in Postgres only with p_check_limits)
-- rate_limited, a hold beyond the unreserved balance payment_required: none of them holds anything. An admitted call
-- holds ceil(cost of its input and max output (capped at the plan's) / rate) platform tokens at the price in force,
-- for 15 minutes, and held is the sum of the holds.
begin;
\ir ../../_helpers.psql
\ir ../../_fixtures/gateway.psql
select plan(29);

-- Prices, plans and the rate (_fixtures/gateway.psql), with :h_<input>_<max output>: what a call holds on
-- pgtap030-model.
select * from tests.create_gateway_fixtures() \gset

-- ============================================================================ gateway_admit outcomes
-- alice has one and a half holds of a call of input 100 and max output 500.
select tests.create_user_on_plan('gw-alice', 'pro', :h_100_500 * 3 / 2) as alice \gset
select tests.create_user_on_plan('gw-bob', 'pro', 1000000) as bob \gset
select tests.create_user_on_plan('gw-limited', 'pgtap030_limited', 10000) as limited \gset
select tests.create_user_on_plan('gw-rpm', 'pgtap030_rpm', 100000) as rpm_user \gset
select tests.create_user_on_plan('gw-tpm', 'pgtap030_tpm', 100000) as tpm_user \gset

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

select * from finish();
rollback;
