create or replace function private._subscription_stage(p_status text) returns private.subscription_life_stage
language sql immutable
set search_path = ''
as $$
  select case
    when p_status = 'incomplete' then 'incomplete'
    when p_status in ('canceled', 'incomplete_expired') then 'ended'
    else 'live'
  end::private.subscription_life_stage
$$;

comment on function private._subscription_stage(text) is
  'The life stage of a Stripe subscription status (private.subscription_life_stage).';
