create or replace function private.tg_purchased_employees__record_analytics() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.employee_analytics_deltas (employee_id, hires, active_hires, last_hired_at)
    values (new.employee_id, 1, case when new.is_active then 1 else 0 end, new.hired_at);
  elsif tg_op = 'UPDATE' then
    if new.is_active is distinct from old.is_active then
      insert into private.employee_analytics_deltas (employee_id, active_hires)
      values (new.employee_id, case when new.is_active then 1 else -1 end);
    end if;
  else
    insert into private.employee_analytics_deltas (employee_id, hires, active_hires, recount_last_hired)
    values (old.employee_id, -1, case when old.is_active then -1 else 0 end, true);
  end if;
  return null;
end;
$$;

comment on function private.tg_purchased_employees__record_analytics() is
  'AFTER INSERT, UPDATE OF is_active or DELETE on purchased_employees: writes the change to the employee''s numbers '
  'as a delta row (a hire, an activation or deactivation, a deleted hire), never updating a shared row.';
