-- Budget leases for the LLM gateway (migrations 20261125190000_gateway_leases, 20261201110000_gateway_cost_billing):
--   private.rate_limit_take   takes between need and want hits of a fixed window (what is left, at most), or none
--                             (and the refused need still counts); need 0 is never refused; an old window reads
--                             as empty; bad arguments are 22023
--   private.gateway_lease     outcomes (unauthorized, forbidden, unpriced without a model, rate_limited for requests
--                             and for tokens, payment_required) that hold nothing; its sizing in platform tokens: one
--                             call's hold, N calls' worth, beyond the call at most a quarter of the unreserved
--                             balance and whole calls only, p_have_tokens, top-ups of the same lease (one row,
--                             summed, later expiry), p_ahead never refused, the limits it takes for N calls (in raw
--                             tokens) and a budget never larger than the limits granted
--   private.gateway_settle    a usage record with lease_id: what the call cost comes off the lease (row gone when
--                             used up), priced as in force at admitted_at; a repeat is a no-op; a lease already
--                             gone still debits the full cost, even into what other leases hold
--   private.gateway_settle_batch  settlements of several users and leases closed in the same batch, with each call's
--                             cost and its user's balance after the batch; a failing record is parked in the outbox
--                             and its lease keeps exactly what it cost until private.process_usage_outbox settles it
--                             (all of what is left when the record cannot even be read); a user short of the whole
--                             batch is still settled as a set, below zero
--   private.gateway_admit     (a one-call lease) still keeps the price in force on its hold
-- Expected platform tokens are computed here from the prices and the rate in force (:rate, micro-dollars per
-- million platform tokens): ceil(sum of tokens x price per million / rate).
begin;
\ir ../_helpers.psql
select plan(98);

-- ======================================================================================= fixtures
-- Two price periods of a model of our own: an old price until :t_change (an hour ago), a new one since.
select now() - interval '1 hour' as t_change \gset
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
   effective_from, effective_to)
values ('openai', 'pgtap031-model', 1000000, 500000, 2000000, now() - interval '30 days', :'t_change'),
       ('openai', 'pgtap031-model', 3000000, null, 6000000, :'t_change', null);
select id as price_old from public.model_pricing where model = 'pgtap031-model' and effective_to is not null \gset
select id as price_new from public.model_pricing where model = 'pgtap031-model' and effective_to is null \gset
-- The platform token rate in force, and what calls hold at the new price ($3/M input, $6/M output):
-- ceil((input x 3000000 + max output x choices x 6000000) / rate) platform tokens.
select micro_usd_per_mtok as rate from public.platform_token_rates
 where effective_from <= now() and (effective_to is null or effective_to > now()) \gset
select ceil((10 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as h10,
       ceil((100 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as h100,
       ceil((700 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as h700,
       ceil((25 * 3000000::numeric + 2 * 100 * 6000000::numeric) / :rate)::bigint as h_sam,
       ceil((100 * 3000000::numeric + 500 * 6000000::numeric) / :rate)::bigint as h_tara \gset

-- Plans of our own (max output 100, so a call of input 10 and no requested output counts 110 tokens against the
-- tokens-per-minute limit and holds :h10 platform tokens).
insert into public.subscription_plans
  (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens, allowed_models,
   is_active)
values ('pgtap031_roomy', 'pgtap031 Roomy', 0, 100, 1000000, 100, '{pgtap031-model}', false),
       ('pgtap031_rpm', 'pgtap031 Two a minute', 0, 2, 1000000, 100, '{}', false),
       ('pgtap031_tpm', 'pgtap031 Thousand tokens a minute', 0, 100, 1000, 500, '{}', false);

-- A user on a plan with a starting balance (an adjustment).
create function tests.lease_user(p_name text, p_plan text, p_balance bigint default 0) returns uuid
language plpgsql
as $$
declare
  v_id uuid := tests.create_user('pgtap031-' || p_name || '@example.com');
begin
  update public.users set plan = p_plan where id = v_id;
  if p_balance > 0 then
    perform private.update_user_token_balance(v_id, p_balance, 'adjustment', 'pgtap031:start:' || p_name);
  end if;
  return v_id;
end;
$$;

-- gateway_lease with the arguments these tests vary; without the Postgres limiter unless asked.
create function tests.lease(
  p_user uuid, p_lease text, p_input bigint, p_output integer, p_calls integer default 1,
  p_have bigint default 0, p_ahead boolean default false, p_check_limits boolean default false,
  p_model text default 'pgtap031-model', p_choices integer default 1, p_hold_seconds integer default 900)
returns table (outcome text, message text, max_output_tokens integer, hold_tokens bigint, granted_tokens bigint,
               granted_requests integer, granted_rate_tokens bigint, requests_remaining integer,
               rate_tokens_remaining integer, limit_value integer, balance bigint)
language sql
as $$
  select outcome, message, max_output_tokens, hold_tokens, granted_tokens, granted_requests, granted_rate_tokens,
         requests_remaining, rate_tokens_remaining, limit_value, balance
    from private.gateway_lease(p_user, 'openai', p_lease, p_model, p_input, p_output, p_choices, p_calls,
                               p_have_tokens => p_have, p_ahead => p_ahead, p_check_limits => p_check_limits,
                               p_hold_seconds => p_hold_seconds)
$$;

-- gateway_settle of a call admitted under a lease (the usage record the gateway sends).
create function tests.settle(p_request text, p_user uuid, p_input bigint, p_cached bigint, p_output bigint,
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

-- A usage record as the gateway sends it to gateway_settle_batch.
create function tests.rec(p_request text, p_user uuid, p_input bigint, p_output bigint, p_lease text,
                          p_status text default 'ok')
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'request_id', p_request, 'user_id', p_user, 'provider', 'openai', 'model', 'pgtap031-model',
    'input_tokens', p_input, 'cached_input_tokens', 0, 'output_tokens', p_output, 'status', p_status,
    'http_status', 200, 'latency_ms', 100, 'upstream_request_id', null, 'tokens_estimated', false,
    'lease_id', p_lease, 'admitted_at', now())
$$;

create function tests.balance(p_user uuid) returns bigint
language sql stable as $$ select balance from public.token_balances where user_id = p_user $$;
create function tests.held(p_user uuid) returns bigint
language sql stable as $$ select held from public.token_balances where user_id = p_user $$;
create function tests.lease_amount(p_lease text) returns bigint
language sql stable as $$ select amount from private.token_holds where request_id = p_lease $$;

-- The end of the current fixed window of p_seconds (windows are aligned to the epoch).
create function tests.window_end(p_seconds integer) returns timestamptz
language sql volatile
as $$ select to_timestamp((floor(extract(epoch from clock_timestamp()) / p_seconds) + 1) * p_seconds) $$;

-- The limiter windows are whole minutes (and hours): start well inside one, this file takes far less than 10 s.
select pg_sleep(case when extract(second from clock_timestamp()) > 50 then 61 - extract(second from clock_timestamp())
                     else 0 end);

-- ============================================================================ rate_limit_take
select 'pgtap031:take:' || extensions.gen_random_uuid() as k_take \gset
select 'pgtap031:take:' || extensions.gen_random_uuid() as k_zero \gset

select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 2, 4)', :'k_take'),
  $$values (4, 4, 6)$$, 'A take that fits is granted all it wants (need 2, want 4 of 10: granted 4)');
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 2, 8)', :'k_take'),
  $$values (6, 10, 0)$$, 'A take wanting more than is left is granted what is left (least(8, 10 - 4) = 6)');
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 1, 3)', :'k_take'),
  $$values (0, 11, 0)$$, 'A take whose need does not fit is refused (granted 0), and the refused need counts');
