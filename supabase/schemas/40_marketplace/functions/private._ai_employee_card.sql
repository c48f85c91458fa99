create or replace function private._ai_employee_card(p_employee public.ai_employees, p_analytics public.employee_analytics)
returns jsonb
language sql stable
as $$
  select jsonb_build_object(
    'id', p_employee.id,
    'slug', p_employee.slug,
    'name', p_employee.name,
    'role', p_employee.role,
    'category', p_employee.category,
    'department', p_employee.department,
    'level', p_employee.level,
    'status', p_employee.status,
    'short_description', p_employee.short_description,
    'avatar_url', p_employee.avatar_url,
    'capabilities', to_jsonb(p_employee.capabilities),
    'tools', to_jsonb(p_employee.tools),
    'provider', p_employee.provider,
    'model', p_employee.model,
    'display_cost', p_employee.display_cost,
    'current_version', p_employee.current_version,
    'created_at', p_employee.created_at,
    'updated_at', p_employee.updated_at,
    'analytics', jsonb_build_object(
      'hire_count', coalesce(p_analytics.hire_count, 0),
      'active_hires', coalesce(p_analytics.active_hires, 0),
      'active_users_30d', coalesce(p_analytics.active_users_30d, 0),
      'rating_count', coalesce(p_analytics.rating_count, 0),
      'average_rating', p_analytics.average_rating,
      'total_messages', coalesce(p_analytics.total_messages, 0),
      'total_runs', coalesce(p_analytics.total_runs, 0),
      'last_hired_at', p_analytics.last_hired_at
    )
  )
$$;

comment on function private._ai_employee_card(public.ai_employees, public.employee_analytics) is
  'An AI employee as the marketplace shows it (a listing card; get_ai_employee adds the detail): its public '
  'columns and its numbers (pass private.live_employee_analytics''s row). The one place that says what a client '
  'sees of an employee through a function; never the system prompt.';
