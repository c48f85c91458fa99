create or replace function private.tg_auth_users__sync_email() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.users set email = new.email where id = new.id;
  return new;
end;
$$;

comment on function private.tg_auth_users__sync_email() is
  'AFTER UPDATE OF email on auth.users: keeps public.users.email equal to the verified auth email.';