select is((select hits from private.rate_limit_buckets where key = :'k_take'), 11,
  'The bucket keeps the refused hit (11 of 10)');
select is((select reset_at from private.rate_limit_take(:'k_take', 10, 3600, 0, 1)), tests.window_end(3600),
  'reset_at is the end of the current fixed window');

select results_eq(format('select granted, hits from private.rate_limit_take(%L, 10, 3600, 3, 3)', :'k_zero'),
  $$values (3, 3)$$, 'A take of exactly its need is granted it');
select results_eq(format('select granted, hits from private.rate_limit_take(%L, 10, 3600, 0, 20)', :'k_zero'),
  $$values (7, 10)$$, 'Need 0 is never refused: it is granted what is left (7)');
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 0, 5)', :'k_zero'),
  $$values (0, 10, 0)$$, 'Need 0 with nothing left is granted 0, without an error and without counting');

update private.rate_limit_buckets set window_start = window_start - interval '1 hour' where key = :'k_take';
select results_eq(format('select granted, hits, remaining from private.rate_limit_take(%L, 10, 3600, 10, 10)', :'k_take'),
  $$values (10, 10, 0)$$, 'A bucket of a previous window reads as empty (all 10 granted again)');

select throws_ok($$select * from private.rate_limit_take('pgtap031:take:bad', 10, 60, 3, 2)$$, '22023', null,
  'want < need is refused (22023)');
select throws_ok($$select * from private.rate_limit_take('pgtap031:take:bad', 10, 60, -1, 2)$$, '22023', null,
  'A negative need is refused (22023)');

-- ============================================================================ gateway_lease outcomes
select tests.lease_user('olga', 'pgtap031_roomy', 100000) as olga \gset
select tests.lease_user('pete', 'pgtap031_roomy', :h10 - 1) as pete \gset
select tests.lease_user('rita', 'pgtap031_rpm', 1000000) as rita \gset
select tests.lease_user('tara', 'pgtap031_tpm', 1000000) as tara \gset

-- unauthorized
select results_eq(
  format($$select outcome, message, granted_tokens from tests.lease(%L, 'pgtap031:lease:unknown', 10, 0)$$,
         extensions.gen_random_uuid()),
  $$values ('unauthorized', 'Unknown user', 0::bigint)$$,
  'A lease for an unknown user is unauthorized');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:unknown'$$,
  'An unauthorized lease holds nothing');

-- forbidden, and no model check without a model
select results_eq(
  format($$select outcome, message from tests.lease(%L, 'pgtap031:lease:olga-other', 10, 0,
           p_model => 'pgtap031-other')$$, :'olga'),
  $$values ('forbidden', 'Model pgtap031-other is not available on the pgtap031 Roomy plan')$$,
  'A model outside the plan''s allowed_models is forbidden');
