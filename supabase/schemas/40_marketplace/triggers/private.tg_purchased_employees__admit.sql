create or replace function private.tg_purchased_employees__admit() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_employee public.ai_employees;
  v_plan public.subscription_plans;
  v_active bigint;
begin
  if not new.is_active then
    if tg_op = 'INSERT' or old.is_active then
      new.deactivated_at := now();
    end if;
    return new;
  end if;
  if tg_op = 'UPDATE' and old.is_active then
    return new;
  end if;

  -- Becoming active (a hire, a reactivation): the employee must be available ...
  select * into v_employee from public.ai_employees e where e.id = new.employee_id;
  if not found then
    perform private.raise_api_error(404, 'employee_not_found', 'No AI employee has this id');
  elsif v_employee.status = 'retired' then
    perform private.raise_api_error(409, 'employee_retired',
      format('%s has been retired and can no longer be hired', v_employee.name), null,
      'Browse the marketplace for its successor');
  elsif v_employee.status <> 'available' then
    perform private.raise_api_error(409, 'employee_coming_soon',
      format('%s is coming soon and cannot be hired yet', v_employee.name));
  end if;

  -- ... and the user's plan must have a slot. The user's row lock makes the count and this write one step: a
  -- concurrent hire of the same user waits here, then counts this one.
  v_plan := private._lock_hirer(new.user_id);
  if v_plan.max_hired_employees is not null then
    select count(*) into v_active from public.purchased_employees h
     where h.user_id = new.user_id and h.is_active and h.id <> new.id;
    if v_active >= v_plan.max_hired_employees then
      perform private.raise_api_error(403, 'hire_limit_reached',
        format('Your %s plan allows %s active AI employees', v_plan.name, v_plan.max_hired_employees),
        format('%s of %s active', v_active, v_plan.max_hired_employees),
        'Deactivate a hired employee or upgrade your plan');
    end if;
  end if;
  new.deactivated_at := null;
  return new;
end;
$$;

comment on function private.tg_purchased_employees__admit() is
  'BEFORE INSERT or UPDATE OF is_active on purchased_employees: a hire becomes active (hired or reactivated) only '
  'for an available employee (employee_retired, employee_coming_soon otherwise) and within the plan''s '
  'max_hired_employees active hires (hire_limit_reached, 403), counted under the user''s row lock '
  '(private._lock_hirer), so concurrent hires never exceed it; stamps deactivated_at. The one place of the rule, '
  'whether the hire comes from hire_employee or a client''s update.';
