-- Budget leases for the LLM gateway: a function instance reserves tokens for several calls of one user at
-- once (and, when Postgres counts the limits, their requests- and tokens-per-minute headroom too), then
-- admits the next calls of that user from memory, without a round trip. The reservation is an ordinary hold
-- (private.token_holds, counted in token_balances.held) under the lease's id, so what one instance leases no
-- other can spend, a balance still never goes below zero, and a lease left by an instance that died is
-- released by the same sweep as any hold.
--   private.rate_limit_take(...)   takes up to N hits of a fixed window at once (at least the needed ones)
--   private.gateway_lease(...)     opens or tops up a lease: user, plan, model, limits, free allowance, hold
--   private.gateway_admit(...)     now a lease of exactly one call under the call's own request id
--   private.gateway_settle(...)    + p_lease_id, p_admitted_at: a call admitted under a lease takes what it used
--                                  off the lease, priced at the time it was admitted
--   private.gateway_settle_batch   + p_close_leases: settlements, then leases given back, in user order
--   private.enqueue_usage(...)     a parked call's usage moves out of its lease into a hold of its own

-- ---------------------------------------------------------------------------------------- rate windows
create function private.rate_limit_take(
  p_key text,
  p_limit integer,
  p_window_seconds integer,
  p_need integer,
  p_want integer
) returns table (granted integer, hits integer, remaining integer, reset_at timestamptz)
language plpgsql
set search_path = ''
as $$
declare
  v_window_start timestamptz;
  v_bucket_start timestamptz;
  v_hits integer;
