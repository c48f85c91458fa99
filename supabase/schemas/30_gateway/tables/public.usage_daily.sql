create table public.usage_daily (
  user_id uuid not null references public.users (id) on delete cascade,
  day date not null,
  provider text not null,
  model text not null,
  requests bigint not null default 0,
  input_tokens bigint not null default 0,
  cached_input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  cost_micro_usd bigint not null default 0,
  unpriced_requests bigint not null default 0,
  primary key (user_id, day, provider, model)
);

comment on table public.usage_daily is
  'Daily totals per user, provider and model, kept by a trigger on token_usage (UTC days). Users read their own; '
  'public.get_usage_summary reads it for dashboards.';

alter table public.usage_daily enable row level security;

create policy "Users can read their own daily usage" on public.usage_daily
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.usage_daily from anon, authenticated;
grant select on public.usage_daily to authenticated;
-- Kept by the trigger on token_usage only.
revoke insert, update, delete, truncate on public.usage_daily from service_role;
