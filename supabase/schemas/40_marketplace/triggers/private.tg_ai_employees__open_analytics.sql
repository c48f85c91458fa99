create or replace function private.tg_ai_employees__open_analytics() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.employee_analytics (employee_id) values (new.id) on conflict (employee_id) do nothing;
  return null;
end;
$$;

comment on function private.tg_ai_employees__open_analytics() is
  'AFTER INSERT on ai_employees: opens its employee_analytics row (all zero), which the fold then adds to.';
