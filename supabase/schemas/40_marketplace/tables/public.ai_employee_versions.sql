create table public.ai_employee_versions (
  employee_id uuid not null references public.ai_employees (id) on delete cascade,
  version integer not null constraint version_is_positive check (version > 0),
  system_prompt text not null,
  tools text[] not null,
  provider text not null,
  model text not null,
  generation_settings jsonb not null,
  change_note text,
  created_at timestamptz not null default now(),
  primary key (employee_id, version)
);

comment on table public.ai_employee_versions is
  'Immutable history of each AI employee: version N is the prompt, tools, provider, model and settings it had from '
  'created_at on, with its change note. Made only by the trigger on ai_employees (a versioned change makes N+1), '
  'never updated or deleted (but with its employee). A hire runs with the version it is pinned to. Readable where '
  'its employee is, but the system prompt (never granted to a client role).';

create trigger _100_made_by_the_catalog before insert on public.ai_employee_versions
  for each row execute function private.tg_ai_employee_versions__immutable();

create trigger _100_immutable before update or delete on public.ai_employee_versions
  for each row execute function private.tg_ai_employee_versions__immutable();

create trigger _100_never_truncated before truncate on public.ai_employee_versions
  for each statement execute function private.tg_ai_employee_versions__immutable();

alter table public.ai_employee_versions enable row level security;

-- Wherever the caller may read the employee (its own policies decide), they may read its history.
create policy "Anyone can read the versions of listed employees" on public.ai_employee_versions
  for select to anon using (exists (select 1 from public.ai_employees e where e.id = employee_id));

create policy "Users can read the versions of employees they can read" on public.ai_employee_versions
  for select to authenticated using (exists (select 1 from public.ai_employees e where e.id = employee_id));

revoke all on public.ai_employee_versions from anon, authenticated;
grant select (employee_id, version, tools, provider, model, generation_settings, change_note, created_at)
  on public.ai_employee_versions to anon, authenticated;
-- History is written by the trigger alone, and kept.
revoke insert, update, delete, truncate on public.ai_employee_versions from service_role;
