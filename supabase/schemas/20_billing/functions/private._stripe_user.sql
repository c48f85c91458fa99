-- The user of a Stripe object: our own metadata.user_id (set when we created the Checkout Session) or
-- client_reference_id, cross-checked against the customer id we stored; else by customer. Null when there is
-- no such user here (another app on the same Stripe account, a deleted user).

create or replace function private._stripe_user(p_customer text, p_user_hint text) returns uuid
language plpgsql
set search_path = ''
as $$
declare
  v_user_id uuid;
  v_customer text;
begin
  if p_user_hint is not null and p_user_hint ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select id, stripe_customer_id into v_user_id, v_customer from public.users where id = p_user_hint::uuid;
  end if;
  if v_user_id is not null then
    if p_customer is not null and v_customer is not null and v_customer <> p_customer then
      raise exception 'user % belongs to customer %, not %', v_user_id, v_customer, p_customer using errcode = 'PB409';
    end if;
    if v_customer is null and p_customer is not null then
      update public.users set stripe_customer_id = p_customer where id = v_user_id;
    end if;
    return v_user_id;
  end if;
  -- No hint, or a hint naming no user here (deleted): the customer decides.
  if p_customer is null then
    return null;
  end if;
  select id into v_user_id from public.users where stripe_customer_id = p_customer;
  return v_user_id;
end;
$$;

comment on function private._stripe_user(text, text) is
  'Resolves the user of a Stripe object (the metadata hint when it names a user here, else the customer); links '
  'the customer id on first sight. Null when no user here matches; PB409 when the hint''s user belongs to '
  'another customer.';
