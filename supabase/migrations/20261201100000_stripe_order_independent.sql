-- Stripe, order-independent: the state the webhook leaves is a function of the set of events it has
-- received, never of the order (or the second) in which Stripe delivered them.
--   subscriptions  a user_subscriptions row holds the state of the event that ranks highest for it:
--                  private._subscription_state_rank (an incomplete snapshot < a paid checkout < any other
--                  snapshot), then the event's created time, its life stage, its id. Invoice events never
--                  change it. The user's current subscription is chosen by a rule
--                  (private._refresh_current_subscription: live beats not live, then the newest).
--   allowances     a paid invoice credits what its subscription period lines bill (price → plan and period),
--                  read from the invoice itself (private._invoice_period_lines), never from the row.
--   refunds        each refund and dispute is kept by its Stripe id (private.stripe_payment_reversals) and takes
--                  back its share of the token pack it reverses, once (ledger reference refund:<id> /
--                  dispute:<id>), whenever the pack's credit lands, before or after it.
--   unknown users  events of a Stripe customer with no user here are recorded as ignored, with the reason.
--   envelope       private.handle_stripe_event takes the body as text: a body that is not a storable event
--                  is refused (audited, status rejected) instead of raising.
--   cron           aie_cron_history_purge: cron.job_run_details older than 7 days.

-- ------------------------------------------------------------------------------------------ tables
alter table public.user_subscriptions
  add column stripe_created_at timestamptz,
  add column stripe_event_id text,
  add column state_source text not null default 'subscription'
    constraint state_source_is_known check (state_source in ('checkout_session', 'subscription'));
comment on column public.user_subscriptions.stripe_created_at is
  'When Stripe created the subscription (a checkout session''s time until a subscription event arrives): '
  'the newest live subscription is the user''s current one.';
comment on column public.user_subscriptions.stripe_event_id is
  'The Stripe event whose state the row holds (with stripe_updated_at, its created time).';
comment on column public.user_subscriptions.state_source is
  'What the row''s state came from: a subscription snapshot (customer.subscription.*) or, until one arrives, '
  'the paid checkout session that started it.';
comment on column public.user_subscriptions.stripe_updated_at is
  'The created time of the Stripe event whose state the row holds.';
comment on table public.user_subscriptions is
  'One row per Stripe subscription of a user, holding the state of the highest-ranked event seen for it '
  '(private._subscription_state_rank, then event time, life stage, event id), so the end state never depends '
  'on delivery order. is_current marks the user''s current subscription (live beats not live, then the '
  'newest). Written by the webhook only.';

alter table private.stripe_webhook_events add column ignored_reason text;
comment on column private.stripe_webhook_events.ignored_reason is
  'Why an ignored event changed nothing (a type we do not handle, a customer with no user here, …).';

