create or replace function private.tg_employee_ratings__record_analytics() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    insert into private.employee_analytics_deltas (employee_id, ratings, rating_sum)
    values (new.employee_id, 1, new.stars);
  elsif tg_op = 'UPDATE' then
    if new.stars is distinct from old.stars then
      insert into private.employee_analytics_deltas (employee_id, rating_sum) values (new.employee_id, new.stars - old.stars);
    end if;
  else
    insert into private.employee_analytics_deltas (employee_id, ratings, rating_sum)
    values (old.employee_id, -1, -old.stars);
  end if;
  return null;
end;
$$;

comment on function private.tg_employee_ratings__record_analytics() is
  'AFTER INSERT, UPDATE OF stars or DELETE on employee_ratings: writes the change to the employee''s rating count '
  'and star sum as a delta row.';
