create or replace function private.tg_purchased_employees__lock_hirer() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if auth.uid() is not null then
    perform private._lock_hirer(auth.uid());
  end if;
  return null;
end;
$$;

comment on function private.tg_purchased_employees__lock_hirer() is
  'BEFORE UPDATE OF is_active on purchased_employees, per statement: a signed-in user''s update (RLS: only their '
  'own hires) takes their user row lock before it locks any hire row, the order hire_employee and inserts take '
  'them in, so a reactivation by update and a concurrent hire_employee never deadlock.';