create table private.stripe_payment_reversals (
  id text primary key constraint id_looks_like_a_refund_or_dispute check (id ~ '^(re|pyr|dp|du)_[A-Za-z0-9_]+$'),
  kind text not null constraint kind_is_known check (kind in ('refund', 'dispute')),
  payment_intent_id text constraint payment_intent_id_looks_like_one check (payment_intent_id ~ '^pi_[A-Za-z0-9_]+$'),
  charge_id text,
  amount bigint not null constraint amount_is_not_negative check (amount >= 0),
  status text not null constraint status_is_short check (char_length(status) between 1 and 64),
  stripe_created_at timestamptz,
  stripe_updated_at timestamptz not null,
  stripe_event_id text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.stripe_payment_reversals is
  'Every Stripe refund and dispute seen, by its id, in the state of its highest-ranked event (event time, '
  'life stage, event id). private._apply_pack_reversals turns those of a token pack payment into ledger '
  'rows; one that arrives before the pack''s credit waits here until the credit lands.';
create index stripe_payment_reversals_payment_intent_idx on private.stripe_payment_reversals (payment_intent_id);
create trigger _100_timestamps before update on private.stripe_payment_reversals
  for each row execute function private.tg__set_updated_at();
alter table private.stripe_payment_reversals enable row level security;
grant select on private.stripe_payment_reversals to service_role;

create table private.token_pack_takebacks (
  reference text primary key,
  payment_intent_id text not null,
  user_id uuid not null references public.users (id) on delete cascade,
  share_tokens bigint not null constraint share_is_not_negative check (share_tokens >= 0),
  taken_tokens bigint not null constraint taken_is_within_share check (taken_tokens between 0 and share_tokens),
  given_back_at timestamptz,
  created_at timestamptz not null default now()
);
comment on table private.token_pack_takebacks is
  'What each refund, dispute and rounding of a token pack takes back, decided once (keyed by the ledger '
  'reference of its debit: refund:<id>, dispute:<id>, refund_rounding:<payment intent>): its share of the pack, '
  'what the balance allowed (share - taken is the shortfall, tokens already spent), and when a failed refund, '
  'a won dispute or an undone rounding gave it back. A takeback that found nothing to take is kept too, so it '
  'is never taken again from tokens gained later.';
create index token_pack_takebacks_payment_intent_idx on private.token_pack_takebacks (payment_intent_id);
create index token_pack_takebacks_user_id_idx on private.token_pack_takebacks (user_id);
alter table private.token_pack_takebacks enable row level security;
grant select on private.token_pack_takebacks to service_role;

alter table public.token_transactions drop constraint reason_is_known;
alter table public.token_transactions add constraint reason_is_known check (reason in (
  'subscription_allowance', 'token_pack_purchase', 'token_pack_refund', 'token_pack_dispute',
  'token_pack_reinstated', 'usage', 'adjustment'
));

-- ------------------------------------------------------------------------------- stripe: helpers
-- The user of a Stripe object: our own metadata.user_id (set when we created the Checkout Session) or
-- client_reference_id, cross-checked against the customer id we stored; else by customer. Null when there is
-- no such user here (another app on the same Stripe account, a deleted user).
create or replace function private._stripe_user(p_customer text, p_user_hint text) returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_customer text;
begin
  if p_user_hint is not null and p_user_hint ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select id, stripe_customer_id into v_user_id, v_customer from public.users where id = p_user_hint::uuid;
  end if;
  if v_user_id is not null then
    if p_customer is not null and v_customer is not null and v_customer <> p_customer then
      raise exception 'user % belongs to customer %, not %', v_user_id, v_customer, p_customer using errcode = 'PB409';
    end if;
    if v_customer is null and p_customer is not null then
      update public.users set stripe_customer_id = p_customer where id = v_user_id;
    end if;
    return v_user_id;
  end if;
  -- No hint, or a hint naming no user here (deleted): the customer decides.
  if p_customer is null then
    return null;
  end if;
  select id into v_user_id from public.users where stripe_customer_id = p_customer;
  return v_user_id;
end;
$$;
comment on function private._stripe_user(text, text) is
  'Resolves the user of a Stripe object (the metadata hint when it names a user here, else the customer); links '
  'the customer id on first sight. Null when no user here matches; PB409 when the hint''s user belongs to '
  'another customer.';

create function private._subscription_is_live(p_status text) returns boolean
language sql immutable
set search_path = ''
as $$ select p_status in ('active', 'trialing', 'past_due') $$;
comment on function private._subscription_is_live(text) is
  'Whether a Stripe subscription status gives the user its paid plan: active, trialing, past_due (the retry '
  'grace period). incomplete (first payment not made), incomplete_expired, unpaid, paused and canceled do not.';

create function private._subscription_state_rank(p_source text, p_status text) returns integer
language sql immutable
set search_path = ''
as $$
  select case
    when p_source = 'subscription' and p_status = 'incomplete' then 0
    when p_source = 'checkout_session' then 1
    else 2
  end
$$;
comment on function private._subscription_state_rank(text, text) is
  'The first key of a subscription state''s precedence: 0 a snapshot still incomplete, 1 a paid checkout '
  'session (proof that the subscription got past incomplete), 2 any other subscription snapshot. Within a '
  'rank, the event''s created time, then its life stage (private._subscription_stage), then its id decide.';

-- Writes a subscription's state unless the row holds a state that ranks higher, then re-chooses the user's
-- current subscription. Every column is written from the state itself (nothing kept from the row it
-- replaces), so the row is a function of the highest-ranked event alone.
create function private._put_subscription_state(p_state public.user_subscriptions) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
begin
  -- Changes to one user's subscriptions take turns (the user row first, as every writer of it does), so the
  -- choice of the current one always sees the others' committed state.
  select user_id into v_user_id from public.user_subscriptions where stripe_subscription_id = p_state.stripe_subscription_id;
  perform 1 from public.users where id = coalesce(v_user_id, p_state.user_id) for no key update;
  if p_state.plan_id is null or not exists (select 1 from public.subscription_plans where id = p_state.plan_id) then
    raise exception 'Stripe price % is not configured for any plan', p_state.stripe_price_id using errcode = 'PB422';
  end if;
  insert into public.user_subscriptions as s (
    user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_price_id,
    current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, is_current,
    stripe_updated_at, stripe_created_at, stripe_event_id, state_source)
  values (
    p_state.user_id, p_state.plan_id, p_state.billing_period, p_state.status, p_state.stripe_subscription_id,
    p_state.stripe_customer_id, p_state.stripe_price_id, p_state.current_period_start, p_state.current_period_end,
    coalesce(p_state.cancel_at_period_end, false), p_state.canceled_at, p_state.ended_at, false,
    p_state.stripe_updated_at, p_state.stripe_created_at, p_state.stripe_event_id, p_state.state_source)
  on conflict (stripe_subscription_id) do update set
    plan_id = excluded.plan_id,
    billing_period = excluded.billing_period,
    status = excluded.status,
    stripe_customer_id = excluded.stripe_customer_id,
    stripe_price_id = excluded.stripe_price_id,
    current_period_start = excluded.current_period_start,
    current_period_end = excluded.current_period_end,
    cancel_at_period_end = excluded.cancel_at_period_end,
    canceled_at = excluded.canceled_at,
    ended_at = excluded.ended_at,
    stripe_updated_at = excluded.stripe_updated_at,
    stripe_created_at = excluded.stripe_created_at,
    stripe_event_id = excluded.stripe_event_id,
    state_source = excluded.state_source
  where (private._subscription_state_rank(excluded.state_source, excluded.status), excluded.stripe_updated_at,
         private._subscription_stage(excluded.status), excluded.stripe_event_id)
      > (private._subscription_state_rank(s.state_source, s.status), s.stripe_updated_at,
         private._subscription_stage(s.status), coalesce(s.stripe_event_id, ''));
  perform private._refresh_current_subscription(coalesce(v_user_id, p_state.user_id));
end;
$$;
comment on function private._put_subscription_state(public.user_subscriptions) is
  'Upserts a subscription''s state (a user_subscriptions row; id, is_current and timestamps are ignored) unless '
  'the row holds a higher-ranked one, then re-chooses the user''s current subscription. Idempotent, and '
  'commutative: the row ends as the highest-ranked state whatever order the states come in.';

create function private._refresh_current_subscription(p_user_id uuid) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_current public.user_subscriptions;
  v_live boolean;
begin
  select * into v_current from public.user_subscriptions
   where user_id = p_user_id
   order by private._subscription_is_live(status) desc, stripe_created_at desc nulls last, stripe_subscription_id desc
   limit 1;
  v_live := coalesce(private._subscription_is_live(v_current.status), false);
  -- Two statements: the unique index allows one current row at every moment.
  update public.user_subscriptions set is_current = false
   where user_id = p_user_id and is_current and id is distinct from v_current.id;
  update public.user_subscriptions set is_current = true where id = v_current.id and not is_current;
  update public.users
     set plan = case when v_live then v_current.plan_id else 'free' end,
         plan_status = case when v_live then v_current.status else 'active' end,
         stripe_subscription_id = case when v_live then v_current.stripe_subscription_id end
   where id = p_user_id
     and (plan, plan_status, stripe_subscription_id) is distinct from
         (case when v_live then v_current.plan_id else 'free' end,
          case when v_live then v_current.status else 'active' end,
          case when v_live then v_current.stripe_subscription_id end);
end;
$$;
comment on function private._refresh_current_subscription(uuid) is
  'Chooses the user''s current subscription by rule (live beats not live, then the newest by Stripe''s created '
  'time, then the id) and sets public.users'' plan from it: its plan when live, else free. Idempotent.';

-- A subscription snapshot (the object of a customer.subscription.* event) as a user_subscriptions state.
create function private._subscription_snapshot(
  p_user_id uuid, p_subscription jsonb, p_event_id text, p_event_created timestamptz, p_deleted boolean
) returns public.user_subscriptions
language plpgsql
stable
set search_path = ''
as $$
declare
  v_state public.user_subscriptions;
  v_item jsonb;
begin
  -- The item whose price is one of our plans (a subscription may carry other items); else the first.
  select i into v_item
    from jsonb_array_elements(case when jsonb_typeof(p_subscription -> 'items' -> 'data') = 'array'
                                   then p_subscription -> 'items' -> 'data' else '[]' end) with ordinality as t (i, n)
   order by (select m.plan_id from private._plan_for_price(i -> 'price' ->> 'id') m) is null, n
   limit 1;
  select m.plan_id, m.billing_period into v_state.plan_id, v_state.billing_period
    from private._plan_for_price(v_item -> 'price' ->> 'id') m;
  v_state.plan_id := coalesce(v_state.plan_id, p_subscription -> 'metadata' ->> 'plan');
  v_state.user_id := p_user_id;
  v_state.status := case when p_deleted then 'canceled' else p_subscription ->> 'status' end;
  v_state.stripe_subscription_id := p_subscription ->> 'id';
  v_state.stripe_customer_id := p_subscription ->> 'customer';
  v_state.stripe_price_id := v_item -> 'price' ->> 'id';
  -- Since API version 2025-03-31 the current period is on the item; before, on the subscription.
  v_state.current_period_start := private._stripe_ts(coalesce(v_item -> 'current_period_start',
                                                               p_subscription -> 'current_period_start'));
  v_state.current_period_end := private._stripe_ts(coalesce(v_item -> 'current_period_end',
                                                             p_subscription -> 'current_period_end'));
  v_state.cancel_at_period_end := coalesce((p_subscription ->> 'cancel_at_period_end')::boolean, false);
  v_state.canceled_at := private._stripe_ts(p_subscription -> 'canceled_at');
  v_state.ended_at := private._stripe_ts(p_subscription -> 'ended_at');
  v_state.stripe_created_at := private._stripe_ts(p_subscription -> 'created');
  v_state.stripe_updated_at := p_event_created;
  v_state.stripe_event_id := p_event_id;
  v_state.state_source := 'subscription';
  return v_state;
end;
$$;
comment on function private._subscription_snapshot(uuid, jsonb, text, timestamptz, boolean) is
  'The user_subscriptions state a Stripe subscription object describes: plan and period from the item whose '
  'price is one of our plans (metadata.plan when none is), status canceled for a deletion.';

-- The subscription period lines of an invoice: what it bills for a period of a subscription item, as opposed
-- to prorations ("Unused time on …", "Remaining time on …") and one-off invoice items.
create function private._invoice_period_lines(p_invoice jsonb)
returns table (price_id text, period_start timestamptz, period_end timestamptz)
language sql
immutable
set search_path = ''
as $$
  select coalesce(l -> 'pricing' -> 'price_details' ->> 'price', l -> 'price' ->> 'id'),
         private._stripe_ts(l -> 'period' -> 'start'), private._stripe_ts(l -> 'period' -> 'end')
    from jsonb_array_elements(case when jsonb_typeof(p_invoice -> 'lines' -> 'data') = 'array'
                                   then p_invoice -> 'lines' -> 'data' else '[]' end) as l
   where case
           -- API versions since 2025-03-31: parent.subscription_item_details.proration
           when l -> 'parent' ->> 'type' is not null then
             l -> 'parent' ->> 'type' = 'subscription_item_details'
             and not coalesce((l -> 'parent' -> 'subscription_item_details' ->> 'proration')::boolean, false)
           -- earlier versions: type = 'subscription' and proration
           else l ->> 'type' = 'subscription' and not coalesce((l ->> 'proration')::boolean, false)
         end
$$;
comment on function private._invoice_period_lines(jsonb) is
  'The lines of a Stripe invoice that bill a subscription period (not prorations, not invoice items), with '
  'their price and period. Reads both line shapes (parent.subscription_item_details, and type/proration of '
  'API versions before 2025-03-31).';

-- ---------------------------------------------------------------------- stripe: token pack reversals
create function private._reversal_stage(p_kind text, p_status text) returns integer
language sql immutable
set search_path = ''
as $$
  select case
    when p_kind = 'refund' then case
      when p_status in ('failed', 'canceled') then 2
      when p_status = 'succeeded' then 1
      else 0 end -- pending, requires_action
    else case
      when p_status in ('won', 'lost', 'warning_closed', 'prevented') then 2
      when p_status in ('needs_response', 'under_review') then 1
      else 0 end -- warning_needs_response, warning_under_review: an inquiry
  end
$$;
comment on function private._reversal_stage(text, text) is
  'Where a refund or dispute status lies in its life (0 opened, 1 in force, 2 final). Orders events of one '
  'refund or dispute created in the same second.';

create function private._reversal_takes_back(p_kind text, p_status text) returns boolean
language sql immutable
set search_path = ''
as $$
  select case when p_kind = 'refund' then p_status in ('pending', 'requires_action', 'succeeded')
              else p_status in ('needs_response', 'under_review', 'lost') end
$$;
comment on function private._reversal_takes_back(text, text) is
  'Whether a refund or dispute in this status takes the tokens it reverses back: a refund unless it failed or '
  'was canceled; a dispute once the money is withdrawn (needs_response, under_review) and when lost. An '
  'inquiry (warning_*) takes nothing; a won dispute gives back what it took.';

-- Records a refund or dispute (a Stripe object) unless a higher-ranked state of it is recorded.
create function private._record_reversal(
  p_kind text, p_object jsonb, p_payment_intent text, p_event_id text, p_event_created timestamptz
) returns void
language plpgsql
set search_path = ''
as $$
begin
  insert into private.stripe_payment_reversals as r (
    id, kind, payment_intent_id, charge_id, amount, status, stripe_created_at, stripe_updated_at, stripe_event_id)
  values (
    p_object ->> 'id', p_kind, coalesce(p_object ->> 'payment_intent', p_payment_intent), p_object ->> 'charge',
    coalesce((p_object ->> 'amount')::bigint, 0), coalesce(p_object ->> 'status', 'succeeded'),
    private._stripe_ts(p_object -> 'created'), p_event_created, p_event_id)
  on conflict (id) do update set
    payment_intent_id = coalesce(excluded.payment_intent_id, r.payment_intent_id),
    charge_id = coalesce(excluded.charge_id, r.charge_id),
    amount = excluded.amount,
    status = excluded.status,
    stripe_created_at = coalesce(excluded.stripe_created_at, r.stripe_created_at),
    stripe_updated_at = excluded.stripe_updated_at,
    stripe_event_id = excluded.stripe_event_id
  where (excluded.stripe_updated_at, private._reversal_stage(p_kind, excluded.status), excluded.stripe_event_id)
      > (r.stripe_updated_at, private._reversal_stage(p_kind, r.status), r.stripe_event_id);
end;
$$;
comment on function private._record_reversal(text, jsonb, text, text, timestamptz) is
  'Upserts a Stripe refund or dispute into private.stripe_payment_reversals unless a higher-ranked state of '
  'it (event time, stage, event id) is recorded. Commutative over the events of one refund or dispute.';

-- Takes back a share of a token pack once: as much of it as the balance has (the rest is the shortfall),
-- remembered in token_pack_takebacks whatever it found. Returns the tokens taken.
create function private._take_back(
  p_credit public.token_transactions, p_reference text, p_reason text, p_share bigint, p_metadata jsonb
) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_balance bigint;
  v_taken bigint;
begin
  if exists (select 1 from private.token_pack_takebacks where reference = p_reference) then
    return 0; -- decided already, whatever the balance did since
  end if;
  select balance into v_balance from public.token_balances where user_id = p_credit.user_id;
  v_taken := greatest(least(p_share, v_balance), 0);
  if v_taken > 0 then
    perform private.update_user_token_balance(
      p_credit.user_id, -v_taken, p_reason, p_reference,
      p_metadata || jsonb_build_object('share', p_share, 'shortfall', p_share - v_taken));
  end if;
  insert into private.token_pack_takebacks (reference, payment_intent_id, user_id, share_tokens, taken_tokens)
  values (p_reference, p_credit.metadata ->> 'payment_intent', p_credit.user_id, p_share, v_taken);
  return v_taken;
end;
$$;
comment on function private._take_back(public.token_transactions, text, text, bigint, jsonb) is
  'Takes a share of a token pack back once per reference: debits what the balance has (never below zero; the '
  'ledger row records the shortfall) and records the decision in token_pack_takebacks. A repeat is a no-op.';

-- Gives back what a takeback took (a refund that failed, a dispute won, a rounding no longer due), once.
create function private._give_back(p_credit public.token_transactions, p_reference text, p_metadata jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_takeback private.token_pack_takebacks;
begin
  update private.token_pack_takebacks set given_back_at = now()
   where reference = p_reference and given_back_at is null
  returning * into v_takeback;
  if v_takeback.taken_tokens > 0 then
    perform private.update_user_token_balance(
      p_credit.user_id, v_takeback.taken_tokens, 'token_pack_reinstated', 'reinstated:' || p_reference, p_metadata);
  end if;
end;
$$;
comment on function private._give_back(public.token_transactions, text, jsonb) is
  'Gives back, once, what the takeback under p_reference took (reference reinstated:<that reference>).';

-- Turns the recorded refunds and disputes of one token pack payment into ledger rows, each exactly once.
create function private._apply_pack_reversals(p_payment_intent text) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_credit public.token_transactions;
  v_paid bigint;
  v_reversal private.stripe_payment_reversals;
  v_share bigint;
  v_shares bigint := 0;
  v_reversed bigint := 0;
  v_reference text;
  v_rounding text := 'refund_rounding:' || p_payment_intent;
begin
  select * into v_credit from public.token_transactions
   where reference = 'pi:' || p_payment_intent and reason = 'token_pack_purchase';
  if not found then
    return; -- the pack's credit has not landed yet: it applies what is recorded when it does
  end if;
  v_paid := coalesce((v_credit.metadata ->> 'amount_paid')::bigint,
                     (select price_cents from public.token_packs where id = v_credit.metadata ->> 'pack_id'));
  if v_paid is null or v_paid <= 0 then
    return; -- nothing was paid, so nothing can be refunded
  end if;
  -- Lock order of the ledger: the user row (key share), then the balance row.
  perform 1 from public.users where id = v_credit.user_id for key share;
  perform 1 from public.token_balances where user_id = v_credit.user_id for update;

  for v_reversal in
    select * from private.stripe_payment_reversals where payment_intent_id = p_payment_intent
     order by stripe_created_at nulls last, id
  loop
    v_reference := v_reversal.kind || ':' || v_reversal.id;
    -- Its share of the pack, rounded down; the rounding is taken with the last of the money (below).
    v_share := (v_credit.delta * least(v_reversal.amount, v_paid)) / v_paid;
    if private._reversal_takes_back(v_reversal.kind, v_reversal.status) then
      v_shares := v_shares + v_share;
      v_reversed := v_reversed + v_reversal.amount;
      perform private._take_back(
        v_credit, v_reference,
        case when v_reversal.kind = 'refund' then 'token_pack_refund' else 'token_pack_dispute' end, v_share,
        jsonb_build_object(v_reversal.kind, v_reversal.id, 'payment_intent', p_payment_intent,
                           'amount', v_reversal.amount));
    else
      -- A refund that failed or was canceled, a dispute won: what it took comes back.
      perform private._give_back(
        v_credit, v_reference,
        jsonb_build_object(v_reversal.kind, v_reversal.id, 'payment_intent', p_payment_intent,
                           'status', v_reversal.status));
    end if;
  end loop;

  -- All the money is back with the buyer: the tokens the rounding of the shares left are taken too (and given
  -- back if a refund among them fails later).
  if v_reversed >= v_paid then
    if v_credit.delta - v_shares > 0 then
      perform private._take_back(v_credit, v_rounding, 'token_pack_refund', v_credit.delta - v_shares,
                                 jsonb_build_object('payment_intent', p_payment_intent));
    end if;
  else
    perform private._give_back(v_credit, v_rounding, jsonb_build_object('payment_intent', p_payment_intent));
  end if;
end;
$$;
comment on function private._apply_pack_reversals(text) is
  'Takes back, once each, the share of a token pack (tokens × amount / amount paid, rounded down) that each of its '
  'recorded refunds and disputes takes back (reference refund:<id> / dispute:<id>), gives back what a failed '
  'refund or a won dispute took (reinstated:<reference>), and takes the rounding when everything paid is back. '
  'Never below zero: a takeback takes what is left and records the shortfall. No-op until the pack is credited.';

drop function private._credit_token_pack(jsonb, text, text);

-- Credits a paid token pack; returns why it did not, or null when it did (or had already).
create function private._credit_token_pack(
  p_object jsonb, p_payment_intent text, p_session text, p_amount_paid bigint
) returns text
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
    return 'not a token pack payment';
  end if;
  v_user_id := private._stripe_user(p_object ->> 'customer', coalesce(v_meta ->> 'user_id', p_object ->> 'client_reference_id'));
  if v_user_id is null then
    return format('no user here for Stripe customer %s', coalesce(p_object ->> 'customer', '(none)'));
  end if;
  select * into v_pack from public.token_packs where id = v_meta ->> 'pack_id';
  if not found then
    raise exception 'unknown token pack %', v_meta ->> 'pack_id' using errcode = 'PB422';
  end if;
  -- What the buyer was sold (stamped at checkout), not today's catalog. The ledger row is the same whichever
  -- event (checkout session or payment intent) carries the payment first.
  v_tokens := coalesce((v_meta ->> 'tokens')::bigint, v_pack.tokens);
  perform private.update_user_token_balance(
    v_user_id, v_tokens, 'token_pack_purchase',
    case when p_payment_intent is not null then 'pi:' || p_payment_intent else 'cs:' || p_session end,
    jsonb_build_object('pack_id', v_pack.id, 'payment_intent', p_payment_intent, 'amount_paid', p_amount_paid));
  if p_payment_intent is not null then
    perform private._apply_pack_reversals(p_payment_intent);
  end if;
  return null;
end;
$$;
comment on function private._credit_token_pack(jsonb, text, text, bigint) is
  'Credits a paid token pack once per PaymentIntent (reference pi:<id>, else cs:<checkout session id>), '
  'whichever event carries it first, then applies the refunds and disputes already recorded for it. Returns '
  'why nothing was credited (not a pack, no such user), or null.';

drop function private._refund_token_pack(jsonb);

-- ---------------------------------------------------------------------------- stripe: apply event
drop function private._sync_subscription(uuid, text, text, text, text, text, text, timestamptz, timestamptz,
  boolean, timestamptz, timestamptz, timestamptz);
drop function private.retry_failed_webhook_events(integer);
drop function private.replay_failed_webhook_event(text);
drop function private.handle_stripe_event(jsonb, text, inet);
drop function private.process_stripe_event(text, boolean);
drop function private._apply_stripe_event(jsonb);

create function private._apply_stripe_event(p_event jsonb, out ignored_reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_type text := p_event ->> 'type';
  v_obj jsonb := p_event -> 'data' -> 'object';
  v_event_id text := p_event ->> 'id';
  v_created timestamptz := private._stripe_ts(p_event -> 'created');
  v_user_id uuid;
  v_sub_id text;
  v_state public.user_subscriptions;
  v_plans text[];
  v_tokens bigint;
  v_refund jsonb;
begin
  case
  when v_type in ('checkout.session.completed', 'checkout.session.async_payment_succeeded') then
    if v_obj ->> 'payment_status' not in ('paid', 'no_payment_required') then
      ignored_reason := 'the checkout is not paid yet (checkout.session.async_payment_succeeded follows)';
    elsif v_obj ->> 'mode' = 'payment' then
      ignored_reason := private._credit_token_pack(v_obj, v_obj ->> 'payment_intent', v_obj ->> 'id',
                                                   (v_obj ->> 'amount_total')::bigint);
    elsif v_obj ->> 'mode' = 'subscription' and v_obj ->> 'subscription' is not null then
      v_user_id := private._stripe_user(v_obj ->> 'customer',
                                        coalesce(v_obj -> 'metadata' ->> 'user_id', v_obj ->> 'client_reference_id'));
      if v_user_id is null then
        ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
      else
        -- A paid checkout proves the subscription got past incomplete; it stands until a snapshot arrives.
        v_state.user_id := v_user_id;
        v_state.plan_id := v_obj -> 'metadata' ->> 'plan';
        v_state.billing_period := v_obj -> 'metadata' ->> 'billing_period';
        v_state.status := 'active';
        v_state.stripe_subscription_id := v_obj ->> 'subscription';
        v_state.stripe_customer_id := v_obj ->> 'customer';
        v_state.stripe_created_at := private._stripe_ts(v_obj -> 'created');
        v_state.stripe_updated_at := v_created;
        v_state.stripe_event_id := v_event_id;
        v_state.state_source := 'checkout_session';
        perform private._put_subscription_state(v_state);
      end if;
    else
      ignored_reason := format('a checkout in %s mode buys nothing here', coalesce(v_obj ->> 'mode', 'no'));
    end if;

  when v_type = 'payment_intent.succeeded' then
    ignored_reason := private._credit_token_pack(v_obj, v_obj ->> 'id', null,
                                                 coalesce((v_obj ->> 'amount_received')::bigint, (v_obj ->> 'amount')::bigint));

  when v_type in ('customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted',
                  'customer.subscription.paused', 'customer.subscription.resumed') then
    v_user_id := private._stripe_user(v_obj ->> 'customer', v_obj -> 'metadata' ->> 'user_id');
    if v_user_id is null then
      ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
    else
      perform private._put_subscription_state(private._subscription_snapshot(
        v_user_id, v_obj, v_event_id, v_created, v_type = 'customer.subscription.deleted'));
    end if;

  when v_type in ('invoice.paid', 'invoice.payment_succeeded') then
    -- The allowance of the period the invoice bills, from the invoice alone: its subscription period lines'
    -- prices (→ plan and billing period). Prorations and one-off items credit nothing.
    v_sub_id := coalesce(v_obj -> 'parent' -> 'subscription_details' ->> 'subscription', v_obj ->> 'subscription');
    v_user_id := private._stripe_user(v_obj ->> 'customer',
                                      coalesce(v_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'user_id',
                                               v_obj -> 'subscription_details' -> 'metadata' ->> 'user_id'));
    if v_user_id is null then
      ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
    elsif not exists (select 1 from private._invoice_period_lines(v_obj)) then
      ignored_reason := 'the invoice bills no subscription period (prorations or one-off items only)';
    else
      select array_agg(m.plan_id order by l.period_start), sum(p.monthly_token_allowance
               * case when m.billing_period = 'yearly' then 12 else 1 end)
        into v_plans, v_tokens
        from private._invoice_period_lines(v_obj) l
        cross join lateral private._plan_for_price(l.price_id) m
        join public.subscription_plans p on p.id = m.plan_id;
      if v_plans is null then
        raise exception 'invoice % bills price % which is not configured for any plan', v_obj ->> 'id',
          (select price_id from private._invoice_period_lines(v_obj) limit 1) using errcode = 'PB422';
      end if;
      -- A period line of a price that is no plan of ours (an add-on sold in Stripe) credits nothing; tell an
      -- operator, once a day per price, in case it was meant to be a plan.
      insert into private.admin_alerts (kind, user_id, details, dedupe_key)
      select 'unconfigured_price', v_user_id, jsonb_build_object('price', l.price_id, 'invoice', v_obj ->> 'id'),
             'unconfigured_price:' || coalesce(l.price_id, '(none)') || ':' || to_char(now(), 'YYYY-MM-DD')
        from private._invoice_period_lines(v_obj) l
       where not exists (select 1 from private._plan_for_price(l.price_id))
      on conflict (dedupe_key) do nothing;
      if v_tokens > 0 then
        perform private.update_user_token_balance(
          v_user_id, v_tokens, 'subscription_allowance', 'invoice:' || (v_obj ->> 'id'),
          jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id, 'plan', v_plans[1]));
      else
        ignored_reason := format('the %s plan has no allowance', v_plans[1]);
      end if;
    end if;

  when v_type = 'invoice.payment_failed' then
    -- The subscription's own events (customer.subscription.updated: past_due) change its status; this tells
    -- the user, once per invoice.
    v_sub_id := coalesce(v_obj -> 'parent' -> 'subscription_details' ->> 'subscription', v_obj ->> 'subscription');
    v_user_id := private._stripe_user(v_obj ->> 'customer',
                                      coalesce(v_obj -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'user_id',
                                               v_obj -> 'subscription_details' -> 'metadata' ->> 'user_id'));
    if v_user_id is null then
      ignored_reason := format('no user here for Stripe customer %s', v_obj ->> 'customer');
    else
      insert into public.notifications (user_id, kind, title, body, data, dedupe_key)
      values (v_user_id, 'payment_failed', 'Your payment failed',
              'We could not charge your payment method. Update it in the billing portal to keep your plan.',
              jsonb_build_object('invoice', v_obj ->> 'id', 'subscription', v_sub_id,
                                 'hosted_invoice_url', v_obj ->> 'hosted_invoice_url'),
              'invoice_payment_failed:' || (v_obj ->> 'id'))
      on conflict (dedupe_key) do nothing;
    end if;

  when v_type in ('refund.created', 'refund.updated', 'refund.failed', 'charge.refund.updated') then
    perform private._record_reversal('refund', v_obj, null, v_event_id, v_created);
    if v_obj ->> 'payment_intent' is not null then
      perform private._apply_pack_reversals(v_obj ->> 'payment_intent');
    end if;

  when v_type = 'charge.refunded' then
    -- Since API version 2022-11-15 a charge lists its refunds only when expanded; each refund also comes as
    -- refund.created / refund.updated, which is what applies it.
    if jsonb_typeof(v_obj -> 'refunds' -> 'data') = 'array' and jsonb_array_length(v_obj -> 'refunds' -> 'data') > 0 then
      for v_refund in select * from jsonb_array_elements(v_obj -> 'refunds' -> 'data') loop
        perform private._record_reversal('refund', v_refund, v_obj ->> 'payment_intent', v_event_id, v_created);
      end loop;
      if v_obj ->> 'payment_intent' is not null then
        perform private._apply_pack_reversals(v_obj ->> 'payment_intent');
      end if;
    else
      ignored_reason := 'the charge lists no refunds: each refund is applied from its refund.* events';
    end if;

  when v_type in ('charge.dispute.created', 'charge.dispute.updated', 'charge.dispute.closed',
                  'charge.dispute.funds_withdrawn', 'charge.dispute.funds_reinstated') then
    perform private._record_reversal('dispute', v_obj, null, v_event_id, v_created);
    if v_obj ->> 'payment_intent' is not null then
      perform private._apply_pack_reversals(v_obj ->> 'payment_intent');
    end if;

  else
    ignored_reason := format('event type %s is not handled', v_type);
  end case;
end;
$$;
comment on function private._apply_stripe_event(jsonb) is
  'Applies one Stripe event''s effect (inside the caller''s transaction), commutatively: the state after a set '
  'of events is the same in any delivery order. Returns why the event changed nothing (ignored_reason), or '
  'null. Raises on anything it cannot apply (an unconfigured price, …), so the caller records the failure.';

-- -------------------------------------------------------------------------- stripe: the pipeline
create function private.process_stripe_event(p_event_id text, p_force boolean default false)
returns table (status text, error text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_event private.stripe_webhook_events;
  v_reason text;
  v_error text;
begin
  -- The row lock makes concurrent deliveries of one event wait for each other: the first applies it,
  -- the others find it processed.
  select * into v_event from private.stripe_webhook_events e where e.id = p_event_id for update;
  if not found then
    raise exception 'unknown Stripe event %', p_event_id using errcode = 'PB404';
  end if;
  if v_event.status in ('processed', 'ignored') then
    return query select 'duplicate'::text, null::text, v_event.ignored_reason;
    return;
  end if;
  if v_event.status = 'failed' and v_event.attempts >= 3 and not p_force then
    return query select 'failed'::text, v_event.last_error, null::text;
    return;
  end if;

  begin
    v_reason := private._apply_stripe_event(v_event.payload);
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
  end;

  if v_error is null then
    update private.stripe_webhook_events e
       set status = case when v_reason is null then 'processed' else 'ignored' end, ignored_reason = v_reason,
           attempts = e.attempts + 1, processed_at = now(), last_error = null
     where e.id = p_event_id;
    update private.failed_webhook_events f set resolved_at = now() where f.event_id = p_event_id and f.resolved_at is null;
    return query select case when v_reason is null then 'processed' else 'ignored' end, null::text, v_reason;
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
  return query select 'failed'::text, v_error, null::text;
end;
$$;
comment on function private.process_stripe_event(text, boolean) is
  'The one code path that applies a recorded Stripe event: exactly once (row lock + status), in a '
  'subtransaction so a failure is recorded (attempts, last_error) instead of lost; the third failure lands '
  'in failed_webhook_events. Returns processed, ignored (with the reason), duplicate or failed (with the error).';

-- The envelope of a Stripe event: what handle_stripe_event requires before it records anything.
create function private._stripe_event_problem(p_event jsonb) returns text
language sql
immutable
set search_path = ''
as $$
  -- A missing field is as wrong as a malformed one (null never passes); the cast of created only runs on digits.
  select case
    when jsonb_typeof(p_event) is distinct from 'object' then 'the body is not a JSON object'
    when jsonb_typeof(p_event -> 'id') is distinct from 'string'
         or not coalesce(p_event ->> 'id' ~ '^evt_[A-Za-z0-9_]{1,250}$', false)
      then 'id is not a Stripe event id (evt_…)'
    when jsonb_typeof(p_event -> 'type') is distinct from 'string'
         or not coalesce(p_event ->> 'type' ~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$', false)
         or char_length(p_event ->> 'type') > 100
      then 'type is not a Stripe event type'
    when jsonb_typeof(p_event -> 'created') is distinct from 'number'
         or not coalesce((p_event ->> 'created') ~ '^[0-9]{9,10}$', false)
      then 'created is not a time in epoch seconds'
    when case when (p_event ->> 'created') ~ '^[0-9]{9,10}$'
              then (p_event ->> 'created')::bigint not between 946684800 and 4102444800 end
      then 'created is not a time in epoch seconds'
    when jsonb_typeof(p_event -> 'data' -> 'object') is distinct from 'object' then 'data.object is not an object'
    when p_event ? 'livemode' and jsonb_typeof(p_event -> 'livemode') is distinct from 'boolean'
      then 'livemode is not a boolean'
  end
$$;
comment on function private._stripe_event_problem(jsonb) is
  'What makes a JSON value not a Stripe event we can record (id, type, created in epoch seconds between 2000 '
  'and 2100, data.object, livemode), or null when it is one.';

create function private.handle_stripe_event(p_payload text, p_request_id text default null, p_source_ip inet default null)
returns table (status text, error text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_event jsonb;
  v_problem text;
  v_status text;
  v_error text;
  v_reason text;
begin
  begin
    v_event := p_payload::jsonb;
  exception when others then
    -- JSON that Postgres cannot store: \u0000, a lone surrogate, …
    v_problem := 'the event cannot be stored: ' || sqlerrm;
  end;
  v_problem := coalesce(v_problem, private._stripe_event_problem(v_event));
  if v_problem is not null then
    perform private.log_webhook_rejection(p_request_id, p_source_ip, 400, v_problem,
      case when jsonb_typeof(v_event -> 'id') = 'string' then left(v_event ->> 'id', 255) end,
      case when jsonb_typeof(v_event -> 'type') = 'string' then left(v_event ->> 'type', 255) end);
    return query select 'rejected'::text, v_problem, null::text;
    return;
  end if;

  insert into private.stripe_webhook_events (id, type, livemode, stripe_created_at, payload)
  values (v_event ->> 'id', v_event ->> 'type', coalesce((v_event ->> 'livemode')::boolean, false),
          private._stripe_ts(v_event -> 'created'), v_event)
  on conflict (id) do nothing;

  select p.status, p.error, p.reason into v_status, v_error, v_reason from private.process_stripe_event(v_event ->> 'id') p;

  insert into private.webhook_audit_log (request_id, source_ip, event_id, event_type, outcome, http_status, reason)
  values (p_request_id, p_source_ip, v_event ->> 'id', v_event ->> 'type',
          case v_status when 'duplicate' then 'duplicate' when 'failed' then 'failed' else 'accepted' end,
          case when v_status = 'failed' then 500 else 200 end,
          left(coalesce(v_error, v_status || coalesce(': ' || v_reason, '')), 500));
  return query select v_status, v_error, v_reason;
end;
$$;
comment on function private.handle_stripe_event(text, text, inet) is
  'What the stripe-webhook function calls with a verified body: refuses (status rejected, audited as a 400) a '
  'body that is not a storable Stripe event; otherwise records it once, processes it and audits the delivery, '
  'all in one transaction. Idempotent per event id.';

create function private.replay_failed_webhook_event(p_event_id text) returns table (status text, error text, reason text)
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

grant execute on function private.replay_failed_webhook_event(text) to service_role;

-- -------------------------------------------------------------------------------------- cron history
create function private.purge_cron_history(p_keep interval default interval '7 days') returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from cron.job_run_details where coalesce(end_time, start_time) < now() - p_keep;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
comment on function private.purge_cron_history(interval) is
  'pg_cron (aie_cron_history_purge): deletes cron.job_run_details older than p_keep (7 days), which pg_cron '
  'never trims itself. Returns rows deleted.';

select private.ensure_cron_job('aie_cron_history_purge', '17 3 * * *', 'select private.purge_cron_history()');