begin
  if coalesce(p_limit < 1 or p_window_seconds < 1 or p_need < 0 or p_want < p_need or char_length(p_key) > 512,
              true) then
    raise exception 'rate_limit_take: key, limit and window are required; 0 <= need <= want' using errcode = '22023';
  end if;
  v_window_start := to_timestamp(floor(extract(epoch from clock_timestamp()) / p_window_seconds) * p_window_seconds);
  reset_at := v_window_start + make_interval(secs => p_window_seconds);

  -- A key seen for the first time gets a row of the previous window (read as empty) to lock; again if the
  -- cleanup job deleted it in between.
  loop
    insert into private.rate_limit_buckets (key, window_start, hits, expires_at)
    values (p_key, v_window_start - make_interval(secs => p_window_seconds), 1, v_window_start)
    on conflict (key) do nothing;
    select b.window_start, b.hits into v_bucket_start, v_hits from private.rate_limit_buckets b where b.key = p_key
       for update;
    exit when found;
  end loop;
  if v_bucket_start <> v_window_start then
    v_hits := 0;
  end if;

  if v_hits + p_need > p_limit then
    granted := 0;
    hits := v_hits + p_need; -- a refused take counts, as a refused hit does (and as Upstash's fixed window does)
  else
    granted := least(p_want, p_limit - v_hits);
    hits := v_hits + granted;
  end if;
  if hits > 0 then
    update private.rate_limit_buckets b
       set window_start = v_window_start, hits = rate_limit_take.hits, expires_at = rate_limit_take.reset_at
     where b.key = p_key;
  end if;
  remaining := greatest(p_limit - hits, 0);
  return next;
end;
$$;
comment on function private.rate_limit_take(text, integer, integer, integer, integer) is
  'Takes up to p_want hits of p_key''s current fixed window (the buckets of private.rate_limit_hit) at once, but '
  'only if at least p_need fit: granted is then between p_need and p_want, else 0 (and the p_need refused hits '
  'count). For leasing limiter headroom to a function instance.';

-- ------------------------------------------------------------------------------------------- leases
create function private.gateway_lease(
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
  p_hold_seconds integer default 900
) returns table (
  outcome text,
  message text,
  plan text,
  allowed_models text[],
  plan_max_output integer,
  max_output_tokens integer,
  hold_tokens bigint,
  requests_per_minute integer,
  tokens_per_minute integer,
  granted_tokens bigint,
  granted_requests integer,
  granted_rate_tokens bigint,
  requests_remaining integer,
  rate_tokens_remaining integer,
  limit_value integer,
  limit_reset_at timestamptz,
  balance bigint
)
language plpgsql
set search_path = ''
as $$
declare
  v_plan public.subscription_plans;
  v_calls integer := greatest(coalesce(p_calls, 1), 0);
  v_have bigint := greatest(coalesce(p_have_tokens, 0), 0);
  v_have_requests integer := greatest(coalesce(p_have_requests, 0), 0);
  v_have_rate bigint := greatest(coalesce(p_have_rate_tokens, 0), 0);
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
  requests_per_minute := v_plan.requests_per_minute;
  tokens_per_minute := v_plan.tokens_per_minute;
  if p_model is not null and cardinality(v_plan.allowed_models) > 0 and not p_model = any (v_plan.allowed_models) then
    outcome := 'forbidden';
    message := format('Model %s is not available on the %s plan', p_model, v_plan.name);
    return next;
    return;
  end if;

  -- The call: its capped output, and its hold (input estimate + max output × choices, every answer of a call
  -- asking for several may use the max output). A lease is sized in calls like this one.
  max_output_tokens := least(coalesce(nullif(p_requested_output, 0), v_plan.max_output_tokens),
                             v_plan.max_output_tokens);
  hold_tokens := greatest(coalesce(p_input_estimate, 0), 0) + max_output_tokens * greatest(coalesce(p_choices, 1), 1);

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
    -- Tokens: each call counts its hold (at most the whole window), for as many calls as the requests allow.
    v_rate_hold := least(hold_tokens, v_plan.tokens_per_minute);
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

  -- The free plan's monthly allowance, topped up on first use in a month (never above the allowance).
  if v_plan.id = 'free' and not exists (
    select 1 from public.token_transactions where reference = 'free:' || p_user_id || ':' || v_month
  ) then
    select b.balance into v_balance from public.token_balances b where b.user_id = p_user_id for update;
    if v_plan.monthly_token_allowance > v_balance then
      perform private.update_user_token_balance(
        p_user_id, v_plan.monthly_token_allowance - v_balance, 'subscription_allowance',
        'free:' || p_user_id || ':' || v_month, jsonb_build_object('plan', 'free', 'month', v_month));
    end if;
  end if;

  -- The budget: what this call lacks (refused when the unreserved balance cannot cover it), and up to v_calls
  -- calls' worth, but never more than a quarter of the unreserved balance beyond the need, so one instance's
  -- lease leaves room for the user's calls elsewhere. The balance row lock serializes this user's leases and
  -- settlements.
  v_need := case when p_ahead then 0 else greatest(hold_tokens - v_have, 0) end;
  v_want := greatest(v_need, hold_tokens * v_calls - v_have);
  select b.balance, b.held into v_balance, v_held from public.token_balances b where b.user_id = p_user_id for update;
  balance := v_balance - v_held;
  if v_need > balance then
    outcome := 'payment_required';
    message := format('Token balance too low for this call: %s available, up to %s needed', balance, v_need);
    return next;
    return;
  end if;
  v_fit := least(v_want, greatest(v_need, balance / 4), balance);
  -- Beyond the need, whole calls only: a lease never keeps a remainder that fits no call.
  v_fit := v_need + (v_fit - v_need) / greatest(hold_tokens, 1) * greatest(hold_tokens, 1);
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
  bigint, boolean, boolean, integer) is
  'Opens or tops up a function instance''s lease for one user: checks the user (unauthorized) and the call''s '
  'model (forbidden; skipped when p_model is null), takes the requests- and tokens-per-minute headroom of up to '
  'p_calls calls like this one when p_check_limits (rate_limited when not even this call fits), tops up the free '
  'allowance, and holds up to p_calls calls'' worth of tokens under p_lease_id (payment_required when the '
  'unreserved balance cannot cover this call; beyond the call, at most a quarter of it). p_have_*: what the '
  'instance already has for this call; p_ahead: topping up before it is needed, never refused for limits or '
  'balance. Returns the plan''s limits, what was granted, and the unreserved balance after it.';

