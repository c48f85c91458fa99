-- Reverts 20261125190000_gateway_leases.sql: the functions as 20261125180000_llm_gateway.sql made them.
drop function private.gateway_settle_batch(jsonb, jsonb);
drop function private._settle_record(jsonb);
drop function private._settle_set(jsonb);
drop function private._usage_records(jsonb);
drop function private._tokens_of(jsonb);
drop function private.gateway_settle(text, uuid, text, text, bigint, bigint, bigint, text, integer, integer, text,
  boolean, text, timestamptz);

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
  p_tokens_estimated boolean default false
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

  delete from private.token_holds h where h.request_id = p_request_id
  returning h.amount, h.pricing_id into v_hold_amount, v_hold_pricing;
  if v_hold_amount is not null then
    v_held := greatest(v_held - v_hold_amount, 0);
    if v_hold_pricing is not null then
      select * into v_price from public.model_pricing where id = v_hold_pricing; -- the price at admission
    end if;
  else
    v_price := private._price_in_force(p_provider, p_model, now()); -- the hold expired: today's price
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
  text, boolean) is
  'Settles a gateway call once per request_id, atomically: releases its hold, debits the tokens used (never below '
  'zero), writes the token_usage row at the price held since admission (null cost + operator alert when the model '
  'has no price). A repeat returns the existing row and changes nothing.';

