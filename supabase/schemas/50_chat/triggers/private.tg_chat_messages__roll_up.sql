create or replace function private.tg_chat_messages__roll_up() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_sign integer := case when tg_op = 'INSERT' then 1 else -1 end;
begin
  -- Per session of the statement's rows (a transition table: one update per session, not per message). A session
  -- deleted in this transaction is not found: its own trigger accounted for its messages.
  with per_session as (
    select c.session_id, count(*)::integer as messages, max(c.created_at) as last_at,
           (array_agg(c.content order by c.created_at, c.id) filter (where c.role = 'user'))[1] as first_user_text
      from changed c group by c.session_id
  ), updated as (
    update public.chat_sessions s
       set message_count = s.message_count + v_sign * p.messages,
           last_message_at = case
             when v_sign > 0 then greatest(s.last_message_at, p.last_at)
             else coalesce((select max(m.created_at) from public.chat_messages m
                             where m.session_id = s.id and m.user_id = s.user_id), s.created_at) end,
           title = case
             when v_sign > 0 and s.title is null
               then nullif(btrim(left(btrim(regexp_replace(p.first_user_text, '\s+', ' ', 'g')), 80)), '')
             else s.title end
      from per_session p
     where s.id = p.session_id
    returning s.employee_id, p.messages
  )
  insert into private.employee_analytics_deltas (employee_id, messages)
  select u.employee_id, v_sign * sum(u.messages) from updated u group by u.employee_id;

  -- A user message is a use of the hire: what the employee's active users count (purchased_employees.last_used_at).
  if tg_op = 'INSERT' then
    update public.purchased_employees h
       set last_used_at = x.used_at
      from (select s.hire_id, max(c.created_at) as used_at
              from changed c join public.chat_sessions s on s.id = c.session_id
             where c.role = 'user' group by s.hire_id) x
     where h.id = x.hire_id and (h.last_used_at is null or h.last_used_at < x.used_at);
  end if;
  return null;
end;
$$;

comment on function private.tg_chat_messages__roll_up() is
  'AFTER INSERT and AFTER DELETE on chat_messages, per statement (transition table "changed"): keeps each session''s '
  'message_count and last_message_at (a delete recomputes it from what is left), titles an untitled session from '
  'its first user message, writes the change of its employee''s total_messages as analytics delta rows (one per '
  'employee and statement), and on insert stamps the hire''s last_used_at with its newest user message (active '
  'users).';
