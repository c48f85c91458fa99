-- Billing: plans, subscriptions, token packs, the token ledger, and the Stripe webhook pipeline.
--   public   subscription_plans, token_packs (catalog, readable by everyone), user_subscriptions,
--            token_balances, token_transactions (append-only ledger), notifications (the user's own)
--   private  stripe_webhook_events, failed_webhook_events (dead letters), webhook_audit_log
--   ledger   private.update_user_token_balance(user, delta, reason, reference, metadata)
--   webhook  private.handle_stripe_event(event, request_id, source_ip) → process_stripe_event(id) →
--            _apply_stripe_event(event); replay_failed_webhook_event(id); retry_failed_webhook_events()
--   cron     aie_stripe_webhook_retry every 5 minutes
-- Amounts are integers: tokens, cents. Custom SQLSTATEs are listed in docs/error_codes.md.

-- ------------------------------------------------------------------------------------------ tables
create table public.subscription_plans (
  id text primary key constraint id_is_snake_case check (id ~ '^[a-z][a-z0-9_]*$'),
  name text not null,
  description text,
  monthly_token_allowance bigint not null constraint allowance_is_not_negative check (monthly_token_allowance >= 0),
  price_monthly_cents integer constraint price_monthly_is_not_negative check (price_monthly_cents >= 0),
  price_yearly_cents integer constraint price_yearly_is_not_negative check (price_yearly_cents >= 0),
  stripe_price_monthly text
    constraint subscription_plans_stripe_price_monthly_is_unique unique
    constraint stripe_price_monthly_looks_like_one check (stripe_price_monthly ~ '^price_[A-Za-z0-9_]+$'),
  stripe_price_yearly text
    constraint subscription_plans_stripe_price_yearly_is_unique unique
    constraint stripe_price_yearly_looks_like_one check (stripe_price_yearly ~ '^price_[A-Za-z0-9_]+$'),
  requests_per_minute integer not null constraint rpm_is_positive check (requests_per_minute > 0),
  tokens_per_minute integer not null constraint tpm_is_positive check (tokens_per_minute > 0),
  max_output_tokens integer not null constraint max_output_tokens_is_positive check (max_output_tokens > 0),
  allowed_models text[] not null default '{}',
  max_hired_employees integer constraint max_hired_employees_is_positive check (max_hired_employees > 0),
  sort_order integer not null default 0,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.subscription_plans is
  'The plans (free, pro, max): display prices, the Stripe price id per billing period (configuration: set '
  'per environment), the monthly token allowance and the limits other features read. Readable by everyone.';
comment on column public.subscription_plans.allowed_models is
  'Model ids this plan may call through the LLM gateway; empty means every model (unpriced ones are metered '
  'with a null cost and flagged for an operator).';

create table public.token_packs (
  id text primary key constraint id_is_snake_case check (id ~ '^[a-z][a-z0-9_]*$'),
  name text not null,
  description text,
  tokens bigint not null constraint tokens_is_positive check (tokens > 0),
  price_cents integer not null constraint price_is_positive check (price_cents > 0),
  currency text not null default 'usd' constraint currency_is_iso4217 check (currency ~ '^[a-z]{3}$'),
  sort_order integer not null default 0,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.token_packs is
  'One-time token packs sold through Stripe Checkout (payment mode). Readable by everyone.';

create table public.user_subscriptions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  plan_id text not null references public.subscription_plans (id),
  billing_period text constraint billing_period_is_known check (billing_period in ('monthly', 'yearly')),
  status text not null constraint status_is_known check (status in (
    'active', 'trialing', 'past_due', 'canceled', 'unpaid', 'incomplete', 'incomplete_expired', 'paused'
  )),
  stripe_subscription_id text not null
    constraint user_subscriptions_stripe_subscription_id_is_unique unique
    constraint stripe_subscription_id_looks_like_one check (stripe_subscription_id ~ '^sub_[A-Za-z0-9]+$'),
  stripe_customer_id text not null,
  stripe_price_id text,
  current_period_start timestamptz,
  current_period_end timestamptz,
  cancel_at_period_end boolean not null default false,
  canceled_at timestamptz,
  ended_at timestamptz,
  is_current boolean not null default true,
  stripe_updated_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.user_subscriptions is
  'One row per Stripe subscription of a user: at most one is_current per user, the rest is history. '
  'stripe_updated_at is the watermark: the created time of the newest Stripe event applied to the row, '
  'so an older event delivered later never overwrites newer state. Written by the webhook only.';

create table public.token_balances (
  user_id uuid primary key references public.users (id) on delete cascade,
  balance bigint not null default 0 constraint balance_is_not_negative check (balance >= 0),
  updated_at timestamptz not null default now()
);
comment on table public.token_balances is
  'The user''s spendable tokens. Changed only by the ledger functions (private.update_user_token_balance, and '
  'the gateway''s admit/settle for holds and usage), always in the same transaction as the token_transactions '
  'row of the change.';

create table public.token_transactions (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  delta bigint not null constraint delta_is_not_zero check (delta <> 0),
  balance_after bigint not null constraint balance_after_is_not_negative check (balance_after >= 0),
  reason text not null constraint reason_is_known check (reason in (
    'subscription_allowance', 'token_pack_purchase', 'token_pack_refund', 'usage', 'adjustment'
  )),
  reference text not null
    constraint token_transactions_reference_is_unique unique
    constraint reference_is_short check (char_length(reference) between 1 and 255),
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now()
);
comment on table public.token_transactions is
  'Append-only token ledger: every change of a balance, with the balance after it. reference is the external '
  'key of the change (Stripe invoice, payment intent, refund, LLM request), unique, so a replay is a no-op.';

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  kind text not null constraint kind_is_snake_case check (kind ~ '^[a-z][a-z0-9_]*$'),
  title text not null,
  body text,
  data jsonb not null default '{}',
  dedupe_key text constraint notifications_dedupe_key_is_unique unique,
  read_at timestamptz,
  created_at timestamptz not null default now()
);
comment on table public.notifications is
  'Messages for a user (payment failed, usage alerts, …). dedupe_key makes a notification from a replayed '
  'event appear once. The user reads them and marks them read.';

create table private.stripe_webhook_events (
  id text primary key constraint id_looks_like_an_event check (id ~ '^evt_[A-Za-z0-9_]+$'),
  type text not null,
  livemode boolean not null default false,
  stripe_created_at timestamptz not null,
  status text not null default 'received'
    constraint status_is_known check (status in ('received', 'processed', 'ignored', 'failed')),
  attempts integer not null default 0,
  last_error text,
  errors jsonb not null default '[]',
  payload jsonb not null,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  updated_at timestamptz not null default now()
);
comment on table private.stripe_webhook_events is
  'Every Stripe event once (by id): its payload and processing state (received, processed, ignored for '
  'types we do not handle, failed with attempts and last_error).';

create table private.failed_webhook_events (
  event_id text primary key references private.stripe_webhook_events (id) on delete cascade,
  type text not null,
  payload jsonb not null,
  errors jsonb not null default '[]',
  attempts integer not null,
  failed_at timestamptz not null default now(),
  replay_count integer not null default 0,
  last_replayed_at timestamptz,
  next_retry_at timestamptz,
  resolved_at timestamptz
);
comment on table private.failed_webhook_events is
  'Dead-letter queue: events whose processing failed 3 times, with their payload and every error. Replayed '
  'by private.replay_failed_webhook_event (operator) or the aie_stripe_webhook_retry job (backoff).';

create table private.webhook_audit_log (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  provider text not null default 'stripe',
  request_id text,
  source_ip inet,
  event_id text,
  event_type text,
  outcome text not null constraint outcome_is_known check (outcome in ('accepted', 'duplicate', 'rejected', 'failed')),
  http_status integer not null,
  reason text
);
comment on table private.webhook_audit_log is
  'Every webhook delivery, accepted or not, and why. service_role reads it; nobody updates it.';

-- ----------------------------------------------------------------------------------------- indexes
create index user_subscriptions_user_id_idx on public.user_subscriptions (user_id, created_at desc);
create unique index user_subscriptions_one_current_per_user on public.user_subscriptions (user_id) where is_current;
create index user_subscriptions_plan_id_idx on public.user_subscriptions (plan_id);
create index token_transactions_user_id_idx on public.token_transactions (user_id, created_at desc);
create index notifications_user_id_idx on public.notifications (user_id, created_at desc);
create index stripe_webhook_events_status_idx on private.stripe_webhook_events (status, updated_at)
  where status in ('received', 'failed');
create index failed_webhook_events_retry_idx on private.failed_webhook_events (next_retry_at)
  where resolved_at is null;
create index webhook_audit_log_received_at_idx on private.webhook_audit_log (received_at);
create index webhook_audit_log_event_id_idx on private.webhook_audit_log (event_id);

-- --------------------------------------------------------------------------------------- reference data
insert into public.subscription_plans
  (id, name, description, monthly_token_allowance, price_monthly_cents, price_yearly_cents,
   requests_per_minute, tokens_per_minute, max_output_tokens, max_hired_employees, sort_order)
values
  ('free', 'Free', 'Try the platform with a small monthly allowance.', 100000, 0, 0, 10, 20000, 1024, 1, 0),
  ('pro', 'Pro', 'For professionals running AI employees every day.', 5000000, 2900, 29000, 60, 200000, 8192, 10, 1),
  ('max', 'Max', 'For teams and heavy automation.', 25000000, 9900, 99000, 300, 1000000, 32768, 100, 2);

insert into public.token_packs (id, name, description, tokens, price_cents, sort_order) values
  ('pack_1m', '1M tokens', 'One million tokens, never expire.', 1000000, 1000, 0),
  ('pack_5m', '5M tokens', 'Five million tokens, never expire.', 5000000, 4500, 1),
  ('pack_20m', '20M tokens', 'Twenty million tokens, never expire.', 20000000, 16000, 2);

alter table public.users drop constraint plan_is_known;
alter table public.users add constraint plan_is_a_plan foreign key (plan) references public.subscription_plans (id);
create index users_plan_idx on public.users (plan);

-- Every user has a balance row (created with the user; backfilled for existing users).
insert into public.token_balances (user_id) select id from public.users on conflict do nothing;

-- ---------------------------------------------------------------------------------------- triggers
create trigger _100_timestamps before update on public.subscription_plans
  for each row execute function private.tg__set_updated_at();
create trigger _100_timestamps before update on public.token_packs
  for each row execute function private.tg__set_updated_at();
create trigger _100_timestamps before update on public.user_subscriptions
  for each row execute function private.tg__set_updated_at();
create trigger _100_timestamps before update on private.stripe_webhook_events
  for each row execute function private.tg__set_updated_at();

create function private.tg_users__create_balance() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.token_balances (user_id) values (new.id) on conflict do nothing;
  return new;
end;
$$;
comment on function private.tg_users__create_balance() is 'AFTER INSERT on public.users: the user''s zero balance row.';
create trigger _500_create_balance after insert on public.users
  for each row execute function private.tg_users__create_balance();

create function private.tg_token_transactions__append_only() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Deleting the user (GDPR erasure) cascades here; that is the only delete allowed.
  if tg_op = 'DELETE' and not exists (select 1 from public.users where id = old.user_id) then
    return old;
  end if;
  raise exception 'token_transactions is append-only' using errcode = 'PB405';
end;
$$;
comment on function private.tg_token_transactions__append_only() is
  'BEFORE UPDATE OR DELETE on token_transactions: refuses, except the cascade of a deleted user.';
create trigger _100_append_only before update or delete on public.token_transactions
  for each row execute function private.tg_token_transactions__append_only();

-- --------------------------------------------------------------------------------------------- RLS
alter table public.subscription_plans enable row level security;
alter table public.token_packs enable row level security;
alter table public.user_subscriptions enable row level security;
alter table public.token_balances enable row level security;
alter table public.token_transactions enable row level security;
alter table public.notifications enable row level security;
alter table private.stripe_webhook_events enable row level security;
alter table private.failed_webhook_events enable row level security;
alter table private.webhook_audit_log enable row level security;

create policy "Anyone can read active plans" on public.subscription_plans
  for select to anon, authenticated using (is_active);
create policy "Anyone can read active token packs" on public.token_packs
  for select to anon, authenticated using (is_active);
create policy "Users can read their own subscriptions" on public.user_subscriptions
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can read their own balance" on public.token_balances
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can read their own token transactions" on public.token_transactions
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can read their own notifications" on public.notifications
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can mark their own notifications read" on public.notifications
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- ------------------------------------------------------------------------------------------ ledger
create function private.update_user_token_balance(
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

  if v_balance + p_delta < 0 then
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
  'differs). Never takes the balance below zero (PB402). Safe under concurrency (row lock per user).';

-- ------------------------------------------------------------------------------- stripe: helpers
create function private._stripe_ts(p_epoch jsonb) returns timestamptz
language sql immutable
set search_path = ''
as $$ select case when p_epoch is null or jsonb_typeof(p_epoch) <> 'number' then null
                  else to_timestamp((p_epoch #>> '{}')::double precision) end $$;
comment on function private._stripe_ts(jsonb) is 'A Stripe epoch-seconds JSON number as timestamptz (null stays null).';

-- The user a Stripe object belongs to: our own metadata.user_id (set when we created the Checkout
-- Session) or client_reference_id, cross-checked against the customer id we stored; else by customer.
create function private._stripe_user(p_customer text, p_user_hint text) returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_customer text;
begin
  if p_user_hint is not null and p_user_hint ~ '^[0-9a-f-]{36}$' then
    select id, stripe_customer_id into v_user_id, v_customer from public.users where id = p_user_hint::uuid;
    if v_user_id is null then
      raise exception 'Stripe object names unknown user %', p_user_hint using errcode = 'PB404';
    end if;
    if p_customer is not null and v_customer is not null and v_customer <> p_customer then
      raise exception 'user % belongs to customer %, not %', v_user_id, v_customer, p_customer using errcode = 'PB409';
    end if;
    if v_customer is null and p_customer is not null then
      update public.users set stripe_customer_id = p_customer where id = v_user_id;
    end if;
    return v_user_id;
  end if;
  select id into v_user_id from public.users where stripe_customer_id = p_customer;
  if v_user_id is null then
    raise exception 'no user for Stripe customer %', p_customer using errcode = 'PB404';
  end if;
  return v_user_id;
end;
$$;
comment on function private._stripe_user(text, text) is
  'Resolves the user of a Stripe object; links the customer id on first sight; PB404/PB409 when it cannot.';

create function private._plan_for_price(p_price text, out plan_id text, out billing_period text)
language sql stable
set search_path = ''
as $$
  select id, case when stripe_price_monthly = p_price then 'monthly' else 'yearly' end
    from public.subscription_plans
   where p_price in (stripe_price_monthly, stripe_price_yearly)
$$;
comment on function private._plan_for_price(text) is 'The plan and billing period a Stripe price id is configured for.';

create function private._subscription_stage(p_status text) returns integer
language sql immutable
set search_path = ''
as $$
  select case
    when p_status = 'incomplete' then 0
    when p_status in ('canceled', 'incomplete_expired') then 2
    else 1
  end
$$;
comment on function private._subscription_stage(text) is
  'Where a Stripe subscription status lies in its life: 0 incomplete, 1 live (active, trialing, past_due, '
  'unpaid, paused), 2 ended. Breaks ties between events created in the same second.';

-- Applies a Stripe subscription's state (status, plan, periods, cancel flag) unless the row already holds
-- state from a newer event. Keeps public.users' plan in step with the user's current subscription.
create function private._sync_subscription(
  p_user_id uuid,
  p_subscription_id text,
  p_customer text,
  p_status text,
  p_price text,
  p_plan_hint text,
  p_period_hint text,
  p_period_start timestamptz,
  p_period_end timestamptz,
  p_cancel_at_period_end boolean,
  p_canceled_at timestamptz,
  p_ended_at timestamptz,
  p_event_created timestamptz
) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_row public.user_subscriptions;
  v_plan text;
  v_period text;
  v_live boolean := p_status in ('active', 'trialing', 'past_due', 'unpaid', 'incomplete', 'paused');
begin
  select * into v_row from public.user_subscriptions where stripe_subscription_id = p_subscription_id for update;
  if found and v_row.stripe_updated_at > p_event_created then
    return false; -- an older event than the state we hold: never overwrite
  end if;
  -- Events created in the same second can arrive in either order: then a subscription only moves forward
  -- in its life (incomplete → live → ended), never back.
  if found and v_row.stripe_updated_at = p_event_created
     and private._subscription_stage(p_status) < private._subscription_stage(v_row.status) then
    return false;
  end if;

  select m.plan_id, m.billing_period into v_plan, v_period from private._plan_for_price(p_price) m;
  v_plan := coalesce(v_plan, p_plan_hint, v_row.plan_id);
  v_period := coalesce(v_period, p_period_hint, v_row.billing_period);
  if v_plan is null or not exists (select 1 from public.subscription_plans where id = v_plan) then
    raise exception 'Stripe price % is not configured for any plan', p_price using errcode = 'PB422';
  end if;

  if v_live then
    update public.user_subscriptions set is_current = false
     where user_id = p_user_id and is_current and stripe_subscription_id <> p_subscription_id;
  end if;

  insert into public.user_subscriptions as s (
    user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_price_id,
    current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, is_current,
    stripe_updated_at)
  values (
    p_user_id, v_plan, v_period, p_status, p_subscription_id, p_customer, p_price,
    p_period_start, p_period_end, coalesce(p_cancel_at_period_end, false), p_canceled_at, p_ended_at, v_live,
    p_event_created)
  on conflict (stripe_subscription_id) do update set
    plan_id = excluded.plan_id,
    billing_period = excluded.billing_period,
    status = excluded.status,
    stripe_price_id = coalesce(excluded.stripe_price_id, s.stripe_price_id),
    current_period_start = coalesce(excluded.current_period_start, s.current_period_start),
    current_period_end = coalesce(excluded.current_period_end, s.current_period_end),
    cancel_at_period_end = excluded.cancel_at_period_end,
    canceled_at = coalesce(excluded.canceled_at, s.canceled_at),
    ended_at = coalesce(excluded.ended_at, s.ended_at),
    is_current = excluded.is_current,
    stripe_updated_at = excluded.stripe_updated_at;

  if v_live then
    update public.users
       set plan = v_plan, plan_status = p_status, stripe_subscription_id = p_subscription_id,
           stripe_customer_id = coalesce(stripe_customer_id, p_customer)
     where id = p_user_id;
  else
    -- Ended: back to free, but only if this was the subscription the user is on.
    update public.users set plan = 'free', plan_status = 'active', stripe_subscription_id = null
     where id = p_user_id and (stripe_subscription_id = p_subscription_id or stripe_subscription_id is null);
  end if;
  return true;
end;
$$;
comment on function private._sync_subscription(uuid, text, text, text, text, text, text, timestamptz,
  timestamptz, boolean, timestamptz, timestamptz, timestamptz) is
  'Upserts a user_subscriptions row from Stripe state unless it holds newer state (watermark); returns '
  'whether it applied. Live statuses make it the current subscription and set users.plan; ended ones move '
  'the user back to free when it was their current subscription.';

create function private._credit_token_pack(p_object jsonb, p_payment_intent text, p_session text) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_meta jsonb := coalesce(p_object -> 'metadata', '{}');
  v_user_id uuid;
  v_pack public.token_packs;
  v_tokens bigint;
begin
  if v_meta ->> 'pack_id' is null then
    return; -- not one of our token pack payments
  end if;
  v_user_id := private._stripe_user(p_object ->> 'customer', coalesce(v_meta ->> 'user_id', p_object ->> 'client_reference_id'));
  select * into v_pack from public.token_packs where id = v_meta ->> 'pack_id';
  if not found then
    raise exception 'unknown token pack %', v_meta ->> 'pack_id' using errcode = 'PB422';
  end if;
  -- What the buyer was sold (stamped at checkout), not today's catalog.
  v_tokens := coalesce((v_meta ->> 'tokens')::bigint, v_pack.tokens);
  perform private.update_user_token_balance(
    v_user_id, v_tokens, 'token_pack_purchase',
    case when p_payment_intent is not null then 'pi:' || p_payment_intent else 'cs:' || p_session end,
    jsonb_build_object('pack_id', v_pack.id, 'payment_intent', p_payment_intent, 'checkout_session', p_session)
  );
end;
$$;
comment on function private._credit_token_pack(jsonb, text, text) is
  'Credits a paid token pack once per PaymentIntent (reference pi:<id>, else cs:<checkout session id>), '
  'whichever event carries it first. No-op for payments that are not token packs.';

create function private._refund_token_pack(p_charge jsonb) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_credit public.token_transactions;
  v_amount bigint := (p_charge ->> 'amount')::bigint;
  v_refunded bigint := (p_charge ->> 'amount_refunded')::bigint;
  v_target bigint;
  v_done bigint;
  v_balance bigint;
  v_debit bigint;
begin
  select * into v_credit from public.token_transactions
   where reference = 'pi:' || (p_charge ->> 'payment_intent') and reason = 'token_pack_purchase';
  if not found or v_amount is null or v_amount <= 0 then
    return; -- not a token pack charge (e.g. a subscription invoice): nothing to take back
  end if;
  -- The balance row lock first: concurrent refund events of one charge must see each other's debits.
  select balance into v_balance from public.token_balances where user_id = v_credit.user_id for update;
  -- Debit in proportion to the amount refunded so far, minus what earlier refund events already took.
  v_target := (v_credit.delta * least(v_refunded, v_amount)) / v_amount;
  select coalesce(-sum(delta), 0) into v_done from public.token_transactions
   where user_id = v_credit.user_id and reason = 'token_pack_refund' and metadata ->> 'charge' = p_charge ->> 'id';
  if v_target - v_done <= 0 then
    return;
  end if;
  -- Tokens already spent cannot be taken back: debit what is left and record the shortfall.
  v_debit := least(v_target - v_done, v_balance);
  if v_debit > 0 then
    perform private.update_user_token_balance(
      v_credit.user_id, -v_debit, 'token_pack_refund',
      'refund:' || (p_charge ->> 'id') || ':' || v_refunded,
      jsonb_build_object('charge', p_charge ->> 'id', 'payment_intent', p_charge ->> 'payment_intent',
                         'amount_refunded', v_refunded, 'shortfall', (v_target - v_done) - v_debit)
    );
  end if;
end;
$$;
comment on function private._refund_token_pack(jsonb) is
  'Debits the tokens of a refunded token pack in proportion to the amount refunded (once per refund level), '
  'never below zero (a shortfall is recorded in the ledger row''s metadata).';

-- ---------------------------------------------------------------------------- stripe: apply event
create function private._apply_stripe_event(p_event jsonb) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_created timestamptz := private._stripe_ts(p_event -> 'created');
  v_item jsonb;
  v_user_id uuid;
  v_sub_id text;
  v_line jsonb;
  v_plan public.subscription_plans;
  v_row public.user_subscriptions;
begin
  case v_type
  when 'checkout.session.completed', 'checkout.session.async_payment_succeeded' then
    if v_obj ->> 'mode' = 'payment' then
      if v_obj ->> 'payment_status' = 'paid' then
        perform private._credit_token_pack(v_obj, v_obj ->> 'payment_intent', v_obj ->> 'id');
      end if;
    elsif v_obj ->> 'mode' = 'subscription' and v_obj ->> 'subscription' is not null
          and v_obj ->> 'payment_status' in ('paid', 'no_payment_required') then
      -- (An unpaid async payment waits for checkout.session.async_payment_succeeded or the invoice.)
      v_user_id := private._stripe_user(v_obj ->> 'customer',
                                        coalesce(v_obj -> 'metadata' ->> 'user_id', v_obj ->> 'client_reference_id'));
      perform private._sync_subscription(
        v_user_id, v_obj ->> 'subscription', v_obj ->> 'customer', 'active', null,
        v_obj -> 'metadata' ->> 'plan', v_obj -> 'metadata' ->> 'billing_period',
        null, null, false, null, null, v_created);
    end if;

  when 'payment_intent.succeeded' then
    perform private._credit_token_pack(v_obj, v_obj ->> 'id', null);

  when 'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted' then
    v_item := v_obj -> 'items' -> 'data' -> 0;
    v_user_id := private._stripe_user(v_obj ->> 'customer', v_obj -> 'metadata' ->> 'user_id');
    perform private._sync_subscription(
      v_user_id, v_obj ->> 'id', v_obj ->> 'customer',
      case when v_type = 'customer.subscription.deleted' then 'canceled' else v_obj ->> 'status' end,
      v_item -> 'price' ->> 'id',
      v_obj -> 'metadata' ->> 'plan', null,
      private._stripe_ts(coalesce(v_item -> 'current_period_start', v_obj -> 'current_period_start')),
      private._stripe_ts(coalesce(v_item -> 'current_period_end', v_obj -> 'current_period_end')),
      (v_obj ->> 'cancel_at_period_end')::boolean,
      private._stripe_ts(v_obj -> 'canceled_at'),
      private._stripe_ts(v_obj -> 'ended_at'),
      v_created);

  when 'invoice.payment_succeeded', 'invoice.paid' then
    v_sub_id := coalesce(v_obj ->> 'subscription', v_obj -> 'parent' -> 'subscription_details' ->> 'subscription');
    if v_sub_id is null then
      return true; -- a one-off invoice: nothing to renew
    end if;
    v_user_id := private._stripe_user(v_obj ->> 'customer',
                                      coalesce(v_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'user_id',
                                               v_obj -> 'subscription_details' -> 'metadata' ->> 'user_id'));
    if coalesce(v_obj ->> 'billing_reason', 'subscription_cycle') not in ('subscription_create', 'subscription_cycle') then
      return true; -- prorations, manual and threshold invoices: no new period and no allowance
    end if;
    v_line := v_obj -> 'lines' -> 'data' -> 0;
    select * into v_row from public.user_subscriptions where stripe_subscription_id = v_sub_id for update;
    if found and v_row.status in ('canceled', 'incomplete_expired') then
      return true; -- the final invoice of an ended subscription does not bring it back
    end if;
    if not found or v_row.stripe_updated_at <= v_created then
      perform private._sync_subscription(
        v_user_id, v_sub_id, v_obj ->> 'customer', 'active',
        coalesce(v_line -> 'price' ->> 'id', v_line -> 'pricing' -> 'price_details' ->> 'price'),
        coalesce(v_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'plan',
                 v_obj -> 'subscription_details' -> 'metadata' ->> 'plan'),
        null,
        private._stripe_ts(v_line -> 'period' -> 'start'), private._stripe_ts(v_line -> 'period' -> 'end'),
        coalesce(v_row.cancel_at_period_end, false), null, null, v_created);
    end if;
    -- The period's allowance, once per invoice (a yearly invoice carries twelve months).
    select p.* into v_plan from public.subscription_plans p
      join public.user_subscriptions s on s.plan_id = p.id
     where s.stripe_subscription_id = v_sub_id;
    if v_plan.monthly_token_allowance > 0 then
      perform private.update_user_token_balance(
        v_user_id,
        v_plan.monthly_token_allowance * case when (select billing_period from public.user_subscriptions
                                                      where stripe_subscription_id = v_sub_id) = 'yearly'
                                              then 12 else 1 end,
        'subscription_allowance', 'invoice:' || (v_obj ->> 'id'),
        jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id, 'plan', v_plan.id));
    end if;

  when 'invoice.payment_failed' then
    v_sub_id := coalesce(v_obj ->> 'subscription', v_obj -> 'parent' -> 'subscription_details' ->> 'subscription');
    v_user_id := private._stripe_user(v_obj ->> 'customer', null);
    if v_sub_id is not null then
      update public.user_subscriptions set status = 'past_due', stripe_updated_at = v_created
       where stripe_subscription_id = v_sub_id and stripe_updated_at <= v_created
         and status not in ('canceled', 'incomplete_expired');
      if found then -- an older failure than the state we hold changes nothing
        update public.users set plan_status = 'past_due'
         where id = v_user_id and stripe_subscription_id = v_sub_id;
      end if;
    end if;
    insert into public.notifications (user_id, kind, title, body, data, dedupe_key)
    values (v_user_id, 'payment_failed', 'Your payment failed',
            'We could not charge your payment method. Update it in the billing portal to keep your plan.',
            jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id,
                               'hosted_invoice_url', v_obj ->> 'hosted_invoice_url'),
            'invoice_payment_failed:' || (v_obj ->> 'id'))
    on conflict (dedupe_key) do nothing;

  when 'charge.refunded' then
    perform private._refund_token_pack(v_obj);

  else
    return false; -- a type we do not handle: recorded and acknowledged
  end case;
  return true;
end;
$$;
comment on function private._apply_stripe_event(jsonb) is
  'Applies one Stripe event''s effect (inside the caller''s transaction). Returns false for event types '
  'we do not handle. Raises on anything it cannot apply, so the caller records the failure.';

-- -------------------------------------------------------------------------- stripe: the pipeline
create function private.process_stripe_event(p_event_id text, p_force boolean default false)
returns table (status text, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_event private.stripe_webhook_events;
  v_handled boolean;
  v_error text;
begin
  -- The row lock makes concurrent deliveries of one event wait for each other: the first applies it,
  -- the others find it processed.
  select * into v_event from private.stripe_webhook_events e where e.id = p_event_id for update;
  if not found then
    raise exception 'unknown Stripe event %', p_event_id using errcode = 'PB404';
  end if;
  if v_event.status in ('processed', 'ignored') then
    return query select 'duplicate'::text, null::text;
    return;
  end if;
  if v_event.status = 'failed' and v_event.attempts >= 3 and not p_force then
    return query select 'failed'::text, v_event.last_error;
    return;
  end if;

  begin
    v_handled := private._apply_stripe_event(v_event.payload);
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
  end;

  if v_error is null then
    update private.stripe_webhook_events e
       set status = case when v_handled then 'processed' else 'ignored' end,
           attempts = e.attempts + 1, processed_at = now(), last_error = null
     where e.id = p_event_id;
    update private.failed_webhook_events f set resolved_at = now() where f.event_id = p_event_id and f.resolved_at is null;
    return query select case when v_handled then 'processed' else 'ignored' end, null::text;
    return;
  end if;

  update private.stripe_webhook_events e
     set status = 'failed', attempts = e.attempts + 1, last_error = v_error,
         errors = e.errors || jsonb_build_array(jsonb_build_object('at', now(), 'error', v_error))
   where e.id = p_event_id
  returning * into v_event;
  if v_event.attempts >= 3 then
    insert into private.failed_webhook_events as f (event_id, type, payload, errors, attempts, next_retry_at)
    values (v_event.id, v_event.type, v_event.payload, v_event.errors, v_event.attempts, now() + interval '5 minutes')
    on conflict (event_id) do update
      set errors = excluded.errors,
          attempts = excluded.attempts, failed_at = now(), resolved_at = null,
          next_retry_at = now() + least(interval '5 minutes' * power(2, f.replay_count), interval '1 day');
  end if;
  return query select 'failed'::text, v_error;
end;
$$;
comment on function private.process_stripe_event(text, boolean) is
  'The one code path that applies a recorded Stripe event: exactly once (row lock + status), in a '
  'subtransaction so a failure is recorded (attempts, last_error) instead of lost; the third failure lands '
  'in failed_webhook_events. Returns processed, ignored, duplicate or failed (with the error).';

create function private.handle_stripe_event(p_event jsonb, p_request_id text default null, p_source_ip inet default null)
returns table (status text, error text)
language plpgsql
set search_path = ''
as $$
declare
  v_status text;
  v_error text;
begin
  if p_event ->> 'id' is null or p_event ->> 'type' is null or jsonb_typeof(p_event -> 'created') <> 'number' then
    raise exception 'not a Stripe event' using errcode = '22023';
  end if;
  insert into private.stripe_webhook_events (id, type, livemode, stripe_created_at, payload)
  values (p_event ->> 'id', p_event ->> 'type', coalesce((p_event ->> 'livemode')::boolean, false),
          private._stripe_ts(p_event -> 'created'), p_event)
  on conflict (id) do nothing;

  select p.status, p.error into v_status, v_error from private.process_stripe_event(p_event ->> 'id') p;

  insert into private.webhook_audit_log (request_id, source_ip, event_id, event_type, outcome, http_status, reason)
  values (p_request_id, p_source_ip, p_event ->> 'id', p_event ->> 'type',
          case v_status when 'duplicate' then 'duplicate' when 'failed' then 'failed' else 'accepted' end,
          case when v_status = 'failed' then 500 else 200 end,
          coalesce(left(v_error, 500), v_status));
  return query select v_status, v_error;
end;
$$;
comment on function private.handle_stripe_event(jsonb, text, inet) is
  'What the stripe-webhook function calls with a verified event: records it once, processes it, audits the '
  'delivery, all in one transaction. Idempotent per event id.';

create function private.log_webhook_rejection(
  p_request_id text, p_source_ip inet, p_http_status integer, p_reason text,
  p_event_id text default null, p_event_type text default null
) returns void
language sql
set search_path = ''
as $$
  insert into private.webhook_audit_log (request_id, source_ip, event_id, event_type, outcome, http_status, reason)
  values (p_request_id, p_source_ip, p_event_id, p_event_type, 'rejected', p_http_status, left(p_reason, 500));
$$;
comment on function private.log_webhook_rejection(text, inet, integer, text, text, text) is
  'Audits a delivery the webhook refused before it reached processing (method, size, signature, limits).';

create function private.replay_failed_webhook_event(p_event_id text) returns table (status text, error text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  update private.failed_webhook_events
     set replay_count = replay_count + 1, last_replayed_at = now()
   where event_id = p_event_id;
  if not found then
    raise exception 'event % is not in the dead-letter queue', p_event_id using errcode = 'PB404';
  end if;
  return query select * from private.process_stripe_event(p_event_id, true);
end;
$$;
comment on function private.replay_failed_webhook_event(text) is
  'Operator: re-applies a dead-lettered event through process_stripe_event. Applies it at most once; a '
  'success marks the dead letter resolved.';

create function private.retry_failed_webhook_events(p_limit integer default 50) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_id text;
  v_count integer := 0;
begin
  -- Dead letters whose backoff has passed (at most 8 automatic replays), then events that failed fewer
  -- than 3 times and have not been retried by Stripe for 10 minutes.
  for v_id in
    select event_id from private.failed_webhook_events
     where resolved_at is null and next_retry_at <= now() and replay_count < 8
     order by next_retry_at limit p_limit
  loop
    perform private.replay_failed_webhook_event(v_id);
    v_count := v_count + 1;
  end loop;
  for v_id in
    select id from private.stripe_webhook_events
     where status in ('received', 'failed') and attempts < 3 and updated_at < now() - interval '10 minutes'
     order by updated_at limit p_limit
  loop
    perform private.process_stripe_event(v_id);
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function private.retry_failed_webhook_events(integer) is
  'pg_cron (aie_stripe_webhook_retry): retries transient failures through the same code path. Returns how '
  'many events it tried.';

-- ------------------------------------------------------------------------------------------ grants
revoke all on public.subscription_plans, public.token_packs, public.user_subscriptions, public.token_balances,
  public.token_transactions, public.notifications from anon, authenticated;
grant select on public.subscription_plans, public.token_packs to anon, authenticated;
grant select on public.user_subscriptions, public.token_balances, public.token_transactions,
  public.notifications to authenticated;
grant update (read_at) on public.notifications to authenticated;
-- The service key reads balances and the ledger but changes them only through the ledger functions.
revoke insert, update, delete, truncate on public.token_balances, public.token_transactions from service_role;

grant select on private.stripe_webhook_events, private.failed_webhook_events, private.webhook_audit_log
  to service_role;
grant execute on function private.update_user_token_balance(uuid, bigint, text, text, jsonb) to service_role;
grant execute on function private.replay_failed_webhook_event(text) to service_role;

select private.ensure_cron_job('aie_stripe_webhook_retry', '*/5 * * * *',
                               'select private.retry_failed_webhook_events()');
