create or replace function private.tg_purchased_employees__pin_version() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_current integer;
begin
  if tg_op = 'UPDATE' and (new.user_id is distinct from old.user_id or new.employee_id is distinct from old.employee_id
                           or new.hired_at is distinct from old.hired_at) then
    raise exception 'a hire keeps its user, employee and hired_at; hire the other employee instead'
      using errcode = '22023';
  end if;
  if tg_op = 'UPDATE' and new.pinned_version is not distinct from old.pinned_version then
    return new;
  end if;
  select e.current_version into v_current from public.ai_employees e where e.id = new.employee_id;
  if tg_op = 'INSERT' then
    -- Whatever the writer sent: the version in force now.
    new.pinned_version := v_current;
    new.pinned_at := now();
  elsif new.pinned_version is distinct from v_current then
    raise exception 'a hire''s pinned version moves only to its employee''s current version (%): '
      'public.upgrade_hired_employee', v_current using errcode = '22023';
  else
    new.pinned_at := now();
  end if;
  return new;
end;
$$;

comment on function private.tg_purchased_employees__pin_version() is
  'BEFORE INSERT or UPDATE on purchased_employees: pins a new hire to its employee''s current version (whatever was '
  'sent), lets the pin move only to the current version (an upgrade), and keeps a hire''s user, employee and hire '
  'time. Security definer, so a hire''s pin never depends on what the writer may read.';
