create table public.purchased_employees (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  employee_id uuid not null references public.ai_employees (id),
  pinned_version integer not null,
  nickname text constraint nickname_is_short check (char_length(nickname) between 1 and 100),
  custom_instructions text
    constraint custom_instructions_are_short check (char_length(custom_instructions) <= 4000),
  is_active boolean not null default true,
  hired_at timestamptz not null default now(),
  pinned_at timestamptz not null default now(),
  deactivated_at timestamptz,
  last_used_at timestamptz,
  updated_at timestamptz not null default now(),
  constraint purchased_employees_one_per_user_and_employee unique (user_id, employee_id),
  -- What chat_sessions' composite foreign key references: a session is with one of its owner's own hires.
  constraint purchased_employees_id_user_id_key unique (id, user_id),
  constraint pinned_version_exists foreign key (employee_id, pinned_version)
    references public.ai_employee_versions (employee_id, version),
  constraint deactivated_at_is_set_when_inactive check ((deactivated_at is null) = is_active)
);

comment on table public.purchased_employees is
  'A hire: a user''s AI employee, one per user and employee. It runs with the version it is pinned to, set by the '
  'database when hired and moved only by upgrade_hired_employee (to the current version); deactivating and '
  'reactivating keep it. Active hires are capped by the plan''s max_hired_employees (race-free). Users hire '
  'through hire_employee(slug) and read, rename, instruct and deactivate their own; nobody deletes one (but with '
  'the user).';

comment on column public.purchased_employees.pinned_version is
  'The ai_employee_versions version this hire runs with: the current one when hired, then whatever upgrade moved it '
  'to. Never set by a client.';
comment on column public.purchased_employees.nickname is 'The user''s name for it (null: the employee''s own name).';
comment on column public.purchased_employees.custom_instructions is
  'The user''s own instructions, added to the pinned system prompt; the user''s to edit.';
comment on column public.purchased_employees.hired_at is 'When it was first hired (a reactivation keeps it).';
comment on column public.purchased_employees.pinned_at is 'When pinned_version was last set (the hire, an upgrade).';
comment on column public.purchased_employees.deactivated_at is 'When it was last deactivated; null while active.';
comment on column public.purchased_employees.last_used_at is
  'When the user last wrote to it (a user message in a chat session with it, stamped by chat_messages'' trigger): '
  'what "active users" counts.';

-- (The unique constraint indexes user_id first; this one serves the employee and pinned-version foreign keys.)
create index purchased_employees_employee_version_idx on public.purchased_employees (employee_id, pinned_version);
-- A user's active hires: what the plan's cap counts.
create index purchased_employees_active_by_user_idx on public.purchased_employees (user_id) where is_active;
create index purchased_employees_last_used_idx on public.purchased_employees (last_used_at, employee_id)
  where last_used_at is not null;

-- A user's hires change under their row lock, taken before any hire row is (see the function).
create trigger _050_lock_hirer before update of is_active on public.purchased_employees
  for each statement execute function private.tg_purchased_employees__lock_hirer();

create trigger _100_timestamps before update on public.purchased_employees
  for each row execute function private.tg__set_updated_at();

create trigger _200_pin_version before insert or update on public.purchased_employees
  for each row execute function private.tg_purchased_employees__pin_version();

create trigger _300_admit before insert or update of is_active on public.purchased_employees
  for each row execute function private.tg_purchased_employees__admit();

create trigger _500_record_analytics after insert or update of is_active or delete on public.purchased_employees
  for each row execute function private.tg_purchased_employees__record_analytics();

alter table public.purchased_employees enable row level security;

create policy "Users can read their own hires" on public.purchased_employees
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can update their own hires" on public.purchased_employees
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- Least privilege on top of RLS: a hire is made by hire_employee (limit, pin, analytics in one call), never
-- inserted or deleted by a client; the user changes only the name, the instructions and the active flag.
revoke all on public.purchased_employees from anon, authenticated;
grant select on public.purchased_employees to authenticated;
grant update (nickname, custom_instructions, is_active) on public.purchased_employees to authenticated;

-- A policy of public.ai_employees that reads this table, so it lives here.
create policy "Users can read listed employees and those they hired" on public.ai_employees
  for select to authenticated using (
    is_listed or exists (select 1 from public.purchased_employees h
                          where h.employee_id = ai_employees.id and h.user_id = (select auth.uid()))
  );
