create or replace function private._plan_for_price(p_price text, out plan_id text, out billing_period text)
language sql stable
set search_path = ''
as $$
  select id, case when stripe_price_monthly = p_price then 'monthly' else 'yearly' end
    from public.subscription_plans
   where p_price in (stripe_price_monthly, stripe_price_yearly)
$$;

comment on function private._plan_for_price(text) is 'The plan and billing period a Stripe price id is configured for.';
