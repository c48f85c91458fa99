create or replace function private.tg_chat_sessions__set_employee() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Whatever the writer sent: the hire's employee. (An unknown hire leaves it null; the foreign key then refuses
  -- the row by its hire.)
  select h.employee_id into new.employee_id from public.purchased_employees h where h.id = new.hire_id;
  if new.employee_id is null then
    raise exception 'no hire % of user %', new.hire_id, new.user_id using errcode = '23503';
  end if;
  return new;
end;
$$;

comment on function private.tg_chat_sessions__set_employee() is
  'BEFORE INSERT or UPDATE OF hire_id on chat_sessions: sets employee_id to the hire''s employee (a client never '
  'chooses it). An unknown hire is a foreign key violation (23503).';
