-- LLM gateway: prices with history, holds, metering, the usage outbox, rollups and usage alerts.
--   public   model_pricing (history; no overlapping periods per model), token_usage (one row per call),
--            usage_daily (rollup kept by trigger), usage_alerts (50/80/100 % of the monthly allowance)
--   private  token_holds (reserved tokens of calls in flight), usage_outbox (usage writes to retry),
--            admin_alerts (usage spikes)
--   gateway  private.gateway_admit(...)   one round trip before forwarding: user, plan, model, price,
--                                         limits (Postgres limiter), free allowance, the hold
--            private.gateway_settle(...)  after the call: usage row + cost + debit + hold release, once
--            private.gateway_release(...) gives a hold back (call refused after admission)
--   cron     aie_release_expired_holds (minute), aie_usage_outbox (minute), aie_usage_alerts (15 min)
-- Money is integer micro-dollars (1e-6 USD); prices are micro-dollars per million tokens.

create extension if not exists btree_gist with schema extensions;

-- ------------------------------------------------------------------------------------------ tables
create table public.model_pricing (
  id bigint generated always as identity primary key,
  provider text not null constraint provider_is_known check (provider in ('openai', 'anthropic', 'google', 'perplexity')),
  model text not null constraint model_is_short check (char_length(model) between 1 and 128),
  input_micro_usd_per_mtok bigint not null constraint input_price_is_not_negative check (input_micro_usd_per_mtok >= 0),
  cached_input_micro_usd_per_mtok bigint
    constraint cached_input_price_is_not_negative check (cached_input_micro_usd_per_mtok >= 0),
  output_micro_usd_per_mtok bigint not null constraint output_price_is_not_negative check (output_micro_usd_per_mtok >= 0),
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  constraint period_is_ordered check (effective_to is null or effective_to > effective_from),
  constraint model_pricing_periods_do_not_overlap exclude using gist (
    provider with =, model with =, tstzrange(effective_from, effective_to, '[)') with &&
  )
);
comment on table public.model_pricing is
  'Provider list prices with history: micro-dollars per million input / cached input / output tokens, in force '
  'on [effective_from, effective_to). Periods of one model never overlap (exclusion constraint). A price change '
  'closes the current row and adds a new one. Readable by everyone.';

create table public.token_usage (
  id bigint generated always as identity primary key,
  request_id text not null constraint token_usage_request_id_is_unique unique,
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  model text not null,
  input_tokens bigint not null default 0 constraint input_tokens_is_not_negative check (input_tokens >= 0),
  cached_input_tokens bigint not null default 0
    constraint cached_input_tokens_is_within_input check (cached_input_tokens between 0 and input_tokens),
  output_tokens bigint not null default 0 constraint output_tokens_is_not_negative check (output_tokens >= 0),
  cost_micro_usd bigint constraint cost_is_not_negative check (cost_micro_usd >= 0),
  pricing_id bigint references public.model_pricing (id),
  price_missing boolean not null default false,
  tokens_estimated boolean not null default false,
  debited_tokens bigint not null default 0,
  status text not null constraint status_is_known check (status in ('ok', 'upstream_error', 'cancelled', 'timeout')),
  http_status integer,
  latency_ms integer,
  upstream_request_id text,
  created_at timestamptz not null default now(),
  constraint cost_is_null_only_without_price check ((cost_micro_usd is null) = price_missing)
);
comment on table public.token_usage is
  'One row per gateway call (unique request_id, so a retried write is a no-op): tokens from the provider''s own '
  'usage fields (estimated only for a stream cut before usage arrived), the cost at the price in force when the '
  'call was admitted (pricing_id), or null with price_missing for an unpriced model. Users read their own.';