select is(tests.held(:'olga'), 0::bigint, 'A forbidden lease holds nothing');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:olga-any', 10, 0, p_model => null)$$,
         :'olga'),
  $$values ('unpriced', 0::bigint)$$,
  'Without a model (p_model null) the allowed_models check is skipped, but there is no price to bill it: unpriced');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:olga-any'$$,
  'A lease without a model holds nothing');

-- rate_limited: requests per minute (a plan of 2 a minute, and a first lease asking for 4 calls)
select results_eq(
  format($$select outcome, granted_requests, granted_rate_tokens, granted_tokens
             from tests.lease(%L, 'pgtap031:lease:rita', 10, 0, p_calls => 4, p_check_limits => true)$$, :'rita'),
  format($$values ('ok', 2, 220::bigint, %s::bigint)$$, 2 * :h10),
  'Limits leaving only 2 requests: p_calls 4 is granted 2 requests, 2 calls of tokens per minute and 2 holds of budget');
select results_eq(
  format($$select outcome, message, limit_value, granted_tokens
             from tests.lease(%L, 'pgtap031:lease:rita', 10, 0, p_check_limits => true)$$, :'rita'),
  $$values ('rate_limited', 'Requests-per-minute limit reached', 2, 0::bigint)$$,
  'With no request left in the minute the lease is rate_limited, with the plan''s requests per minute');
select is(tests.held(:'rita'), (2 * :h10)::bigint, 'A rate_limited lease holds nothing more');

-- rate_limited: tokens per minute (1000 a minute; a call counts 100 + 500 tokens)
select results_eq(
  format($$select outcome, granted_rate_tokens, granted_tokens from tests.lease(%L, 'pgtap031:lease:tara', 100, 0,
           p_check_limits => true)$$, :'tara'),
  format($$values ('ok', 600::bigint, %s::bigint)$$, :h_tara),
  'A call of 600 tokens fits a window of 1000 tokens a minute (and holds its cost in platform tokens)');
select results_eq(
  format($$select outcome, message, limit_value from tests.lease(%L, 'pgtap031:lease:tara', 100, 0,
           p_check_limits => true)$$, :'tara'),
  $$values ('rate_limited', 'Tokens-per-minute limit reached', 1000)$$,
  'A second call of 600 does not fit the 400 left: rate_limited with the plan''s tokens per minute');
select is(tests.held(:'tara'), :h_tara::bigint, 'The refused call holds nothing');

-- payment_required
select results_eq(
  format($$select outcome, message, granted_tokens from tests.lease(%L, 'pgtap031:lease:pete', 10, 0)$$, :'pete'),
  format($$values ('payment_required', 'Token balance too low for this call: %s available, up to %s needed',
                   0::bigint)$$, :h10 - 1, :h10),
  'A balance one token short of the call''s hold cannot cover it: payment_required, naming available and needed');
select is(tests.held(:'pete'), 0::bigint, 'A payment_required lease holds nothing');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:pete'$$,
  'A payment_required lease places no hold row');

-- ============================================================================ gateway_lease sizing
select tests.lease_user('sam', 'pgtap031_roomy', 1000000) as sam \gset
select tests.lease_user('quinn', 'pgtap031_roomy', 20 * :h100) as quinn \gset
select tests.lease_user('vera', 'pgtap031_roomy', 10 * :h100) as vera \gset
select tests.lease_user('una', 'pgtap031_roomy', 3 * :h100) as una \gset
select tests.lease_user('zoe', 'pgtap031_roomy') as zoe \gset
select tests.lease_user('rob', 'pgtap031_roomy', 1000000) as rob \gset

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

select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-3', 10, 0, p_calls => 3)),
  (3 * :h10)::bigint, 'p_calls 3 with a large balance holds three calls'' worth');
select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-have', 10, 0, p_have => :h10 / 2)),
  (:h10 - :h10 / 2)::bigint, 'p_have_tokens of half a call leaves the other half of the call''s hold to hold');
select is(tests.held(:'sam'), (:h_sam + 3 * :h10 + :h10 - :h10 / 2)::bigint, 'held is the sum of the user''s leases');

-- Topping the same lease up: one row, amounts summed, the expiry pushed later.
select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-top', 10, 0, p_hold_seconds => 60)),
  :h10::bigint, 'A lease of one call held for 60 seconds');
select is((select expires_at from private.token_holds where request_id = 'pgtap031:lease:sam-top'),
  now() + interval '60 seconds', 'A lease expires p_hold_seconds after it was taken');
select is((select granted_tokens from tests.lease(:'sam', 'pgtap031:lease:sam-top', 10, 0, p_calls => 2)),
  (2 * :h10)::bigint, 'Topped up with two more calls under the same lease id');
select results_eq(
  $$select count(*)::int, sum(amount), max(expires_at) from private.token_holds where request_id = 'pgtap031:lease:sam-top'$$,
  format($$values (1, %s::numeric, now() + interval '900 seconds')$$, 3 * :h10),
  'A second lease under the same id adds to the same row (1 + 2 calls) and pushes its expiry later');

