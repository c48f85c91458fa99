create or replace function private._subscription_state_rank(p_source text, p_status text)
returns private.subscription_state_precedence
language sql immutable
set search_path = ''
as $$
  select case
    when p_source = 'subscription' and p_status = 'incomplete' then 'incomplete_snapshot'
    when p_source = 'checkout_session' then 'paid_checkout_session'
    else 'snapshot'
  end::private.subscription_state_precedence
$$;

comment on function private._subscription_state_rank(text, text) is
  'The precedence of a subscription state by where it came from (private.subscription_state_precedence). Within '
  'one, the event''s created time, then its life stage (private._subscription_stage), then its id decide.';
