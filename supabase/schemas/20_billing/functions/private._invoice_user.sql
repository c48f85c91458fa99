create or replace function private._invoice_user(p_invoice jsonb) returns uuid
language sql stable
set search_path = ''
as $$
  select private._stripe_user(p_invoice ->> 'customer',
                              coalesce(p_invoice -> 'parent' -> 'subscription_details' -> 'metadata' ->> 'user_id',
                                       p_invoice -> 'subscription_details' -> 'metadata' ->> 'user_id'))
$$;

comment on function private._invoice_user(jsonb) is
  'The user a Stripe invoice belongs to (private._stripe_user: by its customer, else the subscription''s '
  'metadata user_id, in either API version''s place).';
