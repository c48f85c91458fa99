create table public.usage_alerts (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  threshold_percent integer not null constraint threshold_is_known check (threshold_percent in (50, 80, 100)),
  period_start timestamptz not null,
  used_tokens bigint not null,
  allowance_tokens bigint not null,
  read_at timestamptz,
  created_at timestamptz not null default now(),
  constraint usage_alerts_once_per_threshold_and_period unique (user_id, threshold_percent, period_start)
);

comment on table public.usage_alerts is
  'A user crossed 50/80/100 % of their plan''s monthly token allowance in a billing period: one row per threshold '
  'per period (the job is idempotent). Users read their own and mark them read.';

create index usage_alerts_user_id_idx on public.usage_alerts (user_id, created_at desc);

alter table public.usage_alerts enable row level security;

create policy "Users can read their own usage alerts" on public.usage_alerts
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can mark their own usage alerts read" on public.usage_alerts
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

revoke all on public.usage_alerts from anon, authenticated;
grant select on public.usage_alerts to authenticated;
grant update (read_at) on public.usage_alerts to authenticated;
