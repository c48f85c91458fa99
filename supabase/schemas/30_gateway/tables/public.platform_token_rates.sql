create table public.platform_token_rates (
  id bigint generated always as identity primary key,
  micro_usd_per_mtok bigint not null constraint rate_is_positive check (micro_usd_per_mtok > 0),
  effective_from timestamptz not null,
  effective_to timestamptz,
  created_at timestamptz not null default now(),
  constraint period_is_ordered check (effective_to is null or effective_to > effective_from),
  constraint platform_token_rates_periods_do_not_overlap exclude using gist (
    tstzrange(effective_from, effective_to, '[)') with &&
  )
);

comment on table public.platform_token_rates is
  'What a platform token is worth, with history: micro-dollars of provider cost per million platform tokens, in '
  'force on [effective_from, effective_to) (periods never overlap). A call debits ceil(cost / rate). To change it, '
  'close the current row and add one. Readable by everyone.';

alter table public.platform_token_rates enable row level security;

create policy "Anyone can read platform token rates" on public.platform_token_rates
  for select to anon, authenticated using (true);

revoke all on public.platform_token_rates from anon, authenticated;
grant select on public.platform_token_rates to anon, authenticated;
