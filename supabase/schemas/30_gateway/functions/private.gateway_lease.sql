create or replace function private.gateway_lease(
  p_user_id uuid,
  p_provider text,
  p_lease_id text,
  p_model text,
  p_input_estimate bigint,
  p_requested_output integer,
  p_choices integer default 1,
  p_calls integer default 1,
  p_have_tokens bigint default 0,
  p_have_requests integer default 0,
  p_have_rate_tokens bigint default 0,
  p_ahead boolean default false,
  p_check_limits boolean default true,
  p_hold_seconds integer default 900,
  p_input_unbounded boolean default false,
  p_search_context_size text default null
) returns table (
  outcome text,
  message text,
  plan text,
  allowed_models text[],
  plan_max_output integer,
  plan_max_input integer,
  max_output_tokens integer,
  hold_tokens bigint,
  call_tokens bigint,
  requests_per_minute integer,
  tokens_per_minute integer,
  granted_tokens bigint,
  granted_requests integer,
  granted_rate_tokens bigint,
  requests_remaining integer,
  rate_tokens_remaining integer,
  limit_value integer,
  limit_reset_at timestamptz,
  balance bigint,
  total_balance bigint,
  pricing_id bigint,
  input_micro_usd_per_mtok bigint,
  cache_write_micro_usd_per_mtok bigint,
  output_micro_usd_per_mtok bigint,
  reasoning_micro_usd_per_mtok bigint,
  rate_micro_usd_per_mtok bigint,
  request_fee_micro_usd bigint
)
language plpgsql
set search_path = ''
as $$
declare
  v_plan public.subscription_plans;
  v_price public.model_pricing;
  v_rate public.platform_token_rates;
  v_calls integer := greatest(coalesce(p_calls, 1), 0);
  v_have bigint := greatest(coalesce(p_have_tokens, 0), 0);
  v_have_requests integer := greatest(coalesce(p_have_requests, 0), 0);
  v_have_rate bigint := greatest(coalesce(p_have_rate_tokens, 0), 0);
  v_input bigint;
  v_need bigint;
  v_want bigint;
  v_rate_hold bigint;
  v_need_n integer;
  v_want_n integer;
  v_take record;
  v_fit bigint;
  v_balance bigint;
  v_held bigint;
  v_month text := to_char(now() at time zone 'UTC', 'YYYY-MM');
