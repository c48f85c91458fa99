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

create trigger _100_timestamps before update on public.user_profiles
  for each row execute function private.tg__set_updated_at();

alter table public.user_profiles enable row level security;

create policy "Users can read their own profile" on public.user_profiles
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can update their own profile" on public.user_profiles
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- Least privilege on top of RLS: anon has nothing here; authenticated reads its row and updates only the
-- columns that are the user's to change. The row is created with the user and removed by cascade.
revoke all on public.user_profiles from anon, authenticated;
grant select on public.user_profiles to authenticated;
grant update (display_name, avatar_url, bio, company, job_title) on public.user_profiles to authenticated;
