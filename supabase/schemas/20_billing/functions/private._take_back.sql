-- Takes back a share of a token pack once: as much of it as the balance has (the rest is the shortfall),
-- remembered in token_pack_takebacks whatever it found. Returns the tokens taken.

create or replace function private._take_back(
  p_credit public.token_transactions, p_reference text, p_reason text, p_share bigint, p_metadata jsonb
) returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_balance bigint;
  v_taken bigint;
begin
  if exists (select 1 from private.token_pack_takebacks where reference = p_reference) then
    return 0; -- decided already, whatever the balance did since
  end if;
  select balance into v_balance from public.token_balances where user_id = p_credit.user_id;
  v_taken := greatest(least(p_share, v_balance), 0);
  if v_taken > 0 then
    perform private.update_user_token_balance(
      p_credit.user_id, -v_taken, p_reason, p_reference,
      p_metadata || jsonb_build_object('share', p_share, 'shortfall', p_share - v_taken));
  end if;
  insert into private.token_pack_takebacks (reference, payment_intent_id, user_id, share_tokens, taken_tokens)
  values (p_reference, p_credit.metadata ->> 'payment_intent', p_credit.user_id, p_share, v_taken);
  return v_taken;
end;
$$;

comment on function private._take_back(public.token_transactions, text, text, bigint, jsonb) is
  'Takes a share of a token pack back once per reference: debits what the balance has (never below zero; the '
  'ledger row records the shortfall) and records the decision in token_pack_takebacks. A repeat is a no-op.';
