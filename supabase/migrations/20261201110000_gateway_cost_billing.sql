-- Gateway billing by cost: a balance is counted in platform tokens, a price-weighted unit, and every call is
-- billed in full at its price in force.
--   rate        public.platform_token_rates (history): micro-dollars of provider cost per million platform
--               tokens. A call debits ceil(cost / rate) platform tokens (private._charge), where the cost comes
--               from the price in force when it was admitted: input, cached input, cache writes, output,
--               reasoning where reported apart, and a per-request fee (Perplexity's search, by context size:
--               public.model_request_fees). Prices gain cache-write and reasoning columns.
--   admission   the hold is the same computation over the call's estimate (private._hold_tokens); a model
--               without a price is refused (outcome unpriced); nothing is admitted while the balance is <= 0;
--               an input the gateway cannot measure (remote files, file ids) is held as the plan's
--               max_input_tokens.
--   settlement  always debits the full cost: usage beyond the hold takes the balance below zero, the only
--               way a balance goes negative; the next credit pays the debt first (the free top-up too).
--   outbox      a record that can never apply is dead-lettered (dead_at, dead_reason, an operator alert) and its
--               hold released; private.replay_usage_dead_letter applies it once corrected.
-- Cut-over: balances, holds and ledger rows are not rewritten. A token bought before the cut-over is a platform
-- token after it: the packs and plans keep their token counts and prices, so an old balance buys exactly what the
-- same pack buys from now on.

-- ------------------------------------------------------------------------------------------ tables
create table public.platform_token_rates (
  id bigint generated always as identity primary key,
  micro_usd_per_mtok bigint not null constraint rate_is_positive check (micro_usd_per_mtok > 0),
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  constraint period_is_ordered check (effective_to is null or effective_to > effective_from),
  constraint platform_token_rates_periods_do_not_overlap exclude using gist (
    tstzrange(effective_from, effective_to, '[)') with &&
  )
);
comment on table public.platform_token_rates is
  'What a platform token is worth, with history: micro-dollars of provider cost per million platform tokens, in '
  'force on [effective_from, effective_to) (periods never overlap). A call debits ceil(cost / rate). To change it, '
  'close the current row and add one. Readable by everyone.';
alter table public.platform_token_rates enable row level security;
create policy "Anyone can read platform token rates" on public.platform_token_rates
  for select to anon, authenticated using (true);
grant select on public.platform_token_rates to anon, authenticated;

-- $2.50 of provider cost per million platform tokens: below what every paid plan and pack sells a token for
-- (the cheapest, max yearly, $3.30 per million), see the README's table.
insert into public.platform_token_rates (micro_usd_per_mtok, effective_from) values (2500000, '2026-01-01T00:00:00Z');

alter table public.model_pricing
  add column cache_write_micro_usd_per_mtok bigint
    constraint cache_write_price_is_not_negative check (cache_write_micro_usd_per_mtok >= 0),
  add column reasoning_micro_usd_per_mtok bigint
    constraint reasoning_price_is_not_negative check (reasoning_micro_usd_per_mtok >= 0);
comment on column public.model_pricing.cache_write_micro_usd_per_mtok is
  'Price of input tokens written to the provider''s prompt cache (Anthropic: 1.25 × input for the 5-minute cache); '
  'null: the input price (OpenAI and Gemini cache by themselves at no extra cost per token).';
comment on column public.model_pricing.reasoning_micro_usd_per_mtok is
  'Price of reasoning tokens where the provider bills them apart from output; null: the output price.';

-- Anthropic's list price for cache writes (the 5-minute cache): 1.25 × input. Until this migration every cache write
-- was billed at the input price; the rows in force carry it from now on (the calls billed before keep their cost).
update public.model_pricing set cache_write_micro_usd_per_mtok = (input_micro_usd_per_mtok * 5) / 4
 where provider = 'anthropic' and effective_to is null;

create table public.model_request_fees (
  id bigint generated always as identity primary key,
  provider text not null constraint provider_is_known check (provider in ('openai', 'anthropic', 'google', 'perplexity')),
  model text not null constraint model_is_short check (char_length(model) between 1 and 128),
  search_context_size text not null
    constraint search_context_size_is_known check (search_context_size in ('low', 'medium', 'high')),
  micro_usd_per_request bigint not null constraint fee_is_not_negative check (micro_usd_per_request >= 0),
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  constraint period_is_ordered check (effective_to is null or effective_to > effective_from),
  constraint model_request_fees_periods_do_not_overlap exclude using gist (
    provider with =, model with =, search_context_size with =, tstzrange(effective_from, effective_to, '[)') with &&
  )
);
comment on table public.model_request_fees is
  'Fees a provider bills per request on top of tokens, with history: Perplexity''s web search, by search context '
  'size (low is the default). Readable by everyone.';
create index model_request_fees_lookup_idx on public.model_request_fees (provider, model, search_context_size, effective_from desc);
alter table public.model_request_fees enable row level security;
create policy "Anyone can read model request fees" on public.model_request_fees
  for select to anon, authenticated using (true);
grant select on public.model_request_fees to anon, authenticated;

insert into public.model_request_fees (provider, model, search_context_size, micro_usd_per_request, effective_from)
select 'perplexity', model, size, fee, '2026-01-01T00:00:00Z'
  from (values ('sonar', 'low', 5000), ('sonar', 'medium', 8000), ('sonar', 'high', 12000),
               ('sonar-pro', 'low', 6000), ('sonar-pro', 'medium', 10000), ('sonar-pro', 'high', 14000),
               ('sonar-reasoning-pro', 'low', 6000), ('sonar-reasoning-pro', 'medium', 10000),
               ('sonar-reasoning-pro', 'high', 14000)) as f (model, size, fee);

