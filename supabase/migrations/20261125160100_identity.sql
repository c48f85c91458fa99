-- Identity: one public.users row per auth.users row, plus the user's profile and settings.
--   tables    public.users, public.user_profiles, public.user_settings
--   triggers  auth.users insert -> creates all three; auth.users email change -> public.users.email;
--             updated_at on each table
--   RLS       a user reads their own rows and updates only the columns that are theirs to change;
--             plan, plan_status and the Stripe ids are written by the service side only.

-- ------------------------------------------------------------------------------------------ tables
create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  plan text not null default 'free'
    constraint plan_is_known check (plan in ('free', 'pro', 'max')),
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

create table public.user_profiles (
  user_id uuid primary key references public.users (id) on delete cascade,
  display_name text constraint display_name_is_short check (char_length(display_name) <= 100),
  avatar_url text
    constraint avatar_url_is_https check (avatar_url ~ '^https://' and char_length(avatar_url) <= 2048),
  bio text constraint bio_is_short check (char_length(bio) <= 2000),
  company text constraint company_is_short check (char_length(company) <= 200),
  job_title text constraint job_title_is_short check (char_length(job_title) <= 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.user_profiles is
  'The user''s profile (name, avatar, bio, company). Created with the user; only the owner reads and edits it.';

create table public.user_settings (
  user_id uuid primary key references public.users (id) on delete cascade,
  theme text not null default 'system' constraint theme_is_known check (theme in ('system', 'light', 'dark')),
  locale text not null default 'en' constraint locale_is_bcp47 check (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'),
  timezone text not null default 'UTC' constraint timezone_is_short check (char_length(timezone) <= 64),
  email_notifications boolean not null default true,
  marketing_emails boolean not null default false,
  usage_alerts boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table public.user_settings is
  'The user''s preferences (theme, locale, notification choices). Created with the user; the owner edits it.';

-- ----------------------------------------------------------------------------------------- indexes
-- (stripe_customer_id and stripe_subscription_id are indexed by their unique constraints;
--  user_profiles and user_settings are keyed by user_id.)
create index users_email_idx on public.users (email);

-- ---------------------------------------------------------------------------------------- triggers
create trigger _100_timestamps before update on public.users
  for each row execute function private.tg__set_updated_at();
create trigger _100_timestamps before update on public.user_profiles
  for each row execute function private.tg__set_updated_at();
create trigger _100_timestamps before update on public.user_settings
  for each row execute function private.tg__set_updated_at();

create function private.tg_auth_users__create_identity() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.users (id, email) values (new.id, new.email);
  insert into public.user_profiles (user_id, display_name, avatar_url)
  values (
    new.id,
    left(coalesce(nullif(btrim(new.raw_user_meta_data ->> 'full_name'), ''),
                  nullif(btrim(new.raw_user_meta_data ->> 'name'), '')), 100),
    case when new.raw_user_meta_data ->> 'avatar_url' ~ '^https://'
      then left(new.raw_user_meta_data ->> 'avatar_url', 2048) end
  );
  insert into public.user_settings (user_id) values (new.id);
  return new;
end;
$$;
comment on function private.tg_auth_users__create_identity() is
  'AFTER INSERT on auth.users: creates the public.users, user_profiles and user_settings rows of the new '
  'user (name and avatar from the sign-up metadata). Security definer: Auth inserts as its own role.';

create function private.tg_auth_users__sync_email() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.users set email = new.email where id = new.id;
  return new;
end;
$$;
comment on function private.tg_auth_users__sync_email() is
  'AFTER UPDATE OF email on auth.users: keeps public.users.email equal to the verified auth email.';

create trigger _500_create_identity after insert on auth.users
  for each row execute function private.tg_auth_users__create_identity();
create trigger _500_sync_email after update of email on auth.users
  for each row when (old.email is distinct from new.email)
  execute function private.tg_auth_users__sync_email();

-- --------------------------------------------------------------------------------------------- RLS
alter table public.users enable row level security;
alter table public.user_profiles enable row level security;
alter table public.user_settings enable row level security;

create policy "Users can read their own account" on public.users
  for select to authenticated using ((select auth.uid()) = id);

create policy "Users can read their own profile" on public.user_profiles
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can update their own profile" on public.user_profiles
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

create policy "Users can read their own settings" on public.user_settings
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "Users can update their own settings" on public.user_settings
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- -------------------------------------------------------------------------------------------- data
-- Users who signed up before this migration (a hosted project with existing users) get their rows too.
insert into public.users (id, email) select id, email from auth.users on conflict (id) do nothing;
insert into public.user_profiles (user_id, display_name)
select id, left(coalesce(nullif(btrim(raw_user_meta_data ->> 'full_name'), ''),
                         nullif(btrim(raw_user_meta_data ->> 'name'), '')), 100)
from auth.users
on conflict (user_id) do nothing;
insert into public.user_settings (user_id) select id from auth.users on conflict (user_id) do nothing;

-- ------------------------------------------------------------------------------------------ grants
-- Least privilege on top of RLS: anon has nothing here; authenticated reads, and updates only the
-- columns that are the user's to change. Rows are created by trigger and removed by cascade.
revoke all on public.users, public.user_profiles, public.user_settings from anon, authenticated;
grant select on public.users, public.user_profiles, public.user_settings to authenticated;
grant update (display_name, avatar_url, bio, company, job_title) on public.user_profiles to authenticated;
grant update (theme, locale, timezone, email_notifications, marketing_emails, usage_alerts)
  on public.user_settings to authenticated;
