-- A subscription snapshot (the object of a customer.subscription.* event) as a user_subscriptions state.

create or replace function private._subscription_snapshot(
  p_user_id uuid, p_subscription jsonb, p_event_id text, p_event_created timestamptz, p_deleted boolean
) returns public.user_subscriptions
language plpgsql
stable
set search_path = ''
as $$
declare
  v_state public.user_subscriptions;
  v_item jsonb;
begin
  -- The item whose price is one of our plans (a subscription may carry other items); else the first.
  select i into v_item
    from jsonb_array_elements(case when jsonb_typeof(p_subscription -> 'items' -> 'data') = 'array'
                                   then p_subscription -> 'items' -> 'data' else '[]' end) with ordinality as t (i, n)
   order by (select m.plan_id from private._plan_for_price(i -> 'price' ->> 'id') m) is null, n
   limit 1;
  select m.plan_id, m.billing_period into v_state.plan_id, v_state.billing_period
    from private._plan_for_price(v_item -> 'price' ->> 'id') m;
  v_state.plan_id := coalesce(v_state.plan_id, p_subscription -> 'metadata' ->> 'plan');
  v_state.user_id := p_user_id;
  v_state.status := case when p_deleted then 'canceled' else p_subscription ->> 'status' end;
  v_state.stripe_subscription_id := p_subscription ->> 'id';
  v_state.stripe_customer_id := p_subscription ->> 'customer';
  v_state.stripe_price_id := v_item -> 'price' ->> 'id';
  -- Since API version 2025-03-31 the current period is on the item; before, on the subscription.
  v_state.current_period_start := private._stripe_ts(coalesce(v_item -> 'current_period_start',
                                                               p_subscription -> 'current_period_start'));
  v_state.current_period_end := private._stripe_ts(coalesce(v_item -> 'current_period_end',
                                                             p_subscription -> 'current_period_end'));
  v_state.cancel_at_period_end := coalesce((p_subscription ->> 'cancel_at_period_end')::boolean, false);
  v_state.canceled_at := private._stripe_ts(p_subscription -> 'canceled_at');
  v_state.ended_at := private._stripe_ts(p_subscription -> 'ended_at');
  v_state.stripe_created_at := private._stripe_ts(p_subscription -> 'created');
  v_state.stripe_updated_at := p_event_created;
  v_state.stripe_event_id := p_event_id;
  v_state.state_source := 'subscription';
  return v_state;
end;
$$;

comment on function private._subscription_snapshot(uuid, jsonb, text, timestamptz, boolean) is
  'The user_subscriptions state a Stripe subscription object describes: plan and period from the item whose '
  'price is one of our plans (metadata.plan when none is), status canceled for a deletion.';
