create or replace function private.fold_employee_analytics() returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_folded integer;
begin
  -- One fold at a time (a second one would find nothing to do anyway).
  if not pg_try_advisory_xact_lock(hashtextextended('aie_employee_analytics_fold', 0)) then
    return 0;
  end if;

  -- The deltas this transaction sees move into the rows, in one statement: a delta committed meanwhile stays for
  -- the next fold, and readers see each delta either here or there, never both.
  with folded as (
    delete from private.employee_analytics_deltas returning *
  ), sums as (
    select f.employee_id, sum(f.hires) as hires, sum(f.active_hires) as active_hires, sum(f.ratings) as ratings,
           sum(f.rating_sum) as rating_sum, sum(f.messages) as messages, sum(f.runs) as runs,
           max(f.last_hired_at) as last_hired_at, bool_or(f.recount_last_hired) as recount_last_hired,
           count(*) as deltas
      from folded f group by f.employee_id
  ), written as (
    update public.employee_analytics a
       set hire_count = a.hire_count + s.hires,
           active_hires = a.active_hires + s.active_hires,
           rating_count = a.rating_count + s.ratings,
           rating_sum = a.rating_sum + s.rating_sum,
           total_messages = a.total_messages + s.messages,
           total_runs = a.total_runs + s.runs,
           last_hired_at = case when s.recount_last_hired
                                then (select max(h.hired_at) from public.purchased_employees h
                                       where h.employee_id = a.employee_id)
                                else greatest(a.last_hired_at, s.last_hired_at) end,
           folded_at = now()
      from sums s
     where a.employee_id = s.employee_id
    returning s.deltas
  )
  select coalesce(sum(w.deltas), 0)::integer into v_folded from written w;

  -- Active users are a window over time: recounted, and written where they changed.
  update public.employee_analytics a
     set active_users_30d = c.active_users, folded_at = now()
    from (select b.employee_id, coalesce(u.active_users, 0) as active_users
            from public.employee_analytics b
            left join private._active_users_by_employee() u on u.employee_id = b.employee_id) c
   where c.employee_id = a.employee_id and a.active_users_30d <> c.active_users;

  return v_folded;
end;
$$;

comment on function private.fold_employee_analytics() is
  'Moves the analytics deltas into employee_analytics (one statement: delete them, add them up per employee; a '
  'deleted hire recounts last_hired_at from the hires) and refreshes active users. Run every minute by the '
  'aie_employee_analytics_fold job; safe to run at any time, concurrently too (one runs, the other returns 0). '
  'Returns how many deltas it folded.';