create or replace function private.gateway_admit(
  p_user_id uuid,
  p_provider text,
  p_model text,
  p_request_id text,
  p_input_estimate bigint,
  p_requested_output integer,
  p_check_limits boolean default true,
  p_choices integer default 1,
  p_hold_seconds integer default 900
) returns table (
  outcome text,
  message text,
  plan text,
  max_output_tokens integer,
  hold_tokens bigint,
  pricing_id bigint,
  requests_per_minute integer,
  tokens_per_minute integer,
  limit_value integer,
  limit_remaining integer,
  limit_reset_at timestamptz,
  balance bigint
)
language plpgsql
set search_path = ''
as $$
declare
  v_lease record;
  v_price public.model_pricing;
begin
  if exists (select 1 from private.token_holds h where h.request_id = p_request_id) then
    raise exception 'request % is already admitted', p_request_id using errcode = '23505';
  end if;
  select * into v_lease
    from private.gateway_lease(p_user_id, p_provider, p_request_id, p_model, p_input_estimate, p_requested_output,
                               p_choices, p_check_limits => p_check_limits, p_hold_seconds => p_hold_seconds);
  if v_lease.outcome in ('ok', 'rate_limited', 'payment_required') then
    v_price := private._price_in_force(p_provider, p_model, now());
  end if;
  if v_lease.outcome = 'ok' then
    update private.token_holds h set pricing_id = v_price.id where h.request_id = p_request_id;
  end if;
  return query select v_lease.outcome, v_lease.message, v_lease.plan, v_lease.max_output_tokens, v_lease.hold_tokens,
    v_price.id, v_lease.requests_per_minute, v_lease.tokens_per_minute, v_lease.limit_value,
    case when v_lease.outcome = 'rate_limited' then 0 end, v_lease.limit_reset_at,
    case when v_lease.outcome in ('ok', 'payment_required') then v_lease.balance end;
end;
$$;
comment on function private.gateway_admit(uuid, text, text, text, bigint, integer, boolean, integer, integer) is
  'Admits one call: a lease of exactly that call (private.gateway_lease) under its own request id, with the price '
  'in force kept on the hold. Outcomes as gateway_lease''s; the gateway itself leases for several calls.';

-- ------------------------------------------------------------------------------------------ settlement
drop function private.gateway_settle_batch(jsonb);
drop function private.gateway_settle(text, uuid, text, text, bigint, bigint, bigint, text, integer, integer, text,
  boolean);

create function private.gateway_settle(
  p_request_id text,
  p_user_id uuid,
  p_provider text,
  p_model text,
  p_input_tokens bigint,
  p_cached_input_tokens bigint,
  p_output_tokens bigint,
  p_status text,
  p_http_status integer default null,
  p_latency_ms integer default null,
  p_upstream_request_id text default null,
  p_tokens_estimated boolean default false,
  p_lease_id text default null,
  p_admitted_at timestamptz default null
) returns public.token_usage
language plpgsql
set search_path = ''
as $$
declare
  v_usage public.token_usage;
  v_balance bigint;
  v_held bigint;
  v_hold_amount bigint;
  v_hold_pricing bigint;
  v_lease bigint;
  v_from_lease bigint;
  v_price public.model_pricing;
  v_input bigint := greatest(coalesce(p_input_tokens, 0), 0);
  v_cached bigint := least(greatest(coalesce(p_cached_input_tokens, 0), 0), greatest(coalesce(p_input_tokens, 0), 0));
  v_output bigint := greatest(coalesce(p_output_tokens, 0), 0);
  v_debit bigint;
