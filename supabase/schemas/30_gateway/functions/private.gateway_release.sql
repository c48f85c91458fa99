create or replace function private.gateway_release(p_request_id text) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_user uuid;
begin
  select user_id into v_user from private.token_holds where request_id = p_request_id;
  if v_user is null then
    return false;
  end if;
  perform 1 from public.token_balances where user_id = v_user for update;
  return (private._release_hold(p_request_id)).request_id is not null;
end;
$$;

comment on function private.gateway_release(text) is
  'Gives back the hold of an admitted call that was then refused (e.g. by the Upstash limiter). Idempotent.';
