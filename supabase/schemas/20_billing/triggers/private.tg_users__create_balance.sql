create or replace function private.tg_users__create_balance() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  insert into public.token_balances (user_id) values (new.id) on conflict do nothing;
  return new;
end;
$$;

comment on function private.tg_users__create_balance() is 'AFTER INSERT on public.users: the user''s zero balance row.';
