-- Gives back what a takeback took (a refund that failed, a dispute won, a rounding no longer due), once.

create or replace function private._give_back(p_credit public.token_transactions, p_reference text, p_metadata jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_takeback private.token_pack_takebacks;
begin
  update private.token_pack_takebacks set given_back_at = now()
   where reference = p_reference and given_back_at is null
  returning * into v_takeback;
  if v_takeback.taken_tokens > 0 then
    perform private.update_user_token_balance(
      p_credit.user_id, v_takeback.taken_tokens, 'token_pack_reinstated', 'reinstated:' || p_reference, p_metadata);
  end if;
end;
$$;

comment on function private._give_back(public.token_transactions, text, jsonb) is
  'Gives back, once, what the takeback under p_reference took (reference reinstated:<that reference>).';
