create or replace function private.check_usage_alerts(p_spike_factor numeric default 10, p_spike_floor bigint default 50000)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_count integer := 0;
  v_added integer;
begin
  -- Allowance thresholds per billing period, in platform tokens billed: the live subscription's current monthly
  -- period, else the UTC month.
  with periods as (
    select u.id as user_id, p.monthly_token_allowance as allowance,
           case when s.billing_period = 'monthly' and s.current_period_start is not null
                     and private._subscription_is_live(s.status)
                then s.current_period_start else date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' end
             as period_start
      from public.users u
      join public.subscription_plans p on p.id = u.plan
      join public.user_settings st on st.user_id = u.id and st.usage_alerts -- the user's opt-out
      left join public.user_subscriptions s on s.user_id = u.id and s.is_current
     where p.monthly_token_allowance > 0
  ), used as (
    select pr.user_id, pr.allowance, pr.period_start, sum(t.debited_tokens) as used
      from periods pr
      join public.token_usage t on t.user_id = pr.user_id and t.created_at >= pr.period_start
     group by pr.user_id, pr.allowance, pr.period_start
  )
  insert into public.usage_alerts (user_id, threshold_percent, period_start, used_tokens, allowance_tokens)
  select u.user_id, th.pct, u.period_start, u.used, u.allowance
    from used u cross join (values (50), (80), (100)) as th (pct)
   where u.used * 100 >= u.allowance * th.pct
  on conflict (user_id, threshold_percent, period_start) do nothing;
  get diagnostics v_added = row_count;
  v_count := v_count + v_added;

  -- Spikes: the last hour above p_spike_factor times the user's average hour of the 7 days before it.
  with recent as (
    select user_id,
           sum(debited_tokens) filter (where created_at >= now() - interval '1 hour') as last_hour,
           sum(debited_tokens) filter (where created_at < now() - interval '1 hour') as trailing_week
      from public.token_usage
     where created_at >= now() - interval '7 days 1 hour'
     group by user_id
  )
  select count(*) filter (where spikes.raised) into v_added
    from (select private.raise_admin_alert(
                   'usage_spike', user_id,
                   jsonb_build_object('last_hour_tokens', last_hour,
                                      'trailing_hourly_average', round(coalesce(trailing_week, 0) / 168.0)),
                   'usage_spike:' || user_id || ':' || to_char(date_trunc('hour', now()), 'YYYY-MM-DD"T"HH24')) as raised
            from recent
           where last_hour >= p_spike_floor and last_hour > p_spike_factor * coalesce(trailing_week, 0) / 168.0) spikes;
  return v_count + v_added;
end;
$$;

comment on function private.check_usage_alerts(numeric, bigint) is
  'pg_cron (aie_usage_alerts): one usage_alerts row per user per threshold (50/80/100 % of the monthly allowance, '
  'in platform tokens billed) per billing period (the live subscription''s, else the UTC month), and an admin '
  'alert when a user''s last hour exceeds p_spike_factor × their trailing hourly average (and p_spike_floor '
  'platform tokens). Idempotent: running it twice adds nothing. Returns rows added.';
