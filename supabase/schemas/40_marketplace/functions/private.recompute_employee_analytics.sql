create or replace function private.recompute_employee_analytics() returns setof public.employee_analytics
language sql stable
as $$
  select e.id,
         coalesce(h.hires, 0),
         coalesce(h.active_hires, 0),
         coalesce(u.active_users, 0),
         coalesce(r.ratings, 0),
         coalesce(r.rating_sum, 0),
         coalesce(m.messages, 0),
         0::bigint,  -- total_runs: likewise
         h.last_hired_at,
         now(),
         private._average_rating(coalesce(r.rating_sum, 0), coalesce(r.ratings, 0))
    from public.ai_employees e
    left join (select x.employee_id, count(*)::bigint as hires, count(*) filter (where x.is_active)::bigint as active_hires,
                      max(x.hired_at) as last_hired_at
                 from public.purchased_employees x group by x.employee_id) h on h.employee_id = e.id
    left join (select x.employee_id, count(*)::bigint as ratings, sum(x.stars)::bigint as rating_sum
                 from public.employee_ratings x group by x.employee_id) r on r.employee_id = e.id
    left join (select s.employee_id, count(*)::bigint as messages
                 from public.chat_messages x join public.chat_sessions s on s.id = x.session_id
                group by s.employee_id) m on m.employee_id = e.id
    left join private._active_users_by_employee() u on u.employee_id = e.id
$$;

comment on function private.recompute_employee_analytics() is
  'Every AI employee''s numbers recomputed from the source rows (hires, ratings, chat messages), as employee_analytics rows '
  '(folded_at: now). Reads only; what the maintained figures (private.live_employee_analytics, and '
  'employee_analytics after a fold) must equal. An operator may compare them at any time.';

grant execute on function private.recompute_employee_analytics() to service_role;
