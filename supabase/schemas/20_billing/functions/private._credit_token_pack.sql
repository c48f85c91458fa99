-- Credits a paid token pack; returns why it did not, or null when it did (or had already).

create or replace function private._credit_token_pack(
  p_object jsonb, p_payment_intent text, p_session text, p_amount_paid bigint
) returns text
language plpgsql
set search_path = ''
as $$
declare
  v_meta jsonb := coalesce(p_object -> 'metadata', '{}');
  v_user_id uuid;
  v_pack public.token_packs;
  v_tokens bigint;
begin
  if v_meta ->> 'pack_id' is null then
    return 'not a token pack payment';
  end if;
  v_user_id := private._stripe_user(p_object ->> 'customer', coalesce(v_meta ->> 'user_id', p_object ->> 'client_reference_id'));
  if v_user_id is null then
    return format('no user here for Stripe customer %s', coalesce(p_object ->> 'customer', '(none)'));
  end if;
  select * into v_pack from public.token_packs where id = v_meta ->> 'pack_id';
  if not found then
    raise exception 'unknown token pack %', v_meta ->> 'pack_id' using errcode = 'PB422';
  end if;
  -- What the buyer was sold (stamped at checkout), not today's catalog. The ledger row is the same whichever
  -- event (checkout session or payment intent) carries the payment first.
  v_tokens := coalesce((v_meta ->> 'tokens')::bigint, v_pack.tokens);
  perform private.update_user_token_balance(
    v_user_id, v_tokens, 'token_pack_purchase',
    case when p_payment_intent is not null then 'pi:' || p_payment_intent else 'cs:' || p_session end,
    jsonb_build_object('pack_id', v_pack.id, 'payment_intent', p_payment_intent, 'amount_paid', p_amount_paid));
  if p_payment_intent is not null then
    perform private._apply_pack_reversals(p_payment_intent);
  end if;
  return null;
end;
$$;

comment on function private._credit_token_pack(jsonb, text, text, bigint) is
  'Credits a paid token pack once per PaymentIntent (reference pi:<id>, else cs:<checkout session id>), '
  'whichever event carries it first, then applies the refunds and disputes already recorded for it. Returns '
  'why nothing was credited (not a pack, no such user), or null.';
