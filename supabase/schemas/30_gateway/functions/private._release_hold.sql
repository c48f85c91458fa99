create or replace function private._release_hold(p_request_id text) returns private.token_holds
language plpgsql
set search_path = ''
as $$
declare
  v_hold private.token_holds;
begin
  delete from private.token_holds where request_id = p_request_id returning * into v_hold;
  if v_hold.request_id is not null then
    update public.token_balances set held = greatest(held - v_hold.amount, 0) where user_id = v_hold.user_id;
  end if;
  return v_hold;
end;
$$;

comment on function private._release_hold(text) is 'Removes a hold and gives its tokens back to the unreserved balance.';
