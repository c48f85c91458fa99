create or replace function private.live_employee_analytics() returns setof public.employee_analytics
language sql stable
as $$
  select a.employee_id,
         a.hire_count + coalesce(d.hires, 0),
         a.active_hires + coalesce(d.active_hires, 0),
         a.active_users_30d,
         a.rating_count + coalesce(d.ratings, 0),
         a.rating_sum + coalesce(d.rating_sum, 0),
         a.total_messages + coalesce(d.messages, 0),
         a.total_runs + coalesce(d.runs, 0),
         case when d.recount_last_hired
              then (select max(h.hired_at) from public.purchased_employees h where h.employee_id = a.employee_id)
              else greatest(a.last_hired_at, d.last_hired_at) end,
         a.folded_at,
         private._average_rating(a.rating_sum + coalesce(d.rating_sum, 0), a.rating_count + coalesce(d.ratings, 0))
    from public.employee_analytics a
    left join (select x.employee_id, sum(x.hires)::bigint as hires, sum(x.active_hires)::bigint as active_hires,
                      sum(x.ratings)::bigint as ratings, sum(x.rating_sum)::bigint as rating_sum,
                      sum(x.messages)::bigint as messages, sum(x.runs)::bigint as runs,
                      max(x.last_hired_at) as last_hired_at, bool_or(x.recount_last_hired) as recount_last_hired
                 from private.employee_analytics_deltas x
                group by x.employee_id) d on d.employee_id = a.employee_id
$$;

comment on function private.live_employee_analytics() is
  'Every AI employee''s numbers exactly as of now (the caller''s snapshot): its employee_analytics row plus the '
  'deltas not yet folded, so the same before and after a fold, and equal to private.recompute_employee_analytics() '
  '(active_users_30d, a window over time, is as of the last fold). What the listing and detail RPCs read. '
  'Inlinable (a set-returning SQL function without SET), so a filter on employee_id reaches both tables.';
