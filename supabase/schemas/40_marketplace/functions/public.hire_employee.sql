create or replace function public.hire_employee(p_slug text) returns public.purchased_employees
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_user_id uuid := auth.uid();
  v_employee_id uuid;
  v_hire public.purchased_employees;
begin
  if v_user_id is null then
    perform private.raise_api_error(401, 'not_authenticated', 'Sign in to hire an AI employee');
  end if;
  perform private._require_employee_slug(p_slug);
  select e.id into v_employee_id from public.ai_employees e where e.slug = p_slug;
  if not found then
    perform private.raise_api_error(404, 'employee_not_found', format('No AI employee is called %s', p_slug));
  end if;

  -- This user's hires, one at a time from here: the check below and the write are one step. (The user's row is
  -- locked before any hire row, as every path that activates a hire does.)
  perform private._lock_hirer(v_user_id);
  select h.* into v_hire from public.purchased_employees h where h.user_id = v_user_id and h.employee_id = v_employee_id;
  if found and v_hire.is_active then
    return v_hire;
  elsif found then
    -- A rehire: the same hire, active again, with the version it was pinned to.
    update public.purchased_employees h set is_active = true where h.id = v_hire.id returning h.* into v_hire;
    return v_hire;
  end if;
  -- The triggers refuse what cannot be hired, enforce the plan's cap, pin the version and count the hire.
  insert into public.purchased_employees (user_id, employee_id) values (v_user_id, v_employee_id)
  returning * into v_hire;
  return v_hire;
end;
$$;

comment on function public.hire_employee(text) is
  'Hires the AI employee with this slug for the signed-in user, in one call: refuses what cannot be hired '
  '(employee_not_found 404, employee_retired or employee_coming_soon 409), enforces the plan''s cap on active hires '
  'race-free (hire_limit_reached 403), pins the version in force and counts the hire. Idempotent: an active hire '
  'is returned as it is; an inactive one is reactivated with its pinned version. Returns the hire.';

grant execute on function public.hire_employee(text) to authenticated;
