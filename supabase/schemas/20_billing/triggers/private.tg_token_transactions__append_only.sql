create or replace function private.tg_token_transactions__append_only() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Deleting the user (GDPR erasure) cascades here; that is the only delete allowed.
  if tg_op = 'DELETE' and not exists (select 1 from public.users where id = old.user_id) then
    return old;
  end if;
  raise exception 'token_transactions is append-only' using errcode = 'PB405';
end;
$$;

comment on function private.tg_token_transactions__append_only() is
  'BEFORE UPDATE OR DELETE on token_transactions: refuses, except the cascade of a deleted user.';
