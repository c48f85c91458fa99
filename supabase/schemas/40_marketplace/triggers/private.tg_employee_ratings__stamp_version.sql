create or replace function private.tg_employee_ratings__stamp_version() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_pinned integer;
begin
  if tg_op = 'UPDATE' and (new.user_id is distinct from old.user_id or new.employee_id is distinct from old.employee_id) then
    raise exception 'a rating keeps its user and employee' using errcode = '22023';
  end if;
  select h.pinned_version into v_pinned from public.purchased_employees h
   where h.user_id = new.user_id and h.employee_id = new.employee_id;
  if not found then
    perform private.raise_api_error(403, 'not_hired', 'Only users who have hired this AI employee can rate it', null,
      'Hire it first (hire_employee)');
  end if;
  new.employee_version := v_pinned;
  return new;
end;
$$;

comment on function private.tg_employee_ratings__stamp_version() is
  'BEFORE INSERT or UPDATE on employee_ratings: refuses a rating by a user who never hired the employee (not_hired, '
  '403) and records the version rated, the author''s pinned version (whatever was sent); keeps a rating''s user '
  'and employee.';
