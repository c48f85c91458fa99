create or replace function private._active_users_by_employee()
returns table (employee_id uuid, active_users bigint)
language sql stable
as $$
  select h.employee_id, count(*)::bigint
    from public.purchased_employees h
   where h.last_used_at >= now() - interval '30 days'
   group by h.employee_id
$$;

comment on function private._active_users_by_employee() is
  'The one definition of an AI employee''s active users: its hirers who used it in the last 30 days (by '
  'last_used_at). Employees without any are absent. Used by the fold and the recomputation.';
