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

create trigger _100_timestamps before update on public.user_settings
  for each row execute function private.tg__set_updated_at();

alter table public.user_settings enable row level security;

create policy "Users can read their own settings" on public.user_settings
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can update their own settings" on public.user_settings
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- Least privilege on top of RLS: anon has nothing here; authenticated reads its row and updates only the
-- columns that are the user's to change. The row is created with the user and removed by cascade.
revoke all on public.user_settings from anon, authenticated;
grant select on public.user_settings to authenticated;
grant update (theme, locale, timezone, email_notifications, marketing_emails, usage_alerts)
  on public.user_settings to authenticated;
