create table public.employee_ratings (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  employee_id uuid not null,
  employee_version integer not null,
  stars smallint not null constraint stars_are_one_to_five check (stars between 1 and 5),
  review text constraint review_is_short check (char_length(btrim(review)) between 1 and 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint employee_ratings_one_per_user_and_employee unique (user_id, employee_id),
  constraint rated_by_a_hirer foreign key (user_id, employee_id)
    references public.purchased_employees (user_id, employee_id) on delete cascade,
  constraint rated_version_exists foreign key (employee_id, employee_version)
    references public.ai_employee_versions (employee_id, version)
);

comment on table public.employee_ratings is
  'A user''s rating of an AI employee they hired: 1-5 stars and an optional review (up to 2000 characters), one per '
  'user and employee, with the version it rates (the hire''s pinned version when written, set by the database). '
  'Only its author reads, edits or deletes it; everyone else reads ratings through list_employee_reviews, which '
  'never shows a user id or email.';

comment on column public.employee_ratings.employee_version is
  'The version rated: the author''s pinned version when the rating was last written. Set by the database.';

-- (The unique constraint indexes user_id first, for both user foreign keys.)
create index employee_ratings_employee_version_idx on public.employee_ratings (employee_id, employee_version);
-- list_employee_reviews: an employee's reviews, newest first.
create index employee_ratings_employee_newest_idx on public.employee_ratings (employee_id, created_at desc, id desc);

create trigger _100_timestamps before update on public.employee_ratings
  for each row execute function private.tg__set_updated_at();

create trigger _200_stamp_version before insert or update on public.employee_ratings
  for each row execute function private.tg_employee_ratings__stamp_version();

create trigger _500_record_analytics after insert or update of stars or delete on public.employee_ratings
  for each row execute function private.tg_employee_ratings__record_analytics();

alter table public.employee_ratings enable row level security;

create policy "Users can read their own ratings" on public.employee_ratings
  for select to authenticated using ((select auth.uid()) = user_id);

-- Only a hirer may rate: the trigger says so clearly, and the foreign key to the hire holds it.
create policy "Users can rate employees as themselves" on public.employee_ratings
  for insert to authenticated with check ((select auth.uid()) = user_id);

create policy "Users can edit their own ratings" on public.employee_ratings
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

create policy "Users can delete their own ratings" on public.employee_ratings
  for delete to authenticated using ((select auth.uid()) = user_id);

revoke all on public.employee_ratings from anon, authenticated;
grant select, delete on public.employee_ratings to authenticated;
grant insert (user_id, employee_id, stars, review) on public.employee_ratings to authenticated;
grant update (stars, review) on public.employee_ratings to authenticated;
