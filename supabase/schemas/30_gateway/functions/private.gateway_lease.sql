create or replace function private.gateway_lease(p_request private.lease_request) returns private.lease_grant
language plpgsql
set search_path = ''
as $$
declare
  r private.lease_request := p_request;
  g private.lease_grant;
  v_plan public.subscription_plans;
  v_price public.model_pricing;
  v_rate public.platform_token_rates;
  v_calls integer := greatest(coalesce(p_request.calls, 1), 0);
  v_have bigint := greatest(coalesce(p_request.have_tokens, 0), 0);
  v_have_requests integer := greatest(coalesce(p_request.have_requests, 0), 0);
  v_have_rate bigint := greatest(coalesce(p_request.have_rate_tokens, 0), 0);
  v_ahead boolean := coalesce(p_request.ahead, false);
  v_hold_seconds integer := greatest(coalesce(p_request.hold_seconds, 900), 60);
  v_input bigint;
  v_need bigint;
  v_want bigint;
  v_rate_hold bigint;
  v_need_n integer;
  v_want_n integer;
  v_take record;
  v_granted bigint;
  v_balance bigint;
  v_held bigint;
  v_month text := to_char(now() at time zone 'UTC', 'YYYY-MM');
begin
  -- Admission fails fast: a lock it cannot get within 2 s is an error (the gateway answers 503), never a hang.
  perform set_config('lock_timeout', '2s', true);
  g.granted_tokens := 0;
  g.granted_requests := 0;
  g.granted_rate_tokens := 0;

  -- The user row first (key share): deleting the user waits for this call instead of deadlocking with it.
  select p.* into v_plan from public.users u join public.subscription_plans p on p.id = u.plan
   where u.id = r.user_id for key share of u;
  if not found then
    g.outcome := 'unauthorized';
    g.message := 'Unknown user';
    return g;
  end if;
  g.plan := v_plan.id;
  g.plan_max_output := v_plan.max_output_tokens;
  g.plan_max_input := v_plan.max_input_tokens;
  g.requests_per_minute := v_plan.requests_per_minute;
  g.tokens_per_minute := v_plan.tokens_per_minute;
  if cardinality(v_plan.allowed_models) > 0 and not r.model = any (v_plan.allowed_models) then
    g.outcome := 'forbidden';
    g.message := format('Model %s is not available on the %s plan', r.model, v_plan.name);
    return g;
  end if;

  -- The price and the rate in force: a call is billed by what it costs, so a model without a price is refused.
  select * into v_price from private._price_at(r.provider, r.model, now());
  if v_price.id is null or not private._in_force(v_price.effective_from, v_price.effective_to, now()) then
    g.outcome := 'unpriced';
    g.message := format('Model %s has no price here, so its calls cannot be billed', r.model);
    return g;
  end if;
  select * into v_rate from private._rate_at(now());
  if v_rate.id is null or not private._in_force(v_rate.effective_from, v_rate.effective_to, now()) then
    raise exception 'no platform token rate is in force' using errcode = 'PB422';
  end if;
  g.pricing_id := v_price.id;
  g.input_micro_usd_per_mtok := v_price.input_micro_usd_per_mtok;
  g.cache_write_micro_usd_per_mtok := v_price.cache_write_micro_usd_per_mtok;
  g.output_micro_usd_per_mtok := v_price.output_micro_usd_per_mtok;
  g.reasoning_micro_usd_per_mtok := v_price.reasoning_micro_usd_per_mtok;
  g.rate_micro_usd_per_mtok := v_rate.micro_usd_per_mtok;
  g.request_fee_micro_usd := coalesce(
    (select f.micro_usd_per_request from private._request_fee_at(r.provider, r.model, r.search_context_size, now()) f),
    0);

  -- The call: its capped output, its tokens (what the tokens-per-minute limit counts) and its hold (what it can
  -- cost at most, in platform tokens). An input the gateway cannot measure counts as the plan's max input.
  g.max_output_tokens := private._max_output_tokens(r.requested_output, v_plan.max_output_tokens);
  v_input := case when coalesce(r.input_unbounded, false)
                  then greatest(coalesce(r.input_estimate, 0), v_plan.max_input_tokens)
                  else greatest(coalesce(r.input_estimate, 0), 0) end;
  g.call_tokens := v_input + g.max_output_tokens::bigint * greatest(coalesce(r.choices, 1), 1);
  g.hold_tokens := private._hold_tokens(v_price, v_rate.micro_usd_per_mtok, v_input, g.max_output_tokens,
                                        r.choices, g.request_fee_micro_usd);

  if coalesce(r.check_limits, true) then
    -- Requests: one for this call unless the instance already has one; up to v_calls in all.
    v_need_n := case when v_ahead or v_have_requests >= 1 then 0 else 1 end;
    v_want_n := greatest(v_need_n, v_calls - v_have_requests);
    if v_want_n > 0 then
      select * into v_take
        from private.rate_limit_take('gw:rpm:' || r.user_id, v_plan.requests_per_minute, 60, v_need_n, v_want_n);
      g.granted_requests := v_take.granted;
      g.requests_remaining := v_take.remaining;
      g.limit_reset_at := v_take.reset_at;
      if v_need_n > 0 and v_take.granted = 0 then
        g.outcome := 'rate_limited';
        g.message := 'Requests-per-minute limit reached';
        g.limit_value := v_plan.requests_per_minute;
        return g;
      end if;
    end if;
    -- Tokens: each call counts its tokens (at most the whole window), for as many calls as the requests allow.
    v_rate_hold := least(g.call_tokens, v_plan.tokens_per_minute);
    v_need := case when v_ahead then 0 else greatest(v_rate_hold - v_have_rate, 0) end;
    v_want := greatest(v_need, v_rate_hold * (v_have_requests + g.granted_requests) - v_have_rate);
    if v_want > 0 then
      select * into v_take
        from private.rate_limit_take('gw:tpm:' || r.user_id, v_plan.tokens_per_minute, 60,
                                     v_need::integer, least(v_want, v_plan.tokens_per_minute)::integer);
      g.granted_rate_tokens := v_take.granted;
      g.rate_tokens_remaining := v_take.remaining;
      g.limit_reset_at := v_take.reset_at;
      if v_need > 0 and v_take.granted = 0 then
        g.outcome := 'rate_limited';
        g.message := 'Tokens-per-minute limit reached';
        g.limit_value := v_plan.tokens_per_minute;
        return g;
      end if;
    end if;
    -- No budget for calls the limits would refuse anyway.
    v_calls := least(v_calls, v_have_requests + g.granted_requests,
                     greatest((v_have_rate + g.granted_rate_tokens) / greatest(v_rate_hold, 1), 1)::integer);
  end if;

  -- The free plan's monthly allowance, topped up on first use in a month (never above the allowance; a debt is
  -- paid from it first).
  if v_plan.id = 'free' and not exists (
    select 1 from public.token_transactions where reference = 'free:' || r.user_id || ':' || v_month
  ) then
    select b.balance into v_balance from public.token_balances b where b.user_id = r.user_id for update;
    if v_plan.monthly_token_allowance > greatest(v_balance, 0) then
      perform private.update_user_token_balance(
        r.user_id, v_plan.monthly_token_allowance - greatest(v_balance, 0), 'subscription_allowance',
        'free:' || r.user_id || ':' || v_month, jsonb_build_object('plan', 'free', 'month', v_month));
    end if;
  end if;

  -- The budget: what this call lacks (refused when the unreserved balance cannot cover it, and always while the
  -- balance is not above zero, unless the call holds nothing: a token count costs nothing), and up to v_calls
  -- calls' worth, but never more than a quarter of the unreserved balance beyond the need, so one instance's lease
  -- leaves room for the user's calls elsewhere. The balance row lock serializes this user's leases and
  -- settlements.
  v_need := case when v_ahead then 0 else greatest(g.hold_tokens - v_have, 0) end;
  v_want := greatest(v_need, g.hold_tokens * v_calls - v_have);
  select b.balance, b.held into v_balance, v_held from public.token_balances b where b.user_id = r.user_id for update;
  g.balance := v_balance - v_held;
  g.total_balance := v_balance;
  if v_balance <= 0 and not v_ahead and g.hold_tokens > 0 then
    g.outcome := 'payment_required';
    g.message := format('Token balance exhausted (%s): add tokens to make calls', v_balance);
    return g;
  end if;
  if not v_ahead and v_need > g.balance then
    g.outcome := 'payment_required';
    g.message := format('Token balance too low for this call: %s available, up to %s needed', g.balance, v_need);
    return g;
  end if;
  v_granted := least(v_want, greatest(v_need, g.balance / 4), greatest(g.balance, 0));
  -- Beyond the need, whole calls only: a lease never keeps a remainder that fits no call.
  v_granted := v_need + greatest(v_granted - v_need, 0) / greatest(g.hold_tokens, 1) * greatest(g.hold_tokens, 1);
  if v_granted > 0 then
    update public.token_balances b set held = b.held + v_granted where b.user_id = r.user_id;
    g.balance := g.balance - v_granted;
    g.granted_tokens := v_granted;
  end if;
  -- The lease's hold outlives the calls it admits (hold_seconds from its last top-up).
  insert into private.token_holds as h (request_id, user_id, provider, model, amount, expires_at)
  select r.lease_id, r.user_id, r.provider, coalesce(r.model, '*'), v_granted,
         now() + make_interval(secs => v_hold_seconds)
   where v_granted > 0
  on conflict (request_id) do update
    set amount = h.amount + excluded.amount, expires_at = greatest(h.expires_at, excluded.expires_at)
  where h.user_id = excluded.user_id;
  if v_granted > 0 and not found then
    raise exception 'hold % belongs to another user', r.lease_id using errcode = 'PB409';
  end if;
  if v_granted = 0 then
    update private.token_holds h
       set expires_at = greatest(h.expires_at, now() + make_interval(secs => v_hold_seconds))
     where h.request_id = r.lease_id and h.user_id = r.user_id;
  end if;

  g.outcome := 'ok';
  return g;
end;
$$;

comment on function private.gateway_lease(private.lease_request) is
  'Opens or tops up a function instance''s lease for one user (private.lease_request): checks the user '
  '(unauthorized), the model (forbidden on the plan; unpriced without a price in force), takes the requests- and '
  'tokens-per-minute headroom of up to `calls` calls like this one when check_limits (rate_limited when not even '
  'this call fits), tops up the free allowance, and holds up to `calls` calls'' worth of platform tokens under '
  'lease_id (payment_required while the balance is <= 0, unless the call holds nothing, or when the unreserved '
  'balance cannot cover this call; beyond the call, at most a quarter of it). A call''s hold is '
  'private._hold_tokens over its input estimate (the plan''s max_input_tokens when input_unbounded) and its output '
  'cap (private._max_output_tokens). Answers a private.lease_grant. The plan''s allowed models are decided here '
  'only: an instance admits from memory only models a lease answered ok for.';
