create or replace function private._subscription_stage(p_status text) returns integer
language sql immutable
set search_path = ''
as $$
  select case
    when p_status = 'incomplete' then 0
    when p_status in ('canceled', 'incomplete_expired') then 2
    else 1
  end
$$;

comment on function private._subscription_stage(text) is
  'Where a Stripe subscription status lies in its life: 0 incomplete, 1 live (active, trialing, past_due, '
  'unpaid, paused), 2 ended. Breaks ties between events created in the same second.';