begin
  -- Never queue behind a lock for long: a settlement that cannot proceed goes to the outbox instead.
  perform set_config('lock_timeout', '3s', true);
  -- Lock order as everywhere: the user row (key share, so a concurrent deletion of the user waits rather than
  -- deadlocks), then the balance row, which serializes this user's settlements (and a repeat of this one).
  perform 1 from public.users where id = p_user_id for key share;
  select b.balance, b.held into v_balance, v_held from public.token_balances b where b.user_id = p_user_id for update;
  if not found then
    raise exception 'unknown user %', p_user_id using errcode = 'PB404';
  end if;
  select * into v_usage from public.token_usage where request_id = p_request_id;
  if found then
    if v_usage.user_id <> p_user_id then
      raise exception 'request % was settled for another user', p_request_id using errcode = 'PB409';
    end if;
    return v_usage; -- already settled: a retried write is a no-op
  end if;

  -- A hold of its own: a call admitted on its own (gateway_admit), or what a parked call used, moved out of its
  -- lease when it was parked (enqueue_usage). All of it goes back.
  delete from private.token_holds h where h.request_id = p_request_id
  returning h.amount, h.pricing_id into v_hold_amount, v_hold_pricing;
  if v_hold_amount is null and p_lease_id is not null then
    -- A call admitted under a lease: what it used comes off the lease (the rest stays leased for later calls).
    select h.amount into v_lease from private.token_holds h
     where h.request_id = p_lease_id and h.user_id = p_user_id for update;
    v_from_lease := least(v_input + v_output, coalesce(v_lease, 0));
    if v_from_lease = v_lease then
      delete from private.token_holds h where h.request_id = p_lease_id;
    elsif v_from_lease > 0 then
      update private.token_holds h set amount = h.amount - v_from_lease where h.request_id = p_lease_id;
    end if;
    v_held := greatest(v_held - v_from_lease, 0);
  end if;
  if v_hold_amount is not null then
    v_held := greatest(v_held - v_hold_amount, 0);
  end if;
  if v_hold_pricing is not null then
    select * into v_price from public.model_pricing where id = v_hold_pricing; -- the price held at admission
  elsif v_hold_amount is null or p_lease_id is not null then
    -- The price in force when the call was admitted (a hold that expired: now).
    -- (private._price_in_force's query, written out so its plan is cached with this function's)
    select * into v_price from public.model_pricing m
     where m.provider = p_provider and m.model = p_model and m.effective_from <= coalesce(p_admitted_at, now())
       and (m.effective_to is null or m.effective_to > coalesce(p_admitted_at, now()))
     order by m.effective_from desc
     limit 1;
  end if;

  -- Debit what the call used, never below zero (a shortfall is recorded), and release the hold, in one
  -- update; the ledger row goes with it.
  v_debit := least(v_input + v_output, greatest(v_balance - v_held, 0));
  update public.token_balances
     set held = v_held, balance = v_balance - v_debit, updated_at = case when v_debit > 0 then now() else updated_at end
   where user_id = p_user_id;
  if v_debit > 0 then
    insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
    values (p_user_id, -v_debit, v_balance - v_debit, 'usage', 'usage:' || p_request_id,
            jsonb_build_object('provider', p_provider, 'model', p_model, 'shortfall', v_input + v_output - v_debit));
  end if;

  insert into public.token_usage (
    request_id, user_id, provider, model, input_tokens, cached_input_tokens, output_tokens, cost_micro_usd,
    pricing_id, price_missing, tokens_estimated, debited_tokens, status, http_status, latency_ms, upstream_request_id)
  values (
    p_request_id, p_user_id, p_provider, p_model, v_input, v_cached, v_output,
    private._cost_micro_usd(v_price, v_input, v_cached, v_output),
    v_price.id, v_price.id is null, p_tokens_estimated, v_debit, p_status, p_http_status, p_latency_ms,
    p_upstream_request_id)
  returning * into v_usage;

  if v_price.id is null then
    insert into private.admin_alerts (kind, user_id, details, dedupe_key)
    values ('unpriced_model', null, jsonb_build_object('provider', p_provider, 'model', p_model),
            'unpriced_model:' || p_provider || ':' || p_model || ':' || to_char(now(), 'YYYY-MM-DD'))
    on conflict (dedupe_key) do nothing;
  end if;
  return v_usage;