-- At most a quarter of the unreserved balance beyond the call, and beyond the call whole calls only.
select results_eq(
  format($$select outcome, granted_tokens, balance from tests.lease(%L, 'pgtap031:lease:quinn', 100, 0, p_calls => 10)$$,
         :'quinn'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, 5 * :h100, 15 * :h100),
  'Ten calls with twenty calls'' worth unreserved: only a quarter of it is held (5 calls), 15 left');
select results_eq(
  format($$select outcome, granted_tokens, balance from tests.lease(%L, 'pgtap031:lease:vera', 100, 0, p_calls => 5)$$,
         :'vera'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, 2 * :h100, 8 * :h100),
  'Five calls with ten calls'' worth unreserved: the quarter (2.5 calls) is rounded down to whole calls (2)');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:una', 100, 0, p_calls => 5)$$, :'una'),
  format($$values ('ok', %s::bigint)$$, :h100),
  'With three calls'' worth unreserved the call itself is held although it is more than a quarter (0.75 calls)');

-- p_ahead: never refused.
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:zoe', 10, 0, p_calls => 4,
           p_ahead => true)$$, :'zoe'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead with no balance at all is ok, granting nothing');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:zoe'$$,
  'A lease granted nothing places no hold row');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:pete-ahead', 10, 0, p_ahead => true)$$,
         :'pete'),
  $$values ('ok', 0::bigint)$$,
  'p_ahead with one token less than the call''s hold unreserved is ok, granting nothing (no whole call fits)');
select results_eq(
  format($$select outcome, granted_tokens from tests.lease(%L, 'pgtap031:lease:olga-ahead', 10, 0, p_calls => 1000,
           p_ahead => true)$$, :'olga'),
  format($$values ('ok', %s::bigint)$$, 100000 / 4 / :h10 * :h10),
  'p_ahead needs nothing for the call: whole calls within a quarter of the unreserved 100000');

-- The limits, for four calls on a roomy plan.
select results_eq(
  format($$select outcome, granted_requests, granted_rate_tokens, granted_tokens, requests_remaining,
                  rate_tokens_remaining
             from tests.lease(%L, 'pgtap031:lease:rob', 10, 0, p_calls => 4, p_check_limits => true)$$, :'rob'),
  format($$values ('ok', 4, 440::bigint, %s::bigint, 96, 999560)$$, 4 * :h10),
  'p_calls 4 with the limits: 4 requests, 4 calls of tokens per minute (4 x 110) and 4 holds of budget');
select results_eq(
  format($$select key, hits from private.rate_limit_buckets where key in (%L, %L) order by key$$,
         'gw:rpm:' || :'rob', 'gw:tpm:' || :'rob'),
  format($$values (%L, 4), (%L, 440)$$, 'gw:rpm:' || :'rob', 'gw:tpm:' || :'rob'),
  'The requests and tokens buckets count the 4 requests and 440 tokens taken');

