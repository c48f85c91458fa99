create or replace function public.get_usage_summary(p_from date, p_to date)
returns table (
  day date, provider text, model text, requests bigint, input_tokens bigint, cached_input_tokens bigint,
  output_tokens bigint, cost_micro_usd bigint
)
language sql stable
security invoker
set search_path = ''
as $$
  select d.day, d.provider, d.model, d.requests, d.input_tokens, d.cached_input_tokens, d.output_tokens,
         d.cost_micro_usd
    from public.usage_daily d
   where d.user_id = (select auth.uid()) and d.day between p_from and p_to
   order by d.day, d.provider, d.model
$$;

comment on function public.get_usage_summary(date, date) is
  'The signed-in user''s usage per day, provider and model between two UTC dates (inclusive), from the daily '
  'rollup: cheap enough for a dashboard. Runs as the caller, under RLS.';

grant execute on function public.get_usage_summary(date, date) to authenticated;