create table public.usage_daily (
  user_id uuid not null references public.users (id) on delete cascade,
  day date not null,
  provider text not null,
  model text not null,
  requests bigint not null default 0,
  input_tokens bigint not null default 0,
  cached_input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  cost_micro_usd bigint not null default 0,
  unpriced_requests bigint not null default 0,
  primary key (user_id, day, provider, model)
);
comment on table public.usage_daily is
  'Daily totals per user, provider and model, kept by a trigger on token_usage (UTC days). Users read their own; '
  'public.get_usage_summary reads it for dashboards.';

create table public.usage_alerts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  threshold_percent integer not null constraint threshold_is_known check (threshold_percent in (50, 80, 100)),
  period_start timestamptz not null,
  used_tokens bigint not null,
  allowance_tokens bigint not null,
  read_at timestamptz,
  created_at timestamptz not null default now(),
  constraint usage_alerts_once_per_threshold_and_period unique (user_id, threshold_percent, period_start)
);
comment on table public.usage_alerts is
  'A user crossed 50/80/100 % of their plan''s monthly token allowance in a billing period: one row per threshold '
  'per period (the job is idempotent). Users read their own and mark them read.';

create table private.token_holds (
  request_id text primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  model text not null,
  amount bigint not null constraint amount_is_positive check (amount > 0),
  pricing_id bigint references public.model_pricing (id),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
comment on table private.token_holds is
  'Tokens reserved for gateway calls in flight (the most each can cost). token_balances.held is their sum per '
  'user. Settled by gateway_settle; holds of calls that died are released by aie_release_expired_holds.';

create table private.usage_outbox (
  id bigint generated always as identity primary key,
  request_id text not null constraint usage_outbox_request_id_is_unique unique,
  payload jsonb not null,
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  next_attempt_at timestamptz not null default now(),
  applied_at timestamptz
);
comment on table private.usage_outbox is
  'Usage records whose settlement failed when the call ended; aie_usage_outbox applies them through '
  'gateway_settle (idempotent per request_id). Waiting records: applied_at is null.';

create table private.admin_alerts (
  id bigint generated always as identity primary key,
  kind text not null,
  user_id uuid references public.users (id) on delete cascade,
  details jsonb not null default '{}',
  dedupe_key text not null constraint admin_alerts_dedupe_key_is_unique unique,
  created_at timestamptz not null default now(),
  acknowledged_at timestamptz
);
comment on table private.admin_alerts is 'Alerts for operators (usage spikes, unpriced models in use). One per dedupe_key.';

alter table public.token_balances add column held bigint not null default 0
  constraint held_is_not_negative check (held >= 0);
comment on column public.token_balances.held is 'Tokens reserved by gateway calls in flight (sum of private.token_holds).';

-- ----------------------------------------------------------------------------------------- indexes
create index model_pricing_lookup_idx on public.model_pricing (provider, model, effective_from desc);
create index token_usage_user_id_idx on public.token_usage (user_id, created_at desc);
create index token_usage_pricing_id_idx on public.token_usage (pricing_id);
create index token_usage_price_missing_idx on public.token_usage (created_at) where price_missing;
create index usage_alerts_user_id_idx on public.usage_alerts (user_id, created_at desc);
create index token_holds_user_id_idx on private.token_holds (user_id);
create index token_holds_expires_at_idx on private.token_holds (expires_at);
create index token_holds_pricing_id_idx on private.token_holds (pricing_id);
create index usage_outbox_waiting_idx on private.usage_outbox (next_attempt_at) where applied_at is null;
create index admin_alerts_user_id_idx on private.admin_alerts (user_id);

-- --------------------------------------------------------------------------------- reference data
-- List prices (USD per million tokens: input / cached input / output) as published by the providers.
insert into public.model_pricing
  (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok, effective_from)
select provider, model, (input * 1e6)::bigint, (cached * 1e6)::bigint, (output * 1e6)::bigint, '2026-01-01T00:00:00Z'
from (values
  ('openai', 'gpt-5.5', 5.00, 0.50, 30.00),
  ('openai', 'gpt-5.4', 2.50, 0.25, 15.00),
  ('openai', 'gpt-5.4-mini', 0.75, 0.075, 4.50),
  ('openai', 'gpt-5.4-nano', 0.20, 0.02, 1.25),
  ('openai', 'gpt-5', 1.25, 0.125, 10.00),
  ('openai', 'gpt-5-mini', 0.25, 0.025, 2.00),
  ('openai', 'gpt-4.1', 2.00, 0.50, 8.00),
  ('openai', 'gpt-4.1-mini', 0.40, 0.10, 1.60),
  ('openai', 'gpt-4o', 2.50, 1.25, 10.00),
  ('openai', 'gpt-4o-mini', 0.15, 0.075, 0.60),
  ('anthropic', 'claude-opus-4-5', 5.00, 0.50, 25.00),
  ('anthropic', 'claude-sonnet-4-5', 3.00, 0.30, 15.00),
  ('anthropic', 'claude-haiku-4-5', 1.00, 0.10, 5.00),
  ('google', 'gemini-2.5-pro', 1.25, 0.125, 10.00),
  ('google', 'gemini-2.5-flash', 0.30, 0.03, 2.50),
  ('google', 'gemini-2.5-flash-lite', 0.10, 0.01, 0.40),
  ('perplexity', 'sonar', 1.00, null, 1.00),
  ('perplexity', 'sonar-pro', 3.00, null, 15.00),
  ('perplexity', 'sonar-reasoning-pro', 2.00, null, 8.00)
) as p (provider, model, input, cached, output);

-- ---------------------------------------------------------------------------------------- triggers
create function private.tg_token_usage__roll_up() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.usage_daily as d (user_id, day, provider, model, requests, input_tokens, cached_input_tokens,
                                       output_tokens, cost_micro_usd, unpriced_requests)
  values (new.user_id, (new.created_at at time zone 'UTC')::date, new.provider, new.model, 1, new.input_tokens,
          new.cached_input_tokens, new.output_tokens, coalesce(new.cost_micro_usd, 0),
          case when new.price_missing then 1 else 0 end)
  on conflict (user_id, day, provider, model) do update set
    requests = d.requests + 1,
    input_tokens = d.input_tokens + excluded.input_tokens,
    cached_input_tokens = d.cached_input_tokens + excluded.cached_input_tokens,
    output_tokens = d.output_tokens + excluded.output_tokens,
    cost_micro_usd = d.cost_micro_usd + excluded.cost_micro_usd,
    unpriced_requests = d.unpriced_requests + excluded.unpriced_requests;
  return null;
end;
$$;
comment on function private.tg_token_usage__roll_up() is 'AFTER INSERT on token_usage: adds the call to usage_daily.';
create trigger _500_roll_up after insert on public.token_usage
  for each row execute function private.tg_token_usage__roll_up();

-- --------------------------------------------------------------------------------------------- RLS
alter table public.model_pricing enable row level security;
alter table public.token_usage enable row level security;
alter table public.usage_daily enable row level security;
alter table public.usage_alerts enable row level security;
alter table private.token_holds enable row level security;
alter table private.usage_outbox enable row level security;
alter table private.admin_alerts enable row level security;

create policy "Anyone can read model prices" on public.model_pricing for select to anon, authenticated using (true);
create policy "Users can read their own usage" on public.token_usage
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can read their own daily usage" on public.usage_daily
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can read their own usage alerts" on public.usage_alerts
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can mark their own usage alerts read" on public.usage_alerts
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- ------------------------------------------------------------------------------------- functions
create function private._price_in_force(p_provider text, p_model text, p_at timestamptz)
returns public.model_pricing
language sql stable
set search_path = ''
as $$
  select * from public.model_pricing
   where provider = p_provider and model = p_model
     and effective_from <= p_at and (effective_to is null or effective_to > p_at)
   order by effective_from desc
   limit 1
$$;
comment on function private._price_in_force(text, text, timestamptz) is 'The model_pricing row in force at p_at, if any.';

create function private._cost_micro_usd(
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
comment on function private._cost_micro_usd(public.model_pricing, bigint, bigint, bigint) is
  'Cost of a call in micro-dollars (rounded up) at a price row; cached input at its own price where one exists.';

create function private.gateway_admit(
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

create function private._release_hold(p_request_id text) returns private.token_holds
language plpgsql
set search_path = ''
as $$
declare
  v_hold private.token_holds;
begin
  delete from private.token_holds where request_id = p_request_id returning * into v_hold;
  if v_hold.request_id is not null then
    update public.token_balances set held = greatest(held - v_hold.amount, 0) where user_id = v_hold.user_id;
  end if;
  return v_hold;
end;
$$;
comment on function private._release_hold(text) is 'Removes a hold and gives its tokens back to the unreserved balance.';

create function private.gateway_release(p_request_id text) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_user uuid;
begin
  select user_id into v_user from private.token_holds where request_id = p_request_id;
  if v_user is null then
    return false;
  end if;
  perform 1 from public.token_balances where user_id = v_user for update;
  return (private._release_hold(p_request_id)).request_id is not null;
end;
$$;
comment on function private.gateway_release(text) is
  'Gives back the hold of an admitted call that was then refused (e.g. by the Upstash limiter). Idempotent.';

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

create function private.enqueue_usage(p_payload jsonb, p_error text default null) returns void
language sql
set search_path = ''
as $$
  insert into private.usage_outbox (request_id, payload, last_error)
  values (p_payload ->> 'request_id', p_payload, p_error)
  on conflict (request_id) do nothing;
$$;
comment on function private.enqueue_usage(jsonb, text) is
  'Parks a usage record whose settlement failed; aie_usage_outbox applies it. Idempotent per request_id.';

create function private.process_usage_outbox(p_limit integer default 100) returns integer
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

create function private.release_expired_holds() returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_request text;
  v_count integer := 0;
begin
  for v_request in select request_id from private.token_holds where expires_at < now() loop
    if private.gateway_release(v_request) then
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end;
$$;
comment on function private.release_expired_holds() is
  'pg_cron (aie_release_expired_holds): gives back holds left by calls that died before settling.';

create function private.check_usage_alerts(p_spike_factor numeric default 10, p_spike_floor bigint default 50000)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer := 0;
  v_added integer;
begin
  -- Allowance thresholds per billing period: the subscription's current monthly period, else the UTC month.
  with periods as (
    select u.id as user_id, p.monthly_token_allowance as allowance,
           case when s.billing_period = 'monthly' and s.current_period_start is not null
                then s.current_period_start else date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' end
             as period_start
      from public.users u
      join public.subscription_plans p on p.id = u.plan
      join public.user_settings st on st.user_id = u.id and st.usage_alerts -- the user's opt-out
      left join public.user_subscriptions s on s.user_id = u.id and s.is_current
     where p.monthly_token_allowance > 0
  ), used as (
    select pr.user_id, pr.allowance, pr.period_start, sum(t.input_tokens + t.output_tokens) as used
      from periods pr
      join public.token_usage t on t.user_id = pr.user_id and t.created_at >= pr.period_start
     group by pr.user_id, pr.allowance, pr.period_start
  )
  insert into public.usage_alerts (user_id, threshold_percent, period_start, used_tokens, allowance_tokens)
  select u.user_id, th.pct, u.period_start, u.used, u.allowance
    from used u cross join (values (50), (80), (100)) as th (pct)
   where u.used * 100 >= u.allowance * th.pct
  on conflict (user_id, threshold_percent, period_start) do nothing;
  get diagnostics v_added = row_count;
  v_count := v_count + v_added;

  -- Spikes: the last hour above p_spike_factor times the user's average hour of the 7 days before it.
  with recent as (
    select user_id,
           sum(input_tokens + output_tokens) filter (where created_at >= now() - interval '1 hour') as last_hour,
           sum(input_tokens + output_tokens) filter (where created_at < now() - interval '1 hour') as trailing_week
      from public.token_usage
     where created_at >= now() - interval '7 days 1 hour'
     group by user_id
  )
  insert into private.admin_alerts (kind, user_id, details, dedupe_key)
  select 'usage_spike', user_id,
         jsonb_build_object('last_hour_tokens', last_hour, 'trailing_hourly_average', round(coalesce(trailing_week, 0) / 168.0)),
         'usage_spike:' || user_id || ':' || to_char(date_trunc('hour', now()), 'YYYY-MM-DD"T"HH24')
    from recent
   where last_hour >= p_spike_floor and last_hour > p_spike_factor * coalesce(trailing_week, 0) / 168.0
  on conflict (dedupe_key) do nothing;
  get diagnostics v_added = row_count;
  return v_count + v_added;
end;
$$;
comment on function private.check_usage_alerts(numeric, bigint) is
  'pg_cron (aie_usage_alerts): one usage_alerts row per user per threshold (50/80/100 % of the monthly allowance) '
  'per billing period, and an admin alert when a user''s last hour exceeds p_spike_factor × their trailing hourly '
  'average (and p_spike_floor tokens). Idempotent: running it twice adds nothing. Returns rows added.';

create function public.get_usage_summary(p_from date, p_to date)
returns table (
  day date, provider text, model text, requests bigint, input_tokens bigint, cached_input_tokens bigint,
  output_tokens bigint, cost_micro_usd bigint
)
language sql stable
security invoker
set search_path = ''
as $$
  select d.day, d.provider, d.model, d.requests, d.input_tokens, d.cached_input_tokens, d.output_tokens,
         d.cost_micro_usd
    from public.usage_daily d
   where d.user_id = (select auth.uid()) and d.day between p_from and p_to
   order by d.day, d.provider, d.model
$$;
comment on function public.get_usage_summary(date, date) is
  'The signed-in user''s usage per day, provider and model between two UTC dates (inclusive), from the daily '
  'rollup: cheap enough for a dashboard. Runs as the caller, under RLS.';

create view private.gateway_status as
select
  (select count(*) from private.usage_outbox where applied_at is null) as usage_outbox_waiting,
  (select min(created_at) from private.usage_outbox where applied_at is null) as usage_outbox_oldest,
  (select count(*) from private.usage_outbox where applied_at is null and attempts >= 5) as usage_outbox_stuck,
  (select count(*) from private.token_holds) as holds_active,
  (select count(*) from private.token_holds where expires_at < now()) as holds_expired,
  (select count(*) from public.token_usage where price_missing and created_at > now() - interval '1 day')
    as unpriced_calls_24h,
  (select count(*) from private.admin_alerts where acknowledged_at is null) as admin_alerts_open;
comment on view private.gateway_status is
  'For operators: usage records waiting in the outbox (and stuck ones), holds in flight or expired, unpriced '
  'calls of the last day, unacknowledged admin alerts. (Records parked in Redis while the database was down: '
  'LLEN aie:usage_outbox.)';

-- ------------------------------------------------------------------------------------------ grants
revoke all on public.model_pricing, public.token_usage, public.usage_daily, public.usage_alerts from anon, authenticated;
grant select on public.model_pricing to anon, authenticated;
grant select on public.token_usage, public.usage_daily, public.usage_alerts to authenticated;
grant update (read_at) on public.usage_alerts to authenticated;
grant execute on function public.get_usage_summary(date, date) to authenticated;
revoke insert, update, delete, truncate on public.token_usage, public.usage_daily from service_role;
grant select on private.token_holds, private.usage_outbox, private.admin_alerts, private.gateway_status to service_role;

select private.ensure_cron_job('aie_release_expired_holds', '* * * * *', 'select private.release_expired_holds()');
select private.ensure_cron_job('aie_usage_outbox', '* * * * *', 'select private.process_usage_outbox()');
select private.ensure_cron_job('aie_usage_alerts', '*/15 * * * *', 'select private.check_usage_alerts()');