alter table public.subscription_plans
  add column max_input_tokens integer not null default 32000
    constraint max_input_tokens_is_positive check (max_input_tokens > 0);
comment on column public.subscription_plans.max_input_tokens is
  'The input a call is held for when the gateway cannot measure it (a remote file or image, a file id): billed '
  'afterwards at what the provider reports.';
update public.subscription_plans set max_input_tokens = case id when 'free' then 32000 when 'pro' then 200000
                                                               when 'max' then 1000000 else max_input_tokens end;

alter table public.token_usage
  add column cache_write_tokens bigint not null default 0
    constraint cache_write_tokens_is_not_negative check (cache_write_tokens >= 0),
  add column reasoning_tokens bigint not null default 0
    constraint reasoning_tokens_is_within_output check (reasoning_tokens between 0 and output_tokens),
  add column request_fee_micro_usd bigint not null default 0
    constraint request_fee_is_not_negative check (request_fee_micro_usd >= 0),
  add column search_context_size text
    constraint search_context_size_is_known check (search_context_size in ('low', 'medium', 'high')),
  add column rate_id bigint references public.platform_token_rates (id),
  add constraint cached_and_written_are_within_input check (cached_input_tokens + cache_write_tokens <= input_tokens);
create index token_usage_rate_id_idx on public.token_usage (rate_id);
comment on column public.token_usage.debited_tokens is
  'Platform tokens the call was billed: ceil(its exact cost, tokens and request fee, / the platform rate in force '
  'when it was admitted). cost_micro_usd is that cost rounded up to a micro-dollar.';
comment on column public.token_usage.cache_write_tokens is 'Input tokens written to the prompt cache (part of input_tokens).';
comment on column public.token_usage.reasoning_tokens is 'Output tokens spent reasoning (part of output_tokens).';
comment on table public.token_usage is
  'One row per gateway call (unique request_id, so a retried write is a no-op): tokens from the provider''s own '
  'usage fields (estimated, and flagged, where it reported none or less than was delivered), the cost at the price '
  'in force when the call was admitted, and the platform tokens it was billed at the rate then in force. Users '
  'read their own.';

alter table public.token_balances drop constraint balance_is_not_negative;
comment on table public.token_balances is
  'The user''s spendable platform tokens. Changed only by the ledger functions, always in the same transaction as '
  'the token_transactions row of the change. It goes below zero only when settling calls already admitted costs '
  'more than was left (the overage is a ledger row like any other); no call is admitted while it is <= 0, and the '
  'next credit pays the debt first.';
alter table public.token_transactions drop constraint balance_after_is_not_negative;
alter table public.token_transactions add constraint balance_after_is_negative_only_after_usage_or_credit
  check (balance_after >= 0 or reason = 'usage' or delta > 0);

alter table private.usage_outbox
  add column dead_at timestamptz,
  add column dead_reason text;
comment on column private.usage_outbox.dead_at is
  'When the record was given up as one that can never apply (malformed, or failing after 10 tries): an operator '
  'alert was raised and its hold released; private.replay_usage_dead_letter applies it once corrected.';
drop index private.usage_outbox_waiting_idx;
create index usage_outbox_waiting_idx on private.usage_outbox (next_attempt_at) where applied_at is null and dead_at is null;

-- ---------------------------------------------------------------------------------------- pricing
-- Inlinable (no SET clause; every name in full): the settlement's set-based path and admission call them.
create function private._call_cost_micro_usd(
  p_price public.model_pricing, p_input bigint, p_cached bigint, p_cache_write bigint, p_output bigint,
  p_reasoning bigint
) returns numeric
language sql immutable
as $$
  select (
      greatest(p_input - p_cached - p_cache_write, 0)::numeric * p_price.input_micro_usd_per_mtok
      + p_cached::numeric * coalesce(p_price.cached_input_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok)
      + p_cache_write::numeric * coalesce(p_price.cache_write_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok)
      + greatest(p_output - p_reasoning, 0)::numeric * p_price.output_micro_usd_per_mtok
      + p_reasoning::numeric * coalesce(p_price.reasoning_micro_usd_per_mtok, p_price.output_micro_usd_per_mtok)
    ) / 1000000
$$;
comment on function private._call_cost_micro_usd(public.model_pricing, bigint, bigint, bigint, bigint, bigint) is
  'The exact cost in micro-dollars (not rounded) of a call''s tokens at a price row: input, cached input, cache '
  'writes, output and reasoning each at its own price (cached, cache-write and reasoning prices default to input '
  'and output).';

create function private._platform_tokens(p_cost_micro_usd numeric, p_rate_micro_usd_per_mtok bigint) returns bigint
language sql immutable
as $$ select ceil(p_cost_micro_usd * 1000000 / p_rate_micro_usd_per_mtok)::bigint $$;
comment on function private._platform_tokens(numeric, bigint) is
  'Platform tokens a cost is billed: ceil(cost / rate). The one place the unit is defined.';

create function private._charge(
  p_provider text, p_model text, p_at timestamptz, p_input bigint, p_cached bigint, p_cache_write bigint,
  p_output bigint, p_reasoning bigint, p_search_context_size text
) returns table (pricing_id bigint, rate_id bigint, cost_micro_usd bigint, request_fee_micro_usd bigint,
                 platform_tokens bigint)
