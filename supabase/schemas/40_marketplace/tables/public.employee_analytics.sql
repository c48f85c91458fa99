create table public.employee_analytics (
  employee_id uuid primary key references public.ai_employees (id) on delete cascade,
  hire_count bigint not null default 0 constraint hire_count_is_not_negative check (hire_count >= 0),
  active_hires bigint not null default 0
    constraint active_hires_are_within_hires check (active_hires between 0 and hire_count),
  active_users_30d bigint not null default 0 constraint active_users_are_not_negative check (active_users_30d >= 0),
  rating_count bigint not null default 0 constraint rating_count_is_not_negative check (rating_count >= 0),
  rating_sum bigint not null default 0
    constraint rating_sum_is_within_stars check (rating_sum between rating_count and 5 * rating_count),
  total_messages bigint not null default 0 constraint total_messages_is_not_negative check (total_messages >= 0),
  total_runs bigint not null default 0 constraint total_runs_is_not_negative check (total_runs >= 0),
  last_hired_at timestamptz,
  folded_at timestamptz not null default now(),
  -- Generated last (pg-delta adds generated columns after the others).
  average_rating numeric generated always as (private._average_rating(rating_sum, rating_count)) stored
);

comment on table public.employee_analytics is
  'Each AI employee''s numbers as of its last fold (folded_at): hires, active hires, active users (used in the last '
  '30 days), ratings, messages and runs (once chat exists), last hire. Hires and ratings write a delta row each '
  '(private.employee_analytics_deltas, no shared row to lock); the aie_employee_analytics_fold job adds them here '
  'every minute. Exact figures at any moment are this row plus the deltas not yet folded '
  '(private.live_employee_analytics, what list_ai_employees and get_ai_employee read), so clients read those and '
  'not this table; private.recompute_employee_analytics gives the same from the source rows. Service only.';

comment on column public.employee_analytics.hire_count is 'Hires of it (users who hired it, active or not).';
comment on column public.employee_analytics.active_users_30d is
  'Hirers who used it in the last 30 days (purchased_employees.last_used_at): a window over time, so refreshed by '
  'each fold rather than by deltas.';
comment on column public.employee_analytics.rating_sum is 'Sum of its ratings'' stars (the average is this / rating_count).';
comment on column public.employee_analytics.last_hired_at is 'When it was last hired (the newest hired_at of its hires).';
comment on column public.employee_analytics.folded_at is 'When the fold last wrote this row.';

alter table public.employee_analytics enable row level security;

-- No client policy: a client reads exact figures through list_ai_employees / get_ai_employee.
revoke all on public.employee_analytics from anon, authenticated;
-- Written by the fold alone.
revoke insert, update, delete, truncate on public.employee_analytics from service_role;
