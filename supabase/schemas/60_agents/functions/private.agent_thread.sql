create or replace function private.agent_thread(p_message_id uuid, p_max_messages integer)
returns table (id uuid, role text, content text, depth integer)
language sql stable
security definer
set search_path = ''
as $$
  -- The visible thread ending at the message: its ancestors by parent_id, newest first, at most p_max_messages.
  with recursive thread as (
    select m.id, m.parent_id, m.session_id, m.role, m.content, m.status, 0 as depth
      from public.chat_messages m where m.id = p_message_id and p_max_messages > 0
    union all
    select m.id, m.parent_id, m.session_id, m.role, m.content, m.status, t.depth + 1
      from thread t
      join public.chat_messages m on m.id = t.parent_id and m.session_id = t.session_id
     where t.depth + 1 < p_max_messages
  )
  select t.id, t.role, t.content, t.depth from thread t
   -- What the model is shown: what was said, not failed answers without text.
   where t.content <> '' and t.role in ('user', 'assistant')
   order by t.depth
$$;

comment on function private.agent_thread(uuid, integer) is
  'The visible thread that ends at a message (the path to it through parent_id, so other branches are not in it), '
  'newest first, at most p_max_messages deep: the window agents-execute fits into the model''s token budget. '
  'Service only.';

grant execute on function private.agent_thread(uuid, integer) to service_role;