begin
  -- Admission fails fast: a lock it cannot get within 2 s is an error (the gateway answers 503), never a hang.
  perform set_config('lock_timeout', '2s', true);
  granted_tokens := 0;
  granted_requests := 0;
  granted_rate_tokens := 0;

  -- The user row first (key share): deleting the user waits for this call instead of deadlocking with it.
  select p.* into v_plan from public.users u join public.subscription_plans p on p.id = u.plan
   where u.id = p_user_id for key share of u;
  if not found then
    outcome := 'unauthorized';
    message := 'Unknown user';
    return next;
    return;
  end if;
  plan := v_plan.id;
  allowed_models := v_plan.allowed_models;
  plan_max_output := v_plan.max_output_tokens;
  plan_max_input := v_plan.max_input_tokens;
  requests_per_minute := v_plan.requests_per_minute;
  tokens_per_minute := v_plan.tokens_per_minute;
  if cardinality(v_plan.allowed_models) > 0 and not p_model = any (v_plan.allowed_models) then
    outcome := 'forbidden';
    message := format('Model %s is not available on the %s plan', p_model, v_plan.name);
    return next;
    return;
  end if;

  -- The price and the rate in force: a call is billed by what it costs, so a model without a price is refused.
  v_price := private._price_in_force(p_provider, p_model, now());
  if v_price.id is null then
    outcome := 'unpriced';
    message := format('Model %s has no price here, so its calls cannot be billed', p_model);
    return next;
    return;
  end if;
  select * into v_rate from public.platform_token_rates t
   where t.effective_from <= now() and (t.effective_to is null or t.effective_to > now());
  if v_rate.id is null then
    raise exception 'no platform token rate is in force' using errcode = 'PB422';
  end if;
  pricing_id := v_price.id;
  input_micro_usd_per_mtok := v_price.input_micro_usd_per_mtok;
  cache_write_micro_usd_per_mtok := v_price.cache_write_micro_usd_per_mtok;
  output_micro_usd_per_mtok := v_price.output_micro_usd_per_mtok;
  reasoning_micro_usd_per_mtok := v_price.reasoning_micro_usd_per_mtok;
  rate_micro_usd_per_mtok := v_rate.micro_usd_per_mtok;
  select c.request_fee_micro_usd into request_fee_micro_usd
    from private._charge(p_provider, p_model, now(), 0, 0, 0, 0, 0, p_search_context_size) c;

  -- The call: its capped output, its tokens (what the tokens-per-minute limit counts) and its hold (what it can
  -- cost at most, in platform tokens). An input the gateway cannot measure counts as the plan's max input.
  max_output_tokens := least(coalesce(nullif(p_requested_output, 0), v_plan.max_output_tokens),
                             v_plan.max_output_tokens);
  v_input := case when p_input_unbounded then greatest(coalesce(p_input_estimate, 0), v_plan.max_input_tokens)
                  else greatest(coalesce(p_input_estimate, 0), 0) end;
  call_tokens := v_input + max_output_tokens::bigint * greatest(coalesce(p_choices, 1), 1);
  hold_tokens := private._hold_tokens(v_price, v_rate.micro_usd_per_mtok, v_input, max_output_tokens, p_choices,
                                      request_fee_micro_usd);

  if p_check_limits then
    -- Requests: one for this call unless the instance already has one; up to v_calls in all.
    v_need_n := case when p_ahead or v_have_requests >= 1 then 0 else 1 end;
    v_want_n := greatest(v_need_n, v_calls - v_have_requests);
    if v_want_n > 0 then
      select * into v_take
        from private.rate_limit_take('gw:rpm:' || p_user_id, v_plan.requests_per_minute, 60, v_need_n, v_want_n);
      granted_requests := v_take.granted;
      requests_remaining := v_take.remaining;
      limit_reset_at := v_take.reset_at;
      if v_need_n > 0 and v_take.granted = 0 then
        outcome := 'rate_limited';
        message := 'Requests-per-minute limit reached';
        limit_value := v_plan.requests_per_minute;
        return next;
        return;
      end if;
    end if;
    -- Tokens: each call counts its tokens (at most the whole window), for as many calls as the requests allow.
    v_rate_hold := least(call_tokens, v_plan.tokens_per_minute);
    v_need := case when p_ahead then 0 else greatest(v_rate_hold - v_have_rate, 0) end;
    v_want := greatest(v_need, v_rate_hold * (v_have_requests + granted_requests) - v_have_rate);
    if v_want > 0 then
      select * into v_take
        from private.rate_limit_take('gw:tpm:' || p_user_id, v_plan.tokens_per_minute, 60,
                                     v_need::integer, least(v_want, v_plan.tokens_per_minute)::integer);
      granted_rate_tokens := v_take.granted;
      rate_tokens_remaining := v_take.remaining;
      limit_reset_at := v_take.reset_at;
      if v_need > 0 and v_take.granted = 0 then
        outcome := 'rate_limited';
        message := 'Tokens-per-minute limit reached';
        limit_value := v_plan.tokens_per_minute;
        return next;
        return;
      end if;
    end if;
    -- No budget for calls the limits would refuse anyway.
    v_calls := least(v_calls, v_have_requests + granted_requests,
                     greatest((v_have_rate + granted_rate_tokens) / greatest(v_rate_hold, 1), 1)::integer);
  end if;

  -- The free plan's monthly allowance, topped up on first use in a month (never above the allowance; a debt is
  -- paid from it first).
  if v_plan.id = 'free' and not exists (
    select 1 from public.token_transactions where reference = 'free:' || p_user_id || ':' || v_month
  ) then
    select b.balance into v_balance from public.token_balances b where b.user_id = p_user_id for update;
    if v_plan.monthly_token_allowance > greatest(v_balance, 0) then
      perform private.update_user_token_balance(
        p_user_id, v_plan.monthly_token_allowance - greatest(v_balance, 0), 'subscription_allowance',
        'free:' || p_user_id || ':' || v_month, jsonb_build_object('plan', 'free', 'month', v_month));
    end if;
  end if;

  -- The budget: what this call lacks (refused when the unreserved balance cannot cover it, and always while the
  -- balance is not above zero), and up to v_calls calls' worth, but never more than a quarter of the unreserved
  -- balance beyond the need, so one instance's lease leaves room for the user's calls elsewhere. The balance
  -- row lock serializes this user's leases and settlements.
  v_need := case when p_ahead then 0 else greatest(hold_tokens - v_have, 0) end;
  v_want := greatest(v_need, hold_tokens * v_calls - v_have);
  select b.balance, b.held into v_balance, v_held from public.token_balances b where b.user_id = p_user_id for update;
  balance := v_balance - v_held;
  total_balance := v_balance;
  if v_balance <= 0 and not p_ahead then
    outcome := 'payment_required';
    message := format('Token balance exhausted (%s): add tokens to make calls', v_balance);
    return next;
    return;
  end if;
  if not p_ahead and v_need > balance then
    outcome := 'payment_required';
    message := format('Token balance too low for this call: %s available, up to %s needed', balance, v_need);
    return next;
    return;
  end if;
  v_fit := least(v_want, greatest(v_need, balance / 4), greatest(balance, 0));
  -- Beyond the need, whole calls only: a lease never keeps a remainder that fits no call.
  v_fit := v_need + greatest(v_fit - v_need, 0) / greatest(hold_tokens, 1) * greatest(hold_tokens, 1);
  if v_fit > 0 then
    update public.token_balances b set held = b.held + v_fit where b.user_id = p_user_id;
    balance := balance - v_fit;
    granted_tokens := v_fit;
  end if;
  -- The lease's hold outlives the calls it admits (p_hold_seconds from its last top-up).
  insert into private.token_holds as h (request_id, user_id, provider, model, amount, expires_at)
  select p_lease_id, p_user_id, p_provider, coalesce(p_model, '*'), v_fit,
         now() + make_interval(secs => greatest(coalesce(p_hold_seconds, 900), 60))
   where v_fit > 0
  on conflict (request_id) do update
    set amount = h.amount + excluded.amount, expires_at = greatest(h.expires_at, excluded.expires_at)
  where h.user_id = excluded.user_id;
  if v_fit > 0 and not found then
    raise exception 'hold % belongs to another user', p_lease_id using errcode = 'PB409';
  end if;
  if v_fit = 0 then
    update private.token_holds h
       set expires_at = greatest(h.expires_at, now() + make_interval(secs => greatest(coalesce(p_hold_seconds, 900), 60)))
     where h.request_id = p_lease_id and h.user_id = p_user_id;
  end if;

  outcome := 'ok';
  return next;
end;
$$;

comment on function private.gateway_lease(uuid, text, text, text, bigint, integer, integer, integer, bigint, integer,
  bigint, boolean, boolean, integer, boolean, text) is
  'Opens or tops up a function instance''s lease for one user: checks the user (unauthorized), the model '
  '(forbidden on the plan; unpriced without a price in force), takes the requests- and tokens-per-minute headroom '
  'of up to p_calls calls like this one when p_check_limits (rate_limited when not even this call fits), tops up '
  'the free allowance, and holds up to p_calls calls'' worth of platform tokens under p_lease_id '
  '(payment_required while the balance is <= 0 or the unreserved balance cannot cover this call; beyond the call, '
  'at most a quarter of it). A call''s hold is private._hold_tokens over its input estimate (the plan''s '
  'max_input_tokens when p_input_unbounded) and capped max output. Returns the plan''s limits, the model''s prices '
  'and the rate (so the instance can hold its next calls from memory), what was granted, the unreserved balance '
  'after it and the balance itself (at or below zero, an instance stops admitting from memory). p_have_*: what '
  'the instance already has; p_ahead: topping up before it is needed.';