end;
$$;
comment on function private.gateway_settle(text, uuid, text, text, bigint, bigint, bigint, text, integer, integer,
  text, boolean, text, timestamptz) is
  'Settles a gateway call once per request_id, atomically: debits the tokens used (never below zero) and writes '
  'the token_usage row (null cost + operator alert when the model has no price). A call admitted on its own '
  'releases its hold and is priced as held; one admitted under p_lease_id takes what it used off that lease and '
  'is priced as in force at p_admitted_at. A repeat returns the existing row and changes nothing.';

create function private._settle_record(p_record jsonb) returns void
language plpgsql
set search_path = ''
as $$
begin
  perform private.gateway_settle(
    p_record ->> 'request_id', (p_record ->> 'user_id')::uuid, p_record ->> 'provider', p_record ->> 'model',
    (p_record ->> 'input_tokens')::bigint, (p_record ->> 'cached_input_tokens')::bigint,
    (p_record ->> 'output_tokens')::bigint, p_record ->> 'status', (p_record ->> 'http_status')::integer,
    (p_record ->> 'latency_ms')::integer, p_record ->> 'upstream_request_id',
    coalesce((p_record ->> 'tokens_estimated')::boolean, false), p_record ->> 'lease_id',
    (p_record ->> 'admitted_at')::timestamptz);
end;
$$;
comment on function private._settle_record(jsonb) is
  'gateway_settle for a usage record as the gateway sends it (JSON), for the batch and the outbox.';

create function private._tokens_of(p_value jsonb) returns bigint
language sql immutable
as $$
  select case when jsonb_typeof(p_value) = 'number'
              then least(greatest(floor(p_value::text::numeric), 0), 1e15)::bigint else 0 end
$$;
comment on function private._tokens_of(jsonb) is
  'A token count from a usage record as sent, for accounting a record that could not be settled: whole, '
  'non-negative, 0 when it is not a number.';

create function private._usage_records(p_records jsonb)
returns table (
  request_id text, user_id uuid, provider text, model text, input_tokens bigint, cached_input_tokens bigint,
  output_tokens bigint, used bigint, status text, http_status integer, latency_ms integer, upstream_request_id text,
  tokens_estimated boolean, lease_id text, admitted_at timestamptz
)
language sql stable
as $$
  select r.request_id, r.user_id, r.provider, r.model,
         greatest(coalesce(r.input_tokens, 0), 0),
         least(greatest(coalesce(r.cached_input_tokens, 0), 0), greatest(coalesce(r.input_tokens, 0), 0)),
         greatest(coalesce(r.output_tokens, 0), 0),
         greatest(coalesce(r.input_tokens, 0), 0) + greatest(coalesce(r.output_tokens, 0), 0),
         r.status, r.http_status, r.latency_ms, r.upstream_request_id, coalesce(r.tokens_estimated, false),
         r.lease_id, r.admitted_at
    from jsonb_to_recordset(p_records) as r(
      request_id text, user_id uuid, provider text, model text, input_tokens bigint, cached_input_tokens bigint,
      output_tokens bigint, status text, http_status integer, latency_ms integer, upstream_request_id text,
      tokens_estimated boolean, lease_id text, admitted_at timestamptz)
$$;
comment on function private._usage_records(jsonb) is
  'The gateway''s usage records (JSON) as rows, with token counts as gateway_settle reads them. Inlined into '
  'the queries of _settle_set (no SET clause; every name in full).';