-- ============================================================================ gateway_settle under a lease
-- What the calls below cost, in platform tokens, at the price in force when each was admitted.
select ceil((60 * 1000000::numeric + 40 * 500000::numeric + 50 * 2000000::numeric) / :rate)::bigint as c_lena1,
       ceil((100 * 3000000::numeric + 100 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_lena2,
       ceil((1000 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_lena3,
       ceil((400 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_gus \gset
select tests.lease_user('lena', 'pgtap031_roomy', 40 * :h100) as lena \gset
-- gus has one and a half calls (of input 700) worth.
select tests.lease_user('gus', 'pgtap031_roomy', 3 * :h700 / 2) as gus \gset

select is((select granted_tokens from tests.lease(:'lena', 'pgtap031:lease:lena', 100, 0, p_calls => 4)),
  (4 * :h100)::bigint, 'lena leases four calls of input 100');

-- Call 1, admitted before the price change: 60 uncached at $1/M + 40 cached at $0.50/M + 50 output at $2/M = 180.
select results_eq(
  format($$select input_tokens + output_tokens, debited_tokens, pricing_id, cost_micro_usd
             from tests.settle('pgtap031:lena:1', %L, 100, 40, 50, 'pgtap031:lease:lena',
                               %L::timestamptz - interval '1 minute')$$, :'lena', :'t_change'),
  format($$values (150::bigint, %s::bigint, %s::bigint, 180::bigint)$$, :c_lena1, :'price_old'),
  'A call admitted before the price change is priced at the old price in force at admitted_at');
select is(tests.lease_amount('pgtap031:lease:lena'), (4 * :h100 - :c_lena1)::bigint,
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
             from tests.settle('pgtap031:lena:2', %L, 200, 100, 100, 'pgtap031:lease:lena',
                               %L::timestamptz + interval '1 minute')$$, :'lena', :'t_change'),
  format($$values (%s::bigint, 1200::bigint, %s::bigint)$$, :'price_new', :c_lena2),
  'A call admitted after the price change is priced at the new price');
select is(tests.lease_amount('pgtap031:lease:lena'), (4 * :h100 - :c_lena1 - :c_lena2)::bigint,
  'The lease has what the two calls did not cost left');

select id as lena2_id from public.token_usage where request_id = 'pgtap031:lena:2' \gset
select is((tests.settle('pgtap031:lena:2', :'lena', 9999, 0, 9999, 'pgtap031:lease:lena')).id, :'lena2_id'::bigint,
  'Settling the same request again returns the existing usage row');
select results_eq(
  format($$select tests.lease_amount('pgtap031:lease:lena'), tests.held(%1$L), tests.balance(%1$L)$$, :'lena'),
  format($$values (%1$s::bigint, %1$s::bigint, %2$s::bigint)$$, 4 * :h100 - :c_lena1 - :c_lena2,
         40 * :h100 - :c_lena1 - :c_lena2),
  'A repeated settlement changes neither the lease, nor held, nor the balance');

select is((tests.settle('pgtap031:lena:3', :'lena', 1000, 0, 100, 'pgtap031:lease:lena')).debited_tokens,
  :c_lena3::bigint, 'A call costing more than is left of the lease is debited its full cost');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:lena'$$,
  'A lease used up is deleted');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'lena'),
  format($$values (0::bigint, %s::bigint)$$, 40 * :h100 - :c_lena1 - :c_lena2 - :c_lena3),
  'Nothing is held once the lease is used up, and the balance paid all three calls in full');

-- A lease already gone (closed or expired): the call still debits its full cost, even into another hold's tokens.
select is((select granted_tokens from tests.lease(:'gus', 'pgtap031:lease:gus', 700, 0)), :h700::bigint,
  'gus holds a call of input 700 of his one and a half under another lease');
select results_eq(
  format($$select input_tokens + output_tokens, debited_tokens
             from tests.settle('pgtap031:gus:1', %L, 400, 0, 100, 'pgtap031:lease:gus-gone')$$, :'gus'),
  format($$values (500::bigint, %s::bigint)$$, :c_gus),
  'A call under a lease that is gone is debited its full cost, more than is not held');
select results_eq(
  format($$select tests.balance(%1$L), tests.held(%1$L), tests.lease_amount('pgtap031:lease:gus')$$, :'gus'),
  format($$values (%s::bigint, %2$s::bigint, %2$s::bigint)$$, 3 * :h700 / 2 - :c_gus, :h700),
  'The balance falls below what the other lease holds; the other lease is untouched');
select results_eq(
  $$select delta, balance_after, metadata ? 'shortfall' from public.token_transactions
     where reference = 'usage:pgtap031:gus:1'$$,
  format($$values (%s::bigint, %s::bigint, false)$$, -:c_gus, 3 * :h700 / 2 - :c_gus),
  'The ledger row debits the full cost: there is no shortfall any more');

-- ============================================================================ gateway_settle_batch
select tests.lease_user('bea', 'pgtap031_roomy', 100000) as bea \gset
select tests.lease_user('cid', 'pgtap031_roomy', 100000) as cid \gset
select tests.lease_user('dora', 'pgtap031_roomy', 100000) as dora \gset

select results_eq(
  format($$select (select granted_tokens from tests.lease(%L, 'pgtap031:lease:bea', 100, 0, p_calls => 4)),
                  (select granted_tokens from tests.lease(%L, 'pgtap031:lease:cid', 100, 0, p_calls => 4)),
                  (select granted_tokens from tests.lease(%L, 'pgtap031:lease:dora', 100, 0, p_calls => 5))$$,
         :'bea', :'cid', :'dora'),
  format($$values (%1$s::bigint, %1$s::bigint, %2$s::bigint)$$, 4 * :h100, 5 * :h100),
  'bea and cid lease four calls of input 100, dora five');
select is((select outcome from private.gateway_admit(:'bea', 'openai', 'pgtap031-model', 'pgtap031:bea:solo', 10, 0,
  false)), 'ok', 'bea also has a call admitted on its own (gateway_admit)');
select is(tests.held(:'bea'), (4 * :h100 + :h10)::bigint, 'bea holds her lease and a call admitted on its own');

-- What the batches' calls cost (all admitted now, at the new price).
select ceil((100 * 3000000::numeric + 50 * 6000000::numeric) / :rate)::bigint as c_100_50,
       ceil((80 * 3000000::numeric + 20 * 6000000::numeric) / :rate)::bigint as c_80_20,
       ceil((300 * 3000000::numeric + 100 * 6000000::numeric) / :rate)::bigint as c_300_100,
       ceil((60 * 3000000::numeric + 40 * 6000000::numeric) / :rate)::bigint as c_60_40,
       ceil((30 * 3000000::numeric + 20 * 6000000::numeric) / :rate)::bigint as c_30_20,
       ceil((10 * 3000000::numeric + 10 * 6000000::numeric) / :rate)::bigint as c_10_10,
       ceil((40 * 3000000::numeric + 30 * 6000000::numeric) / :rate)::bigint as c_40_30,
       ceil((100 * 1000000::numeric + 50 * 2000000::numeric) / :rate)::bigint as c_100_50_old \gset

-- Everything settles: two users' calls, and bea's lease closed in the same batch.
create table tests.batch1 as
select * from private.gateway_settle_batch(
  jsonb_build_array(tests.rec('pgtap031:batch1:bea-1', :'bea', 100, 50, 'pgtap031:lease:bea'),
                    tests.rec('pgtap031:batch1:cid-1', :'cid', 300, 100, 'pgtap031:lease:cid'),
                    tests.rec('pgtap031:batch1:bea-2', :'bea', 80, 20, 'pgtap031:lease:bea')),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:bea', 'user_id', :'bea')));
select bag_eq('select request_id, error, cost_tokens, balance from tests.batch1',
  format($$values ('pgtap031:batch1:bea-1', null::text, %1$s::bigint, %3$s::bigint),
                  ('pgtap031:batch1:bea-2', null, %2$s, %3$s), ('pgtap031:batch1:cid-1', null, %4$s, %5$s),
                  ('pgtap031:lease:bea', null, null, null)$$,
         :c_100_50, :c_80_20, 100000 - :c_100_50 - :c_80_20, :c_300_100, 100000 - :c_300_100),
  'The batch returns one row per record and per closed lease, all without error, each call with its cost and its user''s balance after the batch');
select is((select count(*)::int from public.token_usage where request_id like 'pgtap031:batch1:%'), 3,
  'All three records of the batch are settled');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:bea'$$,
  'The closed lease''s row is gone');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'bea'),
  format($$values (%s::bigint, %s::bigint)$$, :h10, 100000 - :c_100_50 - :c_80_20),
  'bea''s held is back to what her other hold keeps; she is debited what her two calls cost');
