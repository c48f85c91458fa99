create or replace function private._refresh_current_subscription(p_user_id uuid) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_current public.user_subscriptions;
  v_live boolean;
begin
  select * into v_current from public.user_subscriptions
   where user_id = p_user_id
   order by private._subscription_is_live(status) desc, stripe_created_at desc nulls last, stripe_subscription_id desc
   limit 1;
  v_live := coalesce(private._subscription_is_live(v_current.status), false);
  -- Two statements: the unique index allows one current row at every moment.
  update public.user_subscriptions set is_current = false
   where user_id = p_user_id and is_current and id is distinct from v_current.id;
  update public.user_subscriptions set is_current = true where id = v_current.id and not is_current;
  update public.users
     set plan = case when v_live then v_current.plan_id else 'free' end,
         plan_status = case when v_live then v_current.status else 'active' end,
         stripe_subscription_id = case when v_live then v_current.stripe_subscription_id end
   where id = p_user_id
     and (plan, plan_status, stripe_subscription_id) is distinct from
         (case when v_live then v_current.plan_id else 'free' end,
          case when v_live then v_current.status else 'active' end,
          case when v_live then v_current.stripe_subscription_id end);
end;
$$;

comment on function private._refresh_current_subscription(uuid) is
  'Chooses the user''s current subscription by rule (live beats not live, then the newest by Stripe''s created '
  'time, then the id) and sets public.users'' plan from it: its plan when live, else free. Idempotent.';