create function private._settle_set(p_records jsonb) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_ok boolean;
begin
  -- Only the usual batch: calls admitted under leases, each settled for the first time, of users who can pay
  -- for all of them (no debit would be cut short). Anything else goes record by record (gateway_settle).
  select count(*) = count(distinct r.request_id)
         and bool_and(r.lease_id is not null and r.request_id is not null and r.user_id is not null)
    into v_ok
    from private._usage_records(p_records) r;
  if not coalesce(v_ok, false) then
    return false;
  end if;
  if exists (select 1 from private._usage_records(p_records) r
              where exists (select 1 from public.token_usage t where t.request_id = r.request_id)
                 or exists (select 1 from private.token_holds h where h.request_id = r.request_id)
                 or not exists (select 1 from public.token_balances b where b.user_id = r.user_id)) then
    return false;
  end if;

  -- Lock order as in gateway_settle: users (key share), their balance rows, then the leases; each in id order.
  perform 1 from public.users u where u.id in (select r.user_id from private._usage_records(p_records) r)
   order by u.id for key share;
  perform 1 from public.token_balances b where b.user_id in (select r.user_id from private._usage_records(p_records) r)
   order by b.user_id for update;
  perform 1 from private.token_holds h where h.request_id in (select r.lease_id from private._usage_records(p_records) r)
   order by h.request_id for update;

  -- Balance minus held only falls as calls settle (each gives back at most what it used), so if it is still
  -- enough after all of a user's calls, no debit is cut short and the order does not matter.
  with per_lease as (
    select r.user_id, r.lease_id, sum(r.used) as used, coalesce(max(h.amount), 0) as amount
      from private._usage_records(p_records) r
      left join private.token_holds h on h.request_id = r.lease_id and h.user_id = r.user_id
     group by r.user_id, r.lease_id
  ), per_user as (
    select pl.user_id, sum(pl.used) as used, sum(least(pl.used, pl.amount)) as from_lease
      from per_lease pl group by pl.user_id
  )
  select bool_and(b.balance - b.held >= pu.used - pu.from_lease) into v_ok
    from per_user pu join public.token_balances b on b.user_id = pu.user_id;
  if not v_ok then
    return false;
  end if;

  -- The ledger first (balance_after from the balance before this batch, in gateway_settle's order).
  insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
  select r.user_id, -r.used,
         b.balance - sum(r.used) over (partition by r.user_id order by r.request_id rows unbounded preceding),
         'usage', 'usage:' || r.request_id, jsonb_build_object('provider', r.provider, 'model', r.model, 'shortfall', 0)
    from private._usage_records(p_records) r join public.token_balances b on b.user_id = r.user_id
   where r.used > 0
   order by r.user_id, r.request_id;

  -- What the calls used comes off their leases (a lease used up is deleted) and off the balance.
  with per_lease as (
    select r.user_id, r.lease_id, sum(r.used) as used from private._usage_records(p_records) r group by 1, 2
  ), used_up as (
    delete from private.token_holds h using per_lease pl
     where h.request_id = pl.lease_id and h.user_id = pl.user_id and pl.used >= h.amount
    returning h.user_id, h.amount as taken
  ), cut as (
    update private.token_holds h set amount = h.amount - pl.used from per_lease pl
     where h.request_id = pl.lease_id and h.user_id = pl.user_id and pl.used < h.amount
    returning h.user_id, pl.used as taken
  ), taken as (
    select t.user_id, sum(t.taken) as taken from (select * from used_up union all select * from cut) t group by 1
  ), per_user as (
    select r.user_id, sum(r.used) as used from private._usage_records(p_records) r group by 1
  )
  update public.token_balances b
     set balance = b.balance - pu.used,
         held = greatest(b.held - coalesce(t.taken, 0), 0),
         updated_at = case when pu.used > 0 then now() else b.updated_at end
    from per_user pu left join taken t on t.user_id = pu.user_id
   where b.user_id = pu.user_id;

  -- The usage rows, each at the price in force when its call was admitted; unpriced models alert operators.
  with inserted as (
    insert into public.token_usage (
      request_id, user_id, provider, model, input_tokens, cached_input_tokens, output_tokens, cost_micro_usd,
      pricing_id, price_missing, tokens_estimated, debited_tokens, status, http_status, latency_ms,
      upstream_request_id)
    select r.request_id, r.user_id, r.provider, r.model, r.input_tokens, r.cached_input_tokens, r.output_tokens,
           private._cost_micro_usd(p.price, r.input_tokens, r.cached_input_tokens, r.output_tokens),
           (p.price).id, (p.price).id is null, r.tokens_estimated, r.used, r.status, r.http_status, r.latency_ms,
           r.upstream_request_id
      from private._usage_records(p_records) r
      left join lateral (
        select m as price from public.model_pricing m
         where m.provider = r.provider and m.model = r.model
           and m.effective_from <= coalesce(r.admitted_at, now())
           and (m.effective_to is null or m.effective_to > coalesce(r.admitted_at, now()))
         order by m.effective_from desc
         limit 1
      ) p on true
     order by r.user_id, r.request_id
    returning provider, model, pricing_id
  )
  insert into private.admin_alerts (kind, user_id, details, dedupe_key)
  select distinct 'unpriced_model', null::uuid, jsonb_build_object('provider', i.provider, 'model', i.model),
         'unpriced_model:' || i.provider || ':' || i.model || ':' || to_char(now(), 'YYYY-MM-DD')
    from inserted i where i.pricing_id is null
  on conflict (dedupe_key) do nothing;
  return true;
end;
$$;
comment on function private._settle_set(jsonb) is
  'gateway_settle for a whole batch in a few statements, for the usual batch only (calls admitted under leases, '
  'settled for the first time, of users who can pay for all of them): returns false, changing nothing, for any '
  'other. Same rows and amounts as settling the records one by one in (user, request) order.';

create function private.gateway_settle_batch(p_records jsonb, p_close_leases jsonb default '[]')
returns table (request_id text, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_items jsonb[];
  v_kinds integer[];
  v_all_done boolean := false;
  v_set boolean;
  v_record jsonb;
begin
  -- Before gateway_settle is first compiled in this session: compiling it opens the tables its variables are
  -- typed by, and that wait must time out too (a blocked settlement goes to the outbox, it never hangs).
  perform set_config('lock_timeout', '3s', true);
  -- In user order, so concurrent batches lock balance rows in the same order (no deadlocks); a user's calls
  -- before the leases they were admitted under are given back.
  select coalesce(array_agg(items.record order by items.record ->> 'user_id', items.kind, items.record ->> 'request_id',
                                                  items.record ->> 'lease_id'), '{}'),
         coalesce(array_agg(items.kind order by items.record ->> 'user_id', items.kind, items.record ->> 'request_id',
                                                items.record ->> 'lease_id'), '{}')
    into v_items, v_kinds
    from (select value as record, 0 as kind from jsonb_array_elements(p_records)
          union all
          select value, 1 from jsonb_array_elements(coalesce(p_close_leases, '[]'))) items;

  -- The usual case at once, in one subtransaction: set-based when it can (_settle_set), else call by call.
  begin
    v_set := private._settle_set(p_records);
    for i in 1 .. cardinality(v_items) loop
      if v_kinds[i] = 1 then
        perform private.gateway_release(v_items[i] ->> 'lease_id');
      elsif not v_set then
        perform private._settle_record(v_items[i]);
      end if;
    end loop;
    v_all_done := true;
  exception when others then
    v_all_done := false; -- all of it undone: again one by one, to park only what fails
  end;

  for i in 1 .. cardinality(v_items) loop
    v_record := v_items[i];
    request_id := coalesce(v_record ->> 'request_id', v_record ->> 'lease_id');
    error := null;
    if not v_all_done then
      begin
        if v_kinds[i] = 0 then
          perform private._settle_record(v_record);
        else
          perform private.gateway_release(request_id);
        end if;
      exception when others then
        error := sqlstate || ': ' || sqlerrm;
        if v_kinds[i] = 0 then
          perform private.enqueue_usage(v_record, error); -- keeps what the call used held for it
        end if;
      end;
    end if;
    return next;
  end loop;
end;
$$;
comment on function private.gateway_settle_batch(jsonb, jsonb) is
  'Settles many gateway calls in one transaction (all at once, or, when one fails, each in its own '
  'subtransaction): a record whose settlement fails is parked in the usage outbox instead (what it used stays '
  'held for it, see enqueue_usage). Then gives back the leases in p_close_leases ([{lease_id, user_id}]; one that '
  'cannot be given back now expires with its hold). Returns each request or lease id with its error (null when '
  'done).';

create or replace function private.process_usage_outbox(p_limit integer default 100) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_row private.usage_outbox;
  v_done integer := 0;
begin
  perform set_config('lock_timeout', '3s', true); -- see gateway_settle_batch
  for v_row in
    select * from private.usage_outbox
     where applied_at is null and next_attempt_at <= now()
     order by id limit p_limit
     for update skip locked
  loop
    begin
      perform private._settle_record(v_row.payload);
      update private.usage_outbox set applied_at = now(), attempts = attempts + 1, last_error = null
       where id = v_row.id;
      v_done := v_done + 1;
    exception when others then
      if not exists (select 1 from public.users where id = (v_row.payload ->> 'user_id')::uuid) then
        -- The user was deleted (with all their usage): nothing left to record this against.
        update private.usage_outbox
           set attempts = attempts + 1, applied_at = now(), last_error = 'discarded: the user no longer exists'
         where id = v_row.id;
      else
        update private.usage_outbox
           set attempts = attempts + 1, last_error = sqlstate || ': ' || sqlerrm,
               next_attempt_at = now() + least(interval '1 minute' * power(2, attempts), interval '1 hour')
         where id = v_row.id;
      end if;
    end;
  end loop;
  return v_done;
end;
$$;

create or replace function private.enqueue_usage(p_payload jsonb, p_error text default null) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_lease private.token_holds;
  v_keep bigint;
begin
  insert into private.usage_outbox (request_id, payload, last_error)
  values (p_payload ->> 'request_id', p_payload, p_error)
  on conflict (request_id) do nothing;
  if not found or p_payload ->> 'lease_id' is null then
    return;
  end if;
  -- A call admitted under a lease: what it used moves out of the lease into a hold of its own, so that giving
  -- the lease back does not free it before the outbox settles the call (gateway_settle releases that hold).
  select * into v_lease from private.token_holds h
   where h.request_id = p_payload ->> 'lease_id' and h.user_id::text = p_payload ->> 'user_id' for update;
  v_keep := least(v_lease.amount,
                  private._tokens_of(p_payload -> 'input_tokens') + private._tokens_of(p_payload -> 'output_tokens'));
  if v_lease.request_id is null or v_keep <= 0 then
    return;
  end if;
  insert into private.token_holds (request_id, user_id, provider, model, amount, expires_at)
  values (p_payload ->> 'request_id', v_lease.user_id, v_lease.provider, coalesce(p_payload ->> 'model', v_lease.model),
          v_keep, greatest(v_lease.expires_at, now() + interval '1 day'))
  on conflict (request_id) do nothing;
  if found then
    if v_keep = v_lease.amount then
      delete from private.token_holds h where h.request_id = v_lease.request_id;
    else
      update private.token_holds h set amount = h.amount - v_keep where h.request_id = v_lease.request_id;
    end if;
  end if;
end;
$$;
comment on function private.enqueue_usage(jsonb, text) is
  'Parks a usage record whose settlement failed; aie_usage_outbox applies it. Idempotent per request_id. What a '
  'call admitted under a lease used moves into a hold of its own (kept a day at least) until it is settled.';

-- Without a SET clause, so the planner inlines it into the settlement's insert (it names everything in full).
create or replace function private._cost_micro_usd(
  p_price public.model_pricing, p_input bigint, p_cached bigint, p_output bigint
) returns bigint
language sql immutable
as $$
  select case when p_price.id is null then null else
    ceil((
      (p_input - p_cached)::numeric * p_price.input_micro_usd_per_mtok
      + p_cached::numeric * coalesce(p_price.cached_input_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok)
      + p_output::numeric * p_price.output_micro_usd_per_mtok
    ) / 1000000)::bigint
  end
$$;

comment on table private.token_holds is
  'Tokens reserved for gateway calls in flight (the most each can cost): one row per call admitted on its own '
  '(gateway_admit), or one per function instance and user for a lease (gateway_lease), which the calls it admits '
  'draw on. token_balances.held is their sum per user. Settled by gateway_settle, leases given back by '
  'gateway_release; holds of calls or instances that died are released by aie_release_expired_holds.';