language sql stable
as $$
  select (p.price).id, (r.rate).id,
         ceil(private._call_cost_micro_usd(p.price, p_input, p_cached, p_cache_write, p_output, p_reasoning)
              + coalesce(f.fee, 0))::bigint,
         coalesce(f.fee, 0),
         case when (p.price).id is null then p_input + p_output
              else private._platform_tokens(
                private._call_cost_micro_usd(p.price, p_input, p_cached, p_cache_write, p_output, p_reasoning)
                + coalesce(f.fee, 0), (r.rate).micro_usd_per_mtok) end
    from (select 1) one
    left join lateral (
      -- The price in force at p_at; if it was closed retroactively, the model's newest price.
      select m as price from public.model_pricing m
       where m.provider = p_provider and m.model = p_model
       order by (m.effective_from <= p_at and (m.effective_to is null or m.effective_to > p_at)) desc,
                m.effective_from desc
       limit 1
    ) p on true
    left join lateral (
      select t as rate from public.platform_token_rates t
       order by (t.effective_from <= p_at and (t.effective_to is null or t.effective_to > p_at)) desc,
                t.effective_from desc
       limit 1
    ) r on true
    left join lateral (
      select e.micro_usd_per_request as fee from public.model_request_fees e
       where e.provider = p_provider and e.model = p_model and e.search_context_size = p_search_context_size
       order by (e.effective_from <= p_at and (e.effective_to is null or e.effective_to > p_at)) desc,
                e.effective_from desc
       limit 1
    ) f on true
$$;
comment on function private._charge(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) is
  'What a call is billed: the price, rate and request fee (for the search context size of a call that searched; '
  'none when p_search_context_size is null) in force at p_at (when the call was admitted; a price '
  'closed retroactively falls back to the model''s newest), the cost in micro-dollars (rounded up), and the '
  'platform tokens ceil((cost + fee) / rate). A model that never had a price (admission refuses those) is billed '
  'its raw tokens, one platform token each, with pricing_id null. Inlinable.';

create function private._hold_tokens(
  p_price public.model_pricing, p_rate_micro_usd_per_mtok bigint, p_input_estimate bigint, p_max_output bigint,
  p_choices integer, p_request_fee_micro_usd bigint
) returns bigint
language sql immutable
as $$
  select private._platform_tokens(
    (greatest(p_input_estimate, 0)::numeric
       * greatest(p_price.input_micro_usd_per_mtok,
                  coalesce(p_price.cache_write_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok))
     + greatest(p_max_output, 0)::numeric * greatest(coalesce(p_choices, 1), 1)
       * greatest(p_price.output_micro_usd_per_mtok,
                  coalesce(p_price.reasoning_micro_usd_per_mtok, p_price.output_micro_usd_per_mtok))) / 1000000
    + coalesce(p_request_fee_micro_usd, 0),
    p_rate_micro_usd_per_mtok)
$$;
comment on function private._hold_tokens(public.model_pricing, bigint, bigint, bigint, integer, bigint) is
  'The most a call can cost, in platform tokens: its input estimate at the dearer of the input and cache-write '
  'prices, its max output for every choice at the dearer of the output and reasoning prices, and its request '
  'fee. The gateway''s lease book computes the same from the prices gateway_lease returns (a table-driven test '
  'holds the two together).';

-- ----------------------------------------------------------------------------------------- ledger
create or replace function private.update_user_token_balance(
  p_user_id uuid,
  p_delta bigint,
  p_reason text,
  p_reference text,
  p_metadata jsonb default '{}'
) returns public.token_transactions
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_balance bigint;
  v_row public.token_transactions;
begin
  if p_delta is null or p_delta = 0 then
    raise exception 'delta must be a non-zero number of tokens' using errcode = '22023';
  end if;
  if p_reference is null or p_reference !~ '\S' then
    raise exception 'a reference is required' using errcode = '22023';
  end if;

  -- Lock order: the user row (key share: deleting the user waits rather than deadlocks), then the balance
  -- row, which serializes every change of this user's balance.
  perform 1 from public.users where id = p_user_id for key share;
  select balance into v_balance from public.token_balances where user_id = p_user_id for update;
  if not found then
    raise exception 'unknown user %', p_user_id using errcode = 'PB404';
  end if;

  -- Idempotent on reference. Read after the lock: a concurrent call with the same reference has committed.
  select * into v_row from public.token_transactions where reference = p_reference;
  if found then
    if v_row.user_id <> p_user_id or v_row.delta <> p_delta then
      raise exception 'reference % was already used for another change', p_reference using errcode = 'PB409';
    end if;
    return v_row;
  end if;

  -- A credit always lands (paying a debt first); a debit never takes the balance below zero (only the gateway's
  -- settlement of calls already admitted may, and it does not come through here).
  if p_delta < 0 and v_balance + p_delta < 0 then
    raise exception 'insufficient token balance: % available, % requested', v_balance, -p_delta
      using errcode = 'PB402';
  end if;

  update public.token_balances set balance = v_balance + p_delta, updated_at = now() where user_id = p_user_id;
  insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
  values (p_user_id, p_delta, v_balance + p_delta, p_reason, p_reference, coalesce(p_metadata, '{}'))
  returning * into v_row;
  return v_row;
