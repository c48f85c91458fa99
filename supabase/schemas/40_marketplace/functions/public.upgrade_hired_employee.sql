create or replace function public.upgrade_hired_employee(p_hire_id uuid) returns public.hire_upgrade
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_hire public.purchased_employees;
  v_current integer;
begin
  if auth.uid() is null then
    perform private.raise_api_error(401, 'not_authenticated', 'Sign in to upgrade a hired AI employee');
  end if;
  select h.* into v_hire from public.purchased_employees h
   where h.id = p_hire_id and h.user_id = auth.uid()
     for update;
  if not found then
    perform private.raise_api_error(404, 'hire_not_found', 'You have no hire with this id');
  end if;
  select e.current_version into v_current from public.ai_employees e where e.id = v_hire.employee_id;
  if v_current <> v_hire.pinned_version then
    update public.purchased_employees h set pinned_version = v_current where h.id = v_hire.id;
  end if;
  return row(v_hire.id, v_hire.pinned_version, v_current, v_current <> v_hire.pinned_version)::public.hire_upgrade;
end;
$$;

comment on function public.upgrade_hired_employee(uuid) is
  'Moves the signed-in user''s hire to its employee''s current version and says from which version to which '
  '(upgraded false when it already ran it). Active or not; the user''s instructions and name stay. hire_not_found '
  '(404) for a hire that is not theirs.';

grant execute on function public.upgrade_hired_employee(uuid) to authenticated;
