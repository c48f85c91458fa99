create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  plan text not null default 'free', -- a public.subscription_plans id (the foreign key is billing's)
  plan_status text not null default 'active'
    constraint plan_status_is_known check (plan_status in (
      'active', 'trialing', 'past_due', 'canceled', 'unpaid', 'incomplete', 'incomplete_expired', 'paused'
    )),
  stripe_customer_id text
    constraint stripe_customer_id_is_unique unique
    constraint stripe_customer_id_looks_like_one check (stripe_customer_id ~ '^cus_[A-Za-z0-9]+$'),
  stripe_subscription_id text
    constraint stripe_subscription_id_is_unique unique
    constraint stripe_subscription_id_looks_like_one check (stripe_subscription_id ~ '^sub_[A-Za-z0-9]+$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.users is
  'One row per auth.users row (created by trigger): the account''s email, plan and Stripe ids. '
  'Users read their own row; only the service side changes plan, plan_status and the Stripe ids.';

comment on column public.users.plan is 'Current plan tier: free, pro or max. Written by billing only.';

comment on column public.users.plan_status is 'Stripe subscription status of the current plan (active for free).';

-- (stripe_customer_id and stripe_subscription_id are indexed by their unique constraints.)
create index users_email_idx on public.users (email);

create trigger _100_timestamps before update on public.users
  for each row execute function private.tg__set_updated_at();

alter table public.users enable row level security;

create policy "Users can read their own account" on public.users
  for select to authenticated using ((select auth.uid()) = id);

-- Least privilege on top of RLS: anon has nothing here; authenticated reads, and updates only the
-- columns that are the user's to change. Rows are created by trigger and removed by cascade.
revoke all on public.users from anon, authenticated;
grant select on public.users to authenticated;

-- Every auth.users row has its public.users row (with profile and settings), and the same email.
create trigger _500_create_identity after insert on auth.users
  for each row execute function private.tg_auth_users__create_identity();

create trigger _500_sync_email after update of email on auth.users
  for each row when (old.email is distinct from new.email)
  execute function private.tg_auth_users__sync_email();