create function private.gateway_settle_batch(p_records jsonb)
returns table (request_id text, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_record jsonb;
begin
  -- Before gateway_settle is first compiled in this session: compiling it opens the tables its variables are
  -- typed by, and that wait must time out too (a blocked settlement goes to the outbox, it never hangs).
  perform set_config('lock_timeout', '3s', true);
  -- In user order, so concurrent batches lock balance rows in the same order (no deadlocks).
  for v_record in
    select value from jsonb_array_elements(p_records) order by value ->> 'user_id', value ->> 'request_id'
  loop
    request_id := v_record ->> 'request_id';
    begin
      perform private.gateway_settle(
        v_record ->> 'request_id', (v_record ->> 'user_id')::uuid, v_record ->> 'provider', v_record ->> 'model',
        (v_record ->> 'input_tokens')::bigint, (v_record ->> 'cached_input_tokens')::bigint,
        (v_record ->> 'output_tokens')::bigint, v_record ->> 'status', (v_record ->> 'http_status')::integer,
        (v_record ->> 'latency_ms')::integer, v_record ->> 'upstream_request_id',
        coalesce((v_record ->> 'tokens_estimated')::boolean, false));
      error := null;
    exception when others then
      error := sqlstate || ': ' || sqlerrm;
      perform private.enqueue_usage(v_record, error);
    end;
    return next;
  end loop;
end;
$$;
comment on function private.gateway_settle_batch(jsonb) is
  'Settles many gateway calls in one transaction (each in its own subtransaction): a record whose settlement '
  'fails is parked in the usage outbox instead. Returns each request id with its error (null when settled).';

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
  v_plan public.subscription_plans;
  v_price public.model_pricing;
  v_max_output integer;
  v_hold bigint;
  v_rate record;
  v_balance public.token_balances;
  v_available bigint;
  v_month text := to_char(now() at time zone 'UTC', 'YYYY-MM');
begin
  -- The user row first (key share): deleting the user waits for this call instead of deadlocking with it.
  select p.* into v_plan from public.users u join public.subscription_plans p on p.id = u.plan
   where u.id = p_user_id for key share of u;
  if not found then
    return query select 'unauthorized', 'Unknown user', null::text, null::integer, null::bigint, null::bigint,
      null::integer, null::integer, null::integer, null::integer, null::timestamptz, null::bigint;
    return;
  end if;
  if cardinality(v_plan.allowed_models) > 0 and not p_model = any (v_plan.allowed_models) then
    return query select 'forbidden', format('Model %s is not available on the %s plan', p_model, v_plan.name),
      v_plan.id, null::integer, null::bigint, null::bigint, v_plan.requests_per_minute, v_plan.tokens_per_minute,
      null::integer, null::integer, null::timestamptz, null::bigint;
    return;
  end if;

  v_price := private._price_in_force(p_provider, p_model, now());
  v_max_output := least(coalesce(nullif(p_requested_output, 0), v_plan.max_output_tokens), v_plan.max_output_tokens);
  -- Every answer of a call asking for several (OpenAI n, Gemini candidateCount) may use the max output.
  v_hold := greatest(coalesce(p_input_estimate, 0), 0) + v_max_output * greatest(coalesce(p_choices, 1), 1);

  if p_check_limits then
    select * into v_rate from private.rate_limit_hit('gw:rpm:' || p_user_id, v_plan.requests_per_minute, 60, 1);
    if v_rate.allowed then
      select * into v_rate
        from private.rate_limit_hit('gw:tpm:' || p_user_id, v_plan.tokens_per_minute, 60,
                                    least(v_hold, v_plan.tokens_per_minute)::integer);
      if not v_rate.allowed then
        return query select 'rate_limited', 'Tokens-per-minute limit reached', v_plan.id, v_max_output, v_hold,
          v_price.id, v_plan.requests_per_minute, v_plan.tokens_per_minute, v_plan.tokens_per_minute, 0,
          v_rate.reset_at, null::bigint;
        return;
      end if;
    else
      return query select 'rate_limited', 'Requests-per-minute limit reached', v_plan.id, v_max_output, v_hold,
        v_price.id, v_plan.requests_per_minute, v_plan.tokens_per_minute, v_plan.requests_per_minute, 0,
        v_rate.reset_at, null::bigint;
      return;
    end if;
  end if;

  -- The free plan's monthly allowance, topped up on first use in a month (never above the allowance).
  if v_plan.id = 'free' and not exists (
    select 1 from public.token_transactions where reference = 'free:' || p_user_id || ':' || v_month
  ) then
    select * into v_balance from public.token_balances b where b.user_id = p_user_id for update;
    if v_plan.monthly_token_allowance > v_balance.balance then
      perform private.update_user_token_balance(
        p_user_id, v_plan.monthly_token_allowance - v_balance.balance, 'subscription_allowance',
        'free:' || p_user_id || ':' || v_month, jsonb_build_object('plan', 'free', 'month', v_month));
    end if;
  end if;

  -- Check and hold in one statement; its row lock serializes this user's admissions and settlements.
  update public.token_balances b set held = b.held + v_hold
   where b.user_id = p_user_id and b.balance - b.held >= v_hold
  returning b.balance - b.held into v_available;
  if not found then
    select b.balance - b.held into v_available from public.token_balances b where b.user_id = p_user_id;
    return query select 'payment_required',
      format('Token balance too low for this call: %s available, up to %s needed', v_available, v_hold),
      v_plan.id, v_max_output, v_hold, v_price.id, v_plan.requests_per_minute, v_plan.tokens_per_minute,
      null::integer, null::integer, null::timestamptz, v_available;
    return;
  end if;
  insert into private.token_holds (request_id, user_id, provider, model, amount, pricing_id, expires_at)
  values (p_request_id, p_user_id, p_provider, p_model, v_hold, v_price.id,
          now() + make_interval(secs => greatest(coalesce(p_hold_seconds, 900), 60)));

  return query select 'ok', null::text, v_plan.id, v_max_output, v_hold, v_price.id, v_plan.requests_per_minute,
    v_plan.tokens_per_minute, null::integer, null::integer, null::timestamptz, v_available;
end;
$$;
comment on function private.gateway_admit(uuid, text, text, text, bigint, integer, boolean, integer, integer) is
  'Everything the gateway decides before forwarding, in one call: the user and plan (unauthorized), the model '
  '(forbidden), the requests- and tokens-per-minute limits when p_check_limits (rate_limited; the TPM window '
  'counts the hold), the free allowance, and the hold of input estimate + capped max output tokens × choices '
  '(kept p_hold_seconds, which outlasts the call''s own timeout) '
  '(payment_required when the unreserved balance is short). outcome ok: the hold is placed under p_request_id.';

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
      perform private.gateway_settle(
        v_row.payload ->> 'request_id', (v_row.payload ->> 'user_id')::uuid, v_row.payload ->> 'provider',
        v_row.payload ->> 'model', (v_row.payload ->> 'input_tokens')::bigint,
        (v_row.payload ->> 'cached_input_tokens')::bigint, (v_row.payload ->> 'output_tokens')::bigint,
        v_row.payload ->> 'status', (v_row.payload ->> 'http_status')::integer,
        (v_row.payload ->> 'latency_ms')::integer, v_row.payload ->> 'upstream_request_id',
        coalesce((v_row.payload ->> 'tokens_estimated')::boolean, false));
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
comment on function private.process_usage_outbox(integer) is
  'pg_cron (aie_usage_outbox): applies waiting usage records through gateway_settle, with backoff on failure. '
  'Returns how many it applied.';

create or replace function private._cost_micro_usd(
  p_price public.model_pricing, p_input bigint, p_cached bigint, p_output bigint
) returns bigint
language sql immutable
set search_path = ''
as $$
  select case when p_price.id is null then null else
    ceil((
      (p_input - p_cached)::numeric * p_price.input_micro_usd_per_mtok
      + p_cached::numeric * coalesce(p_price.cached_input_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok)
      + p_output::numeric * p_price.output_micro_usd_per_mtok
    ) / 1000000)::bigint
  end
$$;

create or replace function private.enqueue_usage(p_payload jsonb, p_error text default null) returns void
language sql
set search_path = ''
as $$
  insert into private.usage_outbox (request_id, payload, last_error)
  values (p_payload ->> 'request_id', p_payload, p_error)
  on conflict (request_id) do nothing;
$$;
comment on function private.enqueue_usage(jsonb, text) is
  'Parks a usage record whose settlement failed; aie_usage_outbox applies it. Idempotent per request_id.';

comment on table private.token_holds is
  'Tokens reserved for gateway calls in flight (the most each can cost). token_balances.held is their sum per '
  'user. Settled by gateway_settle; holds of calls that died are released by aie_release_expired_holds.';

drop function private.gateway_lease(uuid, text, text, text, bigint, integer, integer, integer, bigint, integer, bigint,
  boolean, boolean, integer);
drop function private.rate_limit_take(text, integer, integer, integer, integer);