end;
$$;
comment on function private.update_user_token_balance(uuid, bigint, text, text, jsonb) is
  'Adds p_delta tokens (negative: a debit) to the user''s balance and appends the ledger row, atomically. '
  'Idempotent on p_reference: a repeat returns the original row and changes nothing (PB409 if the repeat '
  'differs). A credit always lands (on a negative balance it pays the debt first); a debit never takes the '
  'balance below zero (PB402). Safe under concurrency (row lock per user).';

-- ------------------------------------------------------------------------------------------- leases
drop function private.gateway_admit(uuid, text, text, text, bigint, integer, boolean, integer, integer);
drop function private.gateway_lease(uuid, text, text, text, bigint, integer, integer, integer, bigint, integer,
  bigint, boolean, boolean, integer);

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
  'and the rate (so the instance can hold its next calls from memory), what was granted, and the unreserved '
  'balance after it. p_have_*: what the instance already has; p_ahead: topping up before it is needed.';

create function private.gateway_admit(
  p_user_id uuid,
  p_provider text,
  p_model text,
  p_request_id text,
  p_input_estimate bigint,
  p_requested_output integer,
  p_check_limits boolean default true,
  p_choices integer default 1,
  p_hold_seconds integer default 900,
  p_input_unbounded boolean default false,
  p_search_context_size text default null
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
begin
  if exists (select 1 from private.token_holds h where h.request_id = p_request_id) then
    raise exception 'request % is already admitted', p_request_id using errcode = '23505';
  end if;
  select * into v_lease
    from private.gateway_lease(p_user_id => p_user_id, p_provider => p_provider, p_lease_id => p_request_id,
                               p_model => p_model, p_input_estimate => p_input_estimate,
                               p_requested_output => p_requested_output, p_choices => p_choices,
                               p_check_limits => p_check_limits, p_hold_seconds => p_hold_seconds,
                               p_input_unbounded => p_input_unbounded,
                               p_search_context_size => p_search_context_size);
  if v_lease.outcome = 'ok' then
    update private.token_holds h set pricing_id = v_lease.pricing_id where h.request_id = p_request_id;
  end if;
  return query select v_lease.outcome, v_lease.message, v_lease.plan, v_lease.max_output_tokens, v_lease.hold_tokens,
    v_lease.pricing_id, v_lease.requests_per_minute, v_lease.tokens_per_minute, v_lease.limit_value,
    case when v_lease.outcome = 'rate_limited' then 0 end, v_lease.limit_reset_at,
    case when v_lease.outcome in ('ok', 'payment_required') then v_lease.balance end;
end;
$$;
comment on function private.gateway_admit(uuid, text, text, text, bigint, integer, boolean, integer, integer, boolean,
  text) is
  'Admits one call: a lease of exactly that call (private.gateway_lease) under its own request id, with the price '
  'in force kept on the hold. Outcomes as gateway_lease''s; the gateway itself leases for several calls.';

-- ------------------------------------------------------------------------------------------ settlement
drop function private.gateway_settle_batch(jsonb, jsonb);
drop function private._settle_set(jsonb);
drop function private._settle_record(jsonb);
drop function private.gateway_settle(text, uuid, text, text, bigint, bigint, bigint, text, integer, integer, text,
  boolean, text, timestamptz);
drop function private._usage_records(jsonb);
drop function private._cost_micro_usd(public.model_pricing, bigint, bigint, bigint);

-- The gateway's usage records (JSON) as rows: what every settlement path reads. Inlinable.
create function private._usage_records(p_records jsonb)
returns table (
  request_id text, user_id uuid, provider text, model text, input_tokens bigint, cached_input_tokens bigint,
  cache_write_tokens bigint, output_tokens bigint, reasoning_tokens bigint, search_context_size text, status text,
  http_status integer, latency_ms integer, upstream_request_id text, tokens_estimated boolean, lease_id text,
  admitted_at timestamptz
)
language sql stable
as $$
  select r.request_id, r.user_id, r.provider, r.model,
         greatest(coalesce(r.input_tokens, 0), 0),
         least(greatest(coalesce(r.cached_input_tokens, 0), 0), greatest(coalesce(r.input_tokens, 0), 0)),
         least(greatest(coalesce(r.cache_write_tokens, 0), 0),
               greatest(coalesce(r.input_tokens, 0), 0)
                 - least(greatest(coalesce(r.cached_input_tokens, 0), 0), greatest(coalesce(r.input_tokens, 0), 0))),
         greatest(coalesce(r.output_tokens, 0), 0),
         least(greatest(coalesce(r.reasoning_tokens, 0), 0), greatest(coalesce(r.output_tokens, 0), 0)),
         r.search_context_size, r.status, r.http_status, r.latency_ms, r.upstream_request_id,
         coalesce(r.tokens_estimated, false), r.lease_id, coalesce(r.admitted_at, now())
    from jsonb_to_recordset(p_records) as r(
      request_id text, user_id uuid, provider text, model text, input_tokens bigint, cached_input_tokens bigint,
      cache_write_tokens bigint, output_tokens bigint, reasoning_tokens bigint, search_context_size text,
      status text, http_status integer, latency_ms integer, upstream_request_id text, tokens_estimated boolean,
      lease_id text, admitted_at timestamptz)
$$;
comment on function private._usage_records(jsonb) is
  'The gateway''s usage records (JSON) as rows, with token counts made consistent (non-negative; cached and '
  'cache-write within input, reasoning within output) and admitted_at defaulting to now. A record whose counts '
  'are not whole numbers fails here (the gateway normalises them before sending). Inlinable.';

create function private.gateway_settle(p_record jsonb) returns public.token_usage
language plpgsql
set search_path = ''
as $$
declare
  v_r record;
  v_charge record;
  v_usage public.token_usage;
  v_balance bigint;
  v_held bigint;
  v_hold_amount bigint;
  v_lease bigint;
  v_from_lease bigint;
begin
  -- Never queue behind a lock for long: a settlement that cannot proceed goes to the outbox instead.
  perform set_config('lock_timeout', '3s', true);
  select * into strict v_r from private._usage_records(jsonb_build_array(p_record));
  -- Lock order as everywhere: the user row (key share, so a concurrent deletion of the user waits rather than
  -- deadlocks), then the balance row, which serializes this user's settlements (and a repeat of this one).
  perform 1 from public.users where id = v_r.user_id for key share;
  select b.balance, b.held into v_balance, v_held from public.token_balances b where b.user_id = v_r.user_id for update;
  if not found then
    raise exception 'unknown user %', v_r.user_id using errcode = 'PB404';
  end if;
  select * into v_usage from public.token_usage where request_id = v_r.request_id;
  if found then
    if v_usage.user_id <> v_r.user_id then
      raise exception 'request % was settled for another user', v_r.request_id using errcode = 'PB409';
    end if;
    -- Already settled: a retried write is a no-op, but a hold parked for it (an outbox copy) goes back.
    perform private._release_hold(v_r.request_id);
    return v_usage;
  end if;

  select * into v_charge from private._charge(v_r.provider, v_r.model, v_r.admitted_at, v_r.input_tokens,
    v_r.cached_input_tokens, v_r.cache_write_tokens, v_r.output_tokens, v_r.reasoning_tokens, v_r.search_context_size);

  -- A hold of its own: a call admitted on its own (gateway_admit), or what a parked call used, moved out of its
  -- lease when it was parked (enqueue_usage). All of it goes back.
  delete from private.token_holds h where h.request_id = v_r.request_id returning h.amount into v_hold_amount;
  if v_hold_amount is null and v_r.lease_id is not null then
    -- A call admitted under a lease: what it cost comes off the lease (the rest stays leased for later calls).
    select h.amount into v_lease from private.token_holds h
     where h.request_id = v_r.lease_id and h.user_id = v_r.user_id for update;
    v_from_lease := least(v_charge.platform_tokens, coalesce(v_lease, 0));
    if v_from_lease = v_lease then
      delete from private.token_holds h where h.request_id = v_r.lease_id;
    elsif v_from_lease > 0 then
      update private.token_holds h set amount = h.amount - v_from_lease where h.request_id = v_r.lease_id;
    end if;
    v_held := greatest(v_held - v_from_lease, 0);
  end if;
  if v_hold_amount is not null then
    v_held := greatest(v_held - v_hold_amount, 0);
  end if;

  -- Debit what the call cost, in full (usage beyond the hold takes the balance below zero: never written off),
  -- and release the hold, in one update; the ledger row goes with it.
  update public.token_balances
     set held = v_held, balance = v_balance - v_charge.platform_tokens,
         updated_at = case when v_charge.platform_tokens > 0 then now() else updated_at end
   where user_id = v_r.user_id;
  if v_charge.platform_tokens > 0 then
    insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
    values (v_r.user_id, -v_charge.platform_tokens, v_balance - v_charge.platform_tokens, 'usage',
            'usage:' || v_r.request_id,
            jsonb_build_object('provider', v_r.provider, 'model', v_r.model, 'cost_micro_usd', v_charge.cost_micro_usd));
  end if;

  insert into public.token_usage (
    request_id, user_id, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
    reasoning_tokens, cost_micro_usd, request_fee_micro_usd, search_context_size, pricing_id, rate_id, price_missing,
    tokens_estimated, debited_tokens, status, http_status, latency_ms, upstream_request_id)
  values (
    v_r.request_id, v_r.user_id, v_r.provider, v_r.model, v_r.input_tokens, v_r.cached_input_tokens,
    v_r.cache_write_tokens, v_r.output_tokens, v_r.reasoning_tokens,
    case when v_charge.pricing_id is not null then v_charge.cost_micro_usd end, v_charge.request_fee_micro_usd,
    v_r.search_context_size, v_charge.pricing_id, v_charge.rate_id, v_charge.pricing_id is null, v_r.tokens_estimated,
    v_charge.platform_tokens, v_r.status, v_r.http_status, v_r.latency_ms, v_r.upstream_request_id)
  returning * into v_usage;

  if v_charge.pricing_id is null then
    perform private._alert_unpriced_model(v_r.provider, v_r.model);
  end if;
  return v_usage;
end;
$$;
comment on function private.gateway_settle(jsonb) is
  'Settles a gateway call (a usage record) once per request_id, atomically: debits its full cost in platform '
  'tokens (private._charge at the price and rate in force when it was admitted; the balance may go below zero) '
  'and writes the token_usage row. A call admitted on its own releases its hold; one admitted under a lease '
  'takes what it cost off that lease. A model that never had a price is billed its raw tokens and alerts '
  'operators. A repeat returns the existing row and changes nothing.';

create function private._alert_unpriced_model(p_provider text, p_model text) returns void
language sql
set search_path = ''
as $$
  insert into private.admin_alerts (kind, user_id, details, dedupe_key)
  values ('unpriced_model', null, jsonb_build_object('provider', p_provider, 'model', p_model),
          'unpriced_model:' || p_provider || ':' || p_model || ':' || to_char(now(), 'YYYY-MM-DD'))
  on conflict (dedupe_key) do nothing
$$;
comment on function private._alert_unpriced_model(text, text) is
  'The operator alert for a call settled without a price (once per model per day).';

create function private._settle_set(p_records jsonb) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_ok boolean;
  v_unpriced integer;
begin
  -- Only the usual batch: calls admitted under leases, each settled for the first time. Anything else goes
  -- record by record (gateway_settle).
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

  -- One statement, so the charges are computed once and every part sees the balances before the batch: the
  -- ledger (balance_after in gateway_settle's order), what the calls cost off their leases (a lease used up is
  -- deleted) and off the balance, the usage rows, and an alert for a model that never had a price.
  with charges as (
    select r.*, c.pricing_id, c.rate_id, c.cost_micro_usd, c.request_fee_micro_usd, c.platform_tokens
      from private._usage_records(p_records) r
     cross join lateral private._charge(r.provider, r.model, r.admitted_at, r.input_tokens, r.cached_input_tokens,
                                        r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
                                        r.search_context_size) c
  ), ledger as (
    insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
    select c.user_id, -c.platform_tokens,
           b.balance - sum(c.platform_tokens) over (partition by c.user_id order by c.request_id rows unbounded preceding),
           'usage', 'usage:' || c.request_id,
           jsonb_build_object('provider', c.provider, 'model', c.model, 'cost_micro_usd', c.cost_micro_usd)
      from charges c join public.token_balances b on b.user_id = c.user_id
     where c.platform_tokens > 0
     order by c.user_id, c.request_id
  ), per_lease as (
    select c.user_id, c.lease_id, sum(c.platform_tokens) as used from charges c group by 1, 2
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
    select c.user_id, sum(c.platform_tokens) as used from charges c group by 1
  ), balances as (
    update public.token_balances b
       set balance = b.balance - pu.used,
           held = greatest(b.held - coalesce(t.taken, 0), 0),
           updated_at = case when pu.used > 0 then now() else b.updated_at end
      from per_user pu left join taken t on t.user_id = pu.user_id
     where b.user_id = pu.user_id
  ), usage as (
    insert into public.token_usage (
      request_id, user_id, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
      reasoning_tokens, cost_micro_usd, request_fee_micro_usd, search_context_size, pricing_id, rate_id,
      price_missing, tokens_estimated, debited_tokens, status, http_status, latency_ms, upstream_request_id)
    select c.request_id, c.user_id, c.provider, c.model, c.input_tokens, c.cached_input_tokens, c.cache_write_tokens,
           c.output_tokens, c.reasoning_tokens, case when c.pricing_id is not null then c.cost_micro_usd end,
           c.request_fee_micro_usd, c.search_context_size, c.pricing_id, c.rate_id, c.pricing_id is null,
           c.tokens_estimated, c.platform_tokens, c.status, c.http_status, c.latency_ms, c.upstream_request_id
      from charges c
     order by c.user_id, c.request_id
    returning provider, model, pricing_id
  )
  select count(*) into v_unpriced
    from (select private._alert_unpriced_model(u.provider, u.model)
            from (select distinct provider, model from usage where pricing_id is null) u) alerts;
  return true;
end;
$$;
comment on function private._settle_set(jsonb) is
  'gateway_settle for a whole batch in a few statements, for the usual batch only (calls admitted under leases, '
  'settled for the first time): returns false, changing nothing, for any other. Same rows and amounts as '
  'settling the records one by one in (user, request) order.';

create function private.gateway_settle_batch(p_records jsonb, p_close_leases jsonb default '[]')
returns table (request_id text, error text, cost_tokens bigint, balance bigint)
language plpgsql
set search_path = ''
as $$
declare
  v_items jsonb[];
  v_kinds text[];
  v_all_done boolean := false;
  v_set boolean;
  v_record jsonb;
  v_ids text[] := '{}';
  v_errors text[] := '{}';
  v_settles boolean[] := '{}';
begin
  -- Before gateway_settle is first compiled in this session: compiling it opens the tables its variables are
  -- typed by, and that wait must time out too (a blocked settlement goes to the outbox, it never hangs).
  perform set_config('lock_timeout', '3s', true);
  -- In user order, so concurrent batches lock balance rows in the same order (no deadlocks); a user's calls
  -- before the leases they were admitted under are given back.
  select coalesce(array_agg(items.record order by items.record ->> 'user_id', items.settles_first,
                                                  items.record ->> 'request_id', items.record ->> 'lease_id'), '{}'),
         coalesce(array_agg(items.kind order by items.record ->> 'user_id', items.settles_first,
                                                items.record ->> 'request_id', items.record ->> 'lease_id'), '{}')
    into v_items, v_kinds
    from (select value as record, 'settle' as kind, 0 as settles_first from jsonb_array_elements(p_records)
          union all
          select value, 'close_lease', 1 from jsonb_array_elements(coalesce(p_close_leases, '[]'))) items;

  -- The usual case at once, in one subtransaction: set-based when it can (_settle_set), else call by call.
  begin
    v_set := private._settle_set(p_records);
    for i in 1 .. cardinality(v_items) loop
      if v_kinds[i] = 'close_lease' then
        perform private.gateway_release(v_items[i] ->> 'lease_id');
      elsif not v_set then
        perform private.gateway_settle(v_items[i]);
      end if;
    end loop;
    v_all_done := true;
  exception when others then
    v_all_done := false; -- all of it undone: again one by one, to park only what fails
  end;

  for i in 1 .. cardinality(v_items) loop
    v_record := v_items[i];
    v_ids := v_ids || coalesce(v_record ->> 'request_id', v_record ->> 'lease_id');
    v_settles := v_settles || (v_kinds[i] = 'settle');
    v_errors := v_errors || null::text;
    if not v_all_done then
      begin
        if v_kinds[i] = 'settle' then
          perform private.gateway_settle(v_record);
        else
          perform private.gateway_release(v_ids[i]);
        end if;
      exception when others then
        v_errors[i] := sqlstate || ': ' || sqlerrm;
        if v_kinds[i] = 'settle' then
          perform private.enqueue_usage(v_record, v_errors[i]); -- keeps what the call cost held for it
        end if;
      end;
    end if;
  end loop;
  -- Each item with its error; a settled call with what it cost and its user's balance after the whole batch, for
  -- the instance's lease book.
  return query
    select x.id, x.error, t.debited_tokens, b.balance
      from unnest(v_ids, v_errors, v_settles) as x (id, error, settles)
      left join public.token_usage t on x.settles and x.error is null and t.request_id = x.id
      left join public.token_balances b on b.user_id = t.user_id;
end;
$$;
comment on function private.gateway_settle_batch(jsonb, jsonb) is
  'Settles many gateway calls in one transaction (all at once, or, when one fails, each in its own '
  'subtransaction): a record whose settlement fails is parked in the usage outbox instead (what it cost stays '
  'held for it, see enqueue_usage). Then gives back the leases in p_close_leases ([{lease_id, user_id}]; one that '
  'cannot be given back now expires with its hold). Returns each request or lease id with its error (null when '
  'done) and, for a settled call, what it cost in platform tokens and its user''s balance after the batch.';

-- ----------------------------------------------------------------------------------------------- outbox
create or replace function private.enqueue_usage(p_payload jsonb, p_error text default null) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_lease private.token_holds;
  v_keep bigint;
begin
  if exists (select 1 from public.token_usage t where t.request_id = p_payload ->> 'request_id') then
    return; -- settled already (a copy from Redis or a log of a call whose settlement did commit)
  end if;
  insert into private.usage_outbox (request_id, payload, last_error)
  values (p_payload ->> 'request_id', p_payload, p_error)
  on conflict (request_id) do nothing;
  if not found or p_payload ->> 'lease_id' is null then
    return;
  end if;
  -- A call admitted under a lease: what it cost moves out of the lease into a hold of its own, so that giving
  -- the lease back does not free it before the outbox settles the call (gateway_settle releases that hold).
  select * into v_lease from private.token_holds h
   where h.request_id = p_payload ->> 'lease_id' and h.user_id::text = p_payload ->> 'user_id' for update;
  if v_lease.request_id is null then
    return;
  end if;
  begin
    select least(v_lease.amount, c.platform_tokens) into v_keep
      from private._usage_records(jsonb_build_array(p_payload)) r
     cross join lateral private._charge(r.provider, r.model, r.admitted_at, r.input_tokens, r.cached_input_tokens,
                                        r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
                                        r.search_context_size) c;
  exception when others then
    v_keep := v_lease.amount; -- a record that cannot be read keeps the whole lease until it is looked at
  end;
  if coalesce(v_keep, 0) <= 0 then
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
  'call admitted under a lease cost moves into a hold of its own (kept a day at least) until it is settled.';

create or replace function private.process_usage_outbox(p_limit integer default 100) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_row private.usage_outbox;
  v_done integer := 0;
  v_error text;
  v_state text;
begin
  perform set_config('lock_timeout', '3s', true); -- see gateway_settle_batch
  for v_row in
    select * from private.usage_outbox
     where applied_at is null and dead_at is null and next_attempt_at <= now()
     order by id limit p_limit
     for update skip locked
  loop
    begin
      perform private.gateway_settle(v_row.payload);
      update private.usage_outbox set applied_at = now(), attempts = attempts + 1, last_error = null
       where id = v_row.id;
      v_done := v_done + 1;
    exception when others then
      v_state := sqlstate;
      v_error := sqlstate || ': ' || sqlerrm;
      if not exists (select 1 from public.users where id = (v_row.payload ->> 'user_id')::uuid) then
        -- The user was deleted (with all their usage): nothing left to record this against.
        update private.usage_outbox
           set attempts = attempts + 1, applied_at = now(), last_error = 'discarded: the user no longer exists'
         where id = v_row.id;
      elsif v_state like '22%' or v_row.attempts + 1 >= 10 then
        -- Malformed (a data exception never goes away), or failing for too long: given up, loudly.
        perform private._dead_letter_usage(v_row, v_error);
      else
        update private.usage_outbox
           set attempts = attempts + 1, last_error = v_error,
               next_attempt_at = now() + least(interval '1 minute' * power(2, attempts), interval '1 hour')
         where id = v_row.id;
      end if;
    end;
  end loop;
  return v_done;
end;
$$;
comment on function private.process_usage_outbox(integer) is
  'pg_cron (aie_usage_outbox): applies waiting usage records through gateway_settle, with backoff on failure; a '
  'record that can never apply (a data exception, or 10 failed tries) is dead-lettered. Returns how many it applied.';

create function private._dead_letter_usage(p_row private.usage_outbox, p_error text) returns void
language plpgsql
set search_path = ''
as $$
begin
  update private.usage_outbox
     set attempts = attempts + 1, last_error = p_error, dead_at = now(), dead_reason = p_error
   where id = p_row.id;
  -- Its hold (what it cost, moved out of its lease when it was parked) goes back: the user is not blocked by a
  -- record only an operator can mend.
  perform private.gateway_release(p_row.request_id);
  insert into private.admin_alerts (kind, user_id, details, dedupe_key)
  values ('usage_dead_letter',
          case when exists (select 1 from public.users where id::text = p_row.payload ->> 'user_id')
               then (p_row.payload ->> 'user_id')::uuid end,
          jsonb_build_object('request_id', p_row.request_id, 'error', p_error, 'attempts', p_row.attempts + 1),
          'usage_dead_letter:' || p_row.request_id)
  on conflict (dedupe_key) do nothing;
end;
$$;
comment on function private._dead_letter_usage(private.usage_outbox, text) is
  'Gives a usage record up: marks it dead with its reason, releases its hold, and raises an operator alert.';

create function private.replay_usage_dead_letter(p_request_id text, p_payload jsonb default null)
returns public.token_usage
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.usage_outbox;
  v_usage public.token_usage;
begin
  select * into v_row from private.usage_outbox where request_id = p_request_id and dead_at is not null for update;
  if not found then
    raise exception 'usage record % is not a dead letter', p_request_id using errcode = 'PB404';
  end if;
  if p_payload is not null and p_payload ->> 'request_id' is distinct from p_request_id then
    raise exception 'the corrected record must keep request id %', p_request_id using errcode = '22023';
  end if;
  v_usage := private.gateway_settle(coalesce(p_payload, v_row.payload));
  update private.usage_outbox
     set payload = coalesce(p_payload, payload), applied_at = now(), dead_at = null, last_error = null,
         attempts = attempts + 1
   where id = v_row.id;
  update private.admin_alerts set acknowledged_at = now()
   where dedupe_key = 'usage_dead_letter:' || p_request_id and acknowledged_at is null;
  return v_usage;
end;
$$;
comment on function private.replay_usage_dead_letter(text, jsonb) is
  'Operator: settles a dead-lettered usage record (optionally corrected: same request id), once, and '
  'acknowledges its alert. Raises if it still cannot apply (nothing changes then).';
grant execute on function private.replay_usage_dead_letter(text, jsonb) to service_role;

drop function private._tokens_of(jsonb);

-- ----------------------------------------------------------------------------------------- alerts
create or replace function private.check_usage_alerts(p_spike_factor numeric default 10, p_spike_floor bigint default 50000)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer := 0;
  v_added integer;
begin
  -- Allowance thresholds per billing period, in platform tokens billed: the live subscription's current monthly
  -- period, else the UTC month.
  with periods as (
    select u.id as user_id, p.monthly_token_allowance as allowance,
           case when s.billing_period = 'monthly' and s.current_period_start is not null
                     and private._subscription_is_live(s.status)
                then s.current_period_start else date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' end
             as period_start
      from public.users u
      join public.subscription_plans p on p.id = u.plan
      join public.user_settings st on st.user_id = u.id and st.usage_alerts -- the user's opt-out
      left join public.user_subscriptions s on s.user_id = u.id and s.is_current
     where p.monthly_token_allowance > 0
  ), used as (
    select pr.user_id, pr.allowance, pr.period_start, sum(t.debited_tokens) as used
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
           sum(debited_tokens) filter (where created_at >= now() - interval '1 hour') as last_hour,
           sum(debited_tokens) filter (where created_at < now() - interval '1 hour') as trailing_week
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
  'pg_cron (aie_usage_alerts): one usage_alerts row per user per threshold (50/80/100 % of the monthly allowance, '
  'in platform tokens billed) per billing period (the live subscription''s, else the UTC month), and an admin '
  'alert when a user''s last hour exceeds p_spike_factor × their trailing hourly average (and p_spike_floor '
  'platform tokens). Idempotent: running it twice adds nothing. Returns rows added.';

create or replace view private.gateway_status as
select
  (select count(*) from private.usage_outbox where applied_at is null and dead_at is null) as usage_outbox_waiting,
  (select min(created_at) from private.usage_outbox where applied_at is null and dead_at is null) as usage_outbox_oldest,
  (select count(*) from private.usage_outbox where applied_at is null and dead_at is null and attempts >= 5)
    as usage_outbox_stuck,
  (select count(*) from private.token_holds) as holds_active,
  (select count(*) from private.token_holds where expires_at < now()) as holds_expired,
  (select count(*) from public.token_usage where price_missing and created_at > now() - interval '1 day')
    as unpriced_calls_24h,
  (select count(*) from private.admin_alerts where acknowledged_at is null) as admin_alerts_open,
  (select count(*) from private.usage_outbox where dead_at is not null and applied_at is null) as usage_dead_letters,
  (select count(*) from public.token_balances where balance < 0) as balances_in_debt;
comment on view private.gateway_status is
  'For operators: usage records waiting in the outbox (stuck ones, dead letters), holds in flight or expired, '
  'unpriced calls of the last day, unacknowledged admin alerts, balances in debt. (Records parked in Redis while '
  'the database was down: LLEN aie:usage_outbox.)';
