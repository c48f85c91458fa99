create table private.employee_analytics_deltas (
  id bigint generated always as identity primary key,
  employee_id uuid not null references public.ai_employees (id) on delete cascade,
  hires integer not null default 0,
  active_hires integer not null default 0,
  ratings integer not null default 0,
  rating_sum integer not null default 0,
  messages bigint not null default 0,
  runs bigint not null default 0,
  last_hired_at timestamptz,
  recount_last_hired boolean not null default false,
  created_at timestamptz not null default now()
);

comment on table private.employee_analytics_deltas is
  'One row per change of an AI employee''s numbers (a hire, a deactivation, a rating, …), written by the triggers '
  'of purchased_employees and employee_ratings in the transaction of the change: an insert, so concurrent hires '
  'of one popular employee never wait on each other. private.fold_employee_analytics moves them into '
  'public.employee_analytics; until then readers add them (private.live_employee_analytics). '
  'recount_last_hired: a hire was deleted, so last_hired_at is recounted from the hires.';

create index employee_analytics_deltas_employee_id_idx on private.employee_analytics_deltas (employee_id);