select results_eq(format($$select tests.lease_amount('pgtap031:lease:cid'), tests.held(%1$L), tests.balance(%1$L)$$, :'cid'),
  format($$values (%1$s::bigint, %1$s::bigint, %2$s::bigint)$$, 4 * :h100 - :c_300_100, 100000 - :c_300_100),
  'What cid''s call cost came off his lease, which stays open');

-- One record fails (an unknown user) and one is refused by token_usage's status check: the others settle.
select extensions.gen_random_uuid() as nobody \gset
create table tests.batch2 as
select * from private.gateway_settle_batch(
  jsonb_build_array(tests.rec('pgtap031:batch2:dora-1', :'dora', 60, 40, 'pgtap031:lease:dora'),
                    tests.rec('pgtap031:batch2:dora-2', :'dora', 30, 20, 'pgtap031:lease:dora', 'exploded'),
                    tests.rec('pgtap031:batch2:nobody', :'nobody', 5, 5, null),
                    tests.rec('pgtap031:batch2:cid-2', :'cid', 30, 20, 'pgtap031:lease:cid')),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:dora', 'user_id', :'dora')));
select bag_eq('select request_id, split_part(error, '':'', 1) from tests.batch2',
  $$values ('pgtap031:batch2:dora-1', null::text), ('pgtap031:batch2:dora-2', '23514'),
           ('pgtap031:batch2:nobody', 'PB404'), ('pgtap031:batch2:cid-2', null), ('pgtap031:lease:dora', null)$$,
  'A failing batch returns each record''s error (23514 status check, PB404 unknown user) and null for the rest');
select results_eq(
  $$select request_id from public.token_usage where request_id like 'pgtap031:batch2:%' order by request_id collate "C"$$,
  $$values ('pgtap031:batch2:cid-2'), ('pgtap031:batch2:dora-1')$$,
  'The records that can settle are settled despite the failing ones');
select results_eq(
  $$select request_id, split_part(last_error, ':', 1), applied_at is null from private.usage_outbox
     where request_id like 'pgtap031:batch2:%' order by request_id collate "C"$$,
  $$values ('pgtap031:batch2:dora-2', '23514', true), ('pgtap031:batch2:nobody', 'PB404', true)$$,
  'The failing records are parked in the usage outbox with their errors');
-- A user's calls settle before the leases they were admitted under are given back, also call by call.
select results_eq(
  $$select tests.lease_amount('pgtap031:lease:dora'), tests.lease_amount('pgtap031:batch2:dora-2')$$,
  format($$values (null::bigint, %s::bigint)$$, :c_30_20),
  'What the parked record cost stays held under its own request id; the closed lease is gone');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'dora'),
  format($$values (%s::bigint, %s::bigint)$$, :c_30_20, 100000 - :c_60_40),
  'Everything else of dora''s lease is given back (held: the parked record''s cost); her settled call is debited');
select results_eq(format($$select tests.lease_amount('pgtap031:lease:cid'), tests.held(%L)$$, :'cid'),
  format($$values (%1$s::bigint, %1$s::bigint)$$, 4 * :h100 - :c_300_100 - :c_30_20),
  'cid''s call in the failing batch came off his lease as usual');

-- The outbox settles the parked record once it can succeed: the kept tokens pay for it, the lease is gone.
update private.usage_outbox set payload = payload || '{"status": "ok"}' where request_id = 'pgtap031:batch2:dora-2';
select ok(private.process_usage_outbox() >= 1, 'process_usage_outbox applies the repaired record');
select results_eq(
  $$select status, input_tokens + output_tokens, debited_tokens from public.token_usage
     where request_id = 'pgtap031:batch2:dora-2'$$,
  format($$values ('ok', 50::bigint, %s::bigint)$$, :c_30_20),
  'The parked record is settled and debited in full');
select is_empty($$select 1 from private.token_holds where request_id = 'pgtap031:lease:dora'$$,
  'The lease kept for the parked record is gone once it is settled');
