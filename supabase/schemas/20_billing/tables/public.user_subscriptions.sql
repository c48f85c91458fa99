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
  updated_at timestamptz not null default now(),
  stripe_created_at timestamptz,
  stripe_event_id text,
  state_source text not null default 'subscription'
    constraint state_source_is_known check (state_source in ('checkout_session', 'subscription'))
);

comment on table public.user_subscriptions is
  'One row per Stripe subscription of a user, holding the state of the highest-ranked event seen for it '
  '(private._subscription_state_rank, then event time, life stage, event id), so the end state never depends '
  'on delivery order. is_current marks the user''s current subscription (live beats not live, then the '
  'newest). Written by the webhook only.';

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

create index user_subscriptions_user_id_idx on public.user_subscriptions (user_id, created_at desc);

create unique index user_subscriptions_one_current_per_user on public.user_subscriptions (user_id) where is_current;

create index user_subscriptions_plan_id_idx on public.user_subscriptions (plan_id);

create trigger _100_timestamps before update on public.user_subscriptions
  for each row execute function private.tg__set_updated_at();

alter table public.user_subscriptions enable row level security;

create policy "Users can read their own subscriptions" on public.user_subscriptions
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.user_subscriptions from anon, authenticated;
grant select on public.user_subscriptions to authenticated;
