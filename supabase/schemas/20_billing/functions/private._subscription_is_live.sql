create or replace function private._subscription_is_live(p_status text) returns boolean
language sql immutable
set search_path = ''
as $$ select p_status in ('active', 'trialing', 'past_due') $$;

comment on function private._subscription_is_live(text) is
  'Whether a Stripe subscription status gives the user its paid plan: active, trialing, past_due (the retry '
  'grace period). incomplete (first payment not made), incomplete_expired, unpaid, paused and canceled do not.';