select results_eq(format($$select tests.held(%1$L), tests.balance(%1$L)$$, :'dora'),
  format($$values (0::bigint, %s::bigint)$$, 100000 - :c_60_40 - :c_30_20),
  'dora holds nothing any more and paid for both of her calls');

-- ============================================================================ gateway_admit
select tests.lease_user('adam', 'pgtap031_roomy', 100000) as adam \gset
select results_eq(
  format($$select outcome, hold_tokens, pricing_id from private.gateway_admit(%L, 'openai', 'pgtap031-model',
           'pgtap031:adam:1', 10, 0, false)$$, :'adam'),
  format($$values ('ok', %s::bigint, %s::bigint)$$, :h10, :'price_new'),
  'gateway_admit admits one call with the price in force');
select results_eq(
  $$select amount, pricing_id from private.token_holds where request_id = 'pgtap031:adam:1'$$,
  format($$values (%s::bigint, %s::bigint)$$, :h10, :'price_new'),
  'gateway_admit''s hold is exactly the call''s and keeps the price in force');

select throws_ok(
  format($$select * from private.gateway_admit(%L, 'openai', 'pgtap031-model', 'pgtap031:adam:1', 10, 0, false)$$,
         :'adam'),
  '23505', null, 'Admitting the same request id again is refused');
select is(tests.held(:'adam'), :h10::bigint, 'and holds nothing more');

-- ============================================================================ found in review
-- A lease id that is another user's hold is refused, and nothing is held for it.
select throws_ok(
  format($$select * from tests.lease(%L, 'pgtap031:adam:1', 10, 0)$$, :'bea'),
  'PB409', null, 'A lease under another user''s hold id is refused');
select is(tests.held(:'bea'), :h10::bigint, 'and the refused lease changed nothing of the caller''s held');

