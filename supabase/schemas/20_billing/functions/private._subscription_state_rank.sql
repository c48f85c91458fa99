create or replace function private._subscription_state_rank(p_source text, p_status text) returns integer
language sql immutable
set search_path = ''
as $$
  select case
    when p_source = 'subscription' and p_status = 'incomplete' then 0
    when p_source = 'checkout_session' then 1
    else 2
  end
$$;

comment on function private._subscription_state_rank(text, text) is
  'The first key of a subscription state''s precedence: 0 a snapshot still incomplete, 1 a paid checkout '
  'session (proof that the subscription got past incomplete), 2 any other subscription snapshot. Within a '
  'rank, the event''s created time, then its life stage (private._subscription_stage), then its id decide.';
