create or replace function private._invoice_subscription_id(p_invoice jsonb) returns text
language sql immutable
set search_path = ''
as $$
  select coalesce(p_invoice -> 'parent' -> 'subscription_details' ->> 'subscription', p_invoice ->> 'subscription')
$$;

comment on function private._invoice_subscription_id(jsonb) is
  'The subscription a Stripe invoice bills: parent.subscription_details.subscription (API 2025-03-31 and later), '
  'else the older top-level subscription field.';