-- A parked record whose token counts are not whole numbers does not abort its batch.
create table tests.batch3 as
select * from private.gateway_settle_batch(
  jsonb_build_array(tests.rec('pgtap031:batch3:cid-1', :'cid', 10, 10, 'pgtap031:lease:cid'),
                    tests.rec('pgtap031:batch3:cid-2', :'cid', 10, 10, 'pgtap031:lease:cid') || '{"input_tokens": 1.5}'),
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:cid', 'user_id', :'cid')));
select bag_eq('select request_id, split_part(error, '':'', 1) from tests.batch3',
  $$values ('pgtap031:batch3:cid-1', null::text), ('pgtap031:batch3:cid-2', '22P02'), ('pgtap031:lease:cid', null)$$,
  'A record with a fractional token count is parked; the rest of its batch settles');
select results_eq(
  format($$select tests.lease_amount('pgtap031:lease:cid'), tests.lease_amount('pgtap031:batch3:cid-2'),
                  tests.held(%L)$$, :'cid'),
  format($$values (null::bigint, %1$s::bigint, %1$s::bigint)$$, 4 * :h100 - :c_300_100 - :c_30_20 - :c_10_10),
  'A record whose counts cannot be read keeps all that is left of its lease held for it (its cost is unknown)');

-- A lease given back in a later batch than a parked record of it still leaves what that record used held.
select tests.lease_user('eve', 'pgtap031_roomy', 100000) as eve \gset
select is((select granted_tokens from tests.lease(:'eve', 'pgtap031:lease:eve', 100, 0, p_calls => 3)),
  (3 * :h100)::bigint, 'eve leases three calls of input 100');
create table tests.batch4 as
select * from private.gateway_settle_batch(
  jsonb_build_array(tests.rec('pgtap031:batch4:eve-1', :'eve', 40, 30, 'pgtap031:lease:eve', 'exploded')));
create table tests.batch5 as
select * from private.gateway_settle_batch('[]',
  jsonb_build_array(jsonb_build_object('lease_id', 'pgtap031:lease:eve', 'user_id', :'eve')));
select results_eq(
  format($$select tests.lease_amount('pgtap031:lease:eve'), tests.lease_amount('pgtap031:batch4:eve-1'),
                  tests.held(%L)$$, :'eve'),
  format($$values (null::bigint, %1$s::bigint, %1$s::bigint)$$, :c_40_30),
  'The lease went back in the later batch, all but the parked record''s cost, held under its own id');
update private.usage_outbox set payload = payload || '{"status": "ok"}' where request_id = 'pgtap031:batch4:eve-1';
select private.process_usage_outbox();
select results_eq(
  format($$select (select debited_tokens from public.token_usage where request_id = 'pgtap031:batch4:eve-1'),
                  tests.held(%1$L), tests.balance(%1$L)$$, :'eve'),
  format($$values (%s::bigint, 0::bigint, %s::bigint)$$, :c_40_30, 100000 - :c_40_30),
  'The outbox settles it in full from that hold, and nothing stays held');
select results_eq(
  format($$select dead_at is not null, split_part(dead_reason, ':', 1), applied_at is null, tests.held(%L)
             from private.usage_outbox where request_id = 'pgtap031:batch3:cid-2'$$, :'cid'),
  $$values (true, '22P02', true, 0::bigint)$$,
  'The same run dead-letters the unreadable record at once and gives back what it kept held');

-- ============================================================================ batches settled as a set
-- A batch whose user cannot pay for all of it is settled as a set all the same: every call in full, below zero.
select tests.lease_user('fay', 'pgtap031_roomy', 3 * :c_60_40 / 2) as fay \gset
create table tests.batch6 as
select * from private.gateway_settle_batch(
  jsonb_build_array(tests.rec('pgtap031:batch6:fay-1', :'fay', 60, 40, 'pgtap031:lease:fay-none'),
                    tests.rec('pgtap031:batch6:fay-2', :'fay', 60, 40, 'pgtap031:lease:fay-none')));
select results_eq(
  $$select t.request_id, t.debited_tokens, l.delta, l.balance_after
      from public.token_usage t join public.token_transactions l on l.reference = 'usage:' || t.request_id
     where t.request_id like 'pgtap031:batch6:%' order by t.request_id collate "C"$$,
  format($$values ('pgtap031:batch6:fay-1', %1$s::bigint, %2$s::bigint, %3$s::bigint),
                  ('pgtap031:batch6:fay-2', %1$s::bigint, %2$s::bigint, %4$s::bigint)$$,
         :c_60_40, -:c_60_40, 3 * :c_60_40 / 2 - :c_60_40, 3 * :c_60_40 / 2 - 2 * :c_60_40),
  'A user short of the whole batch is debited every call in full, the ledger going below zero on the second');
select results_eq(
  format($$select tests.balance(%1$L), (select sum(delta) from public.token_transactions where user_id = %1$L)$$,
         :'fay'),
  format($$values (%1$s::bigint, %1$s::numeric)$$, 3 * :c_60_40 / 2 - 2 * :c_60_40),
  'The balance is below zero by the overage, and equals the sum of the ledger');
select bag_eq('select request_id, error, cost_tokens, balance from tests.batch6',
  format($$values ('pgtap031:batch6:fay-1', null::text, %1$s::bigint, %2$s::bigint),
                  ('pgtap031:batch6:fay-2', null, %1$s, %2$s)$$, :c_60_40, 3 * :c_60_40 / 2 - 2 * :c_60_40),
  'The batch returns each call''s cost and the balance after the batch, below zero');

-- The usual batch: several users' calls under their leases, priced when admitted, an unpriced model alerted.
select tests.lease_user('gil', 'pgtap031_roomy', 100000) as gil \gset
select is((select granted_tokens from tests.lease(:'gil', 'pgtap031:lease:gil', 100, 0, p_calls => 3)),
  (3 * :h100)::bigint, 'gil leases three calls');
create table tests.batch7 as
select * from private.gateway_settle_batch(
  jsonb_build_array(
    tests.rec('pgtap031:batch7:gil-1', :'gil', 100, 50, 'pgtap031:lease:gil') || jsonb_build_object('admitted_at', :'t_change'::timestamptz - interval '1 minute'),
    tests.rec('pgtap031:batch7:gil-2', :'gil', 100, 50, 'pgtap031:lease:gil'),
    tests.rec('pgtap031:batch7:gil-3', :'gil', 10, 5, 'pgtap031:lease:gil') || '{"model": "pgtap031-unpriced-set"}'));
select results_eq(
  format($$select array_agg(t.pricing_id order by t.request_id collate "C"), tests.lease_amount('pgtap031:lease:gil'),
                  tests.held(%1$L), tests.balance(%1$L),
                  (select count(*)::int from private.admin_alerts where details ->> 'model' = 'pgtap031-unpriced-set')
             from public.token_usage t where t.request_id like 'pgtap031:batch7:%%'$$, :'gil'),
  format($$values (array[%s, %s, null]::bigint[], %s::bigint, %3$s::bigint, %s::bigint, 1)$$,
         :'price_old', :'price_new', 3 * :h100 - :c_100_50_old - :c_100_50 - 15,
         100000 - :c_100_50_old - :c_100_50 - 15),
  'Each call priced as when admitted (old, new, none: its 15 raw tokens), its cost off the lease and the balance, one operator alert');

-- A batch settled call by call (one of its records fails) reports, like one settled as a set, each call's user's
-- balance after the batch.
select tests.lease_user('hal', 'pgtap031_roomy', 100000) as hal \gset
create table tests.batch8 as
select * from private.gateway_settle_batch(
  jsonb_build_array(tests.rec('pgtap031:batch8:hal-1', :'hal', 100, 50, 'pgtap031:lease:hal-none'),
                    tests.rec('pgtap031:batch8:hal-2', :'hal', 100, 50, 'pgtap031:lease:hal-none'),
                    tests.rec('pgtap031:batch8:hal-3', :'hal', 100, 50, 'pgtap031:lease:hal-none', 'exploded')));
-- Call by call too, every settled record reports its user's balance after the whole batch.
select bag_eq('select request_id, split_part(error, '':'', 1), cost_tokens, balance from tests.batch8',
  format($$values ('pgtap031:batch8:hal-1', null::text, %1$s::bigint, %2$s::bigint),
                  ('pgtap031:batch8:hal-2', null, %1$s, %2$s), ('pgtap031:batch8:hal-3', '23514', null, null)$$,
         :c_100_50, 100000 - 2 * :c_100_50),
  'A batch settled call by call returns each call''s cost and its user''s balance after the whole batch');

select * from finish();
rollback;
