-- Writes a subscription's state unless the row holds a state that ranks higher, then re-chooses the user's
-- current subscription. Every column is written from the state itself (nothing kept from the row it
-- replaces), so the row is a function of the highest-ranked event alone.

create or replace function private._put_subscription_state(p_state public.user_subscriptions) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
begin
  -- Changes to one user's subscriptions take turns (the user row first, as every writer of it does), so the
  -- choice of the current one always sees the others' committed state.
  select user_id into v_user_id from public.user_subscriptions where stripe_subscription_id = p_state.stripe_subscription_id;
  perform 1 from public.users where id = coalesce(v_user_id, p_state.user_id) for no key update;
  if p_state.plan_id is null or not exists (select 1 from public.subscription_plans where id = p_state.plan_id) then
    raise exception 'Stripe price % is not configured for any plan', p_state.stripe_price_id using errcode = 'PB422';
  end if;
  insert into public.user_subscriptions as s (
    user_id, plan_id, billing_period, status, stripe_subscription_id, stripe_customer_id, stripe_price_id,
    current_period_start, current_period_end, cancel_at_period_end, canceled_at, ended_at, is_current,
    stripe_updated_at, stripe_created_at, stripe_event_id, state_source)
  values (
    p_state.user_id, p_state.plan_id, p_state.billing_period, p_state.status, p_state.stripe_subscription_id,
    p_state.stripe_customer_id, p_state.stripe_price_id, p_state.current_period_start, p_state.current_period_end,
    coalesce(p_state.cancel_at_period_end, false), p_state.canceled_at, p_state.ended_at, false,
    p_state.stripe_updated_at, p_state.stripe_created_at, p_state.stripe_event_id, p_state.state_source)
  on conflict (stripe_subscription_id) do update set
    plan_id = excluded.plan_id,
    billing_period = excluded.billing_period,
    status = excluded.status,
    stripe_customer_id = excluded.stripe_customer_id,
    stripe_price_id = excluded.stripe_price_id,
    current_period_start = excluded.current_period_start,
    current_period_end = excluded.current_period_end,
    cancel_at_period_end = excluded.cancel_at_period_end,
    canceled_at = excluded.canceled_at,
    ended_at = excluded.ended_at,
    stripe_updated_at = excluded.stripe_updated_at,
    stripe_created_at = excluded.stripe_created_at,
    stripe_event_id = excluded.stripe_event_id,
    state_source = excluded.state_source
  where (private._subscription_state_rank(excluded.state_source, excluded.status), excluded.stripe_updated_at,
         private._subscription_stage(excluded.status), excluded.stripe_event_id)
      > (private._subscription_state_rank(s.state_source, s.status), s.stripe_updated_at,
         private._subscription_stage(s.status), coalesce(s.stripe_event_id, ''));
  perform private._refresh_current_subscription(coalesce(v_user_id, p_state.user_id));
end;
$$;

comment on function private._put_subscription_state(public.user_subscriptions) is
  'Upserts a subscription''s state (a user_subscriptions row; id, is_current and timestamps are ignored) unless '
  'the row holds a higher-ranked one, then re-chooses the user''s current subscription. Idempotent, and '
  'commutative: the row ends as the highest-ranked state whatever order the states come in.';
