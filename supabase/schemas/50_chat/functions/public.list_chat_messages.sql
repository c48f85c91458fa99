create or replace function public.list_chat_messages(
  p_session_id uuid, p_before uuid default null, p_after uuid default null, p_limit integer default 50
) returns setof public.chat_messages
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_at timestamptz;
  v_id uuid;
begin
  if p_limit is null or p_limit not between 1 and 50 then
    perform private.raise_api_error(400, 'invalid_limit', 'A page holds 1 to 50 messages', null,
      'Ask for 50 at most and page on with p_before or p_after');
  end if;
  if p_before is not null and p_after is not null then
    perform private.raise_api_error(400, 'invalid_cursor', 'Page either before or after a message, not both');
  end if;
  if coalesce(p_before, p_after) is not null then
    -- The cursor is a message of this session, and the caller's.
    select m.created_at, m.id into v_at, v_id from public.chat_messages m
     where m.id = coalesce(p_before, p_after) and m.session_id = p_session_id and m.user_id = v_user;
    if not found then
      perform private.raise_api_error(404, 'message_not_found',
        'The cursor is not a message of this session you can read', null,
        'Pass the id of the first or last message of the previous page');
    end if;
  end if;

  if p_after is not null then
    return query
      select m.* from public.chat_messages m
       where m.session_id = p_session_id and m.user_id = v_user and (m.created_at, m.id) > (v_at, v_id)
       order by m.created_at, m.id
       limit p_limit;
  else
    return query
      select m.* from public.chat_messages m
       where m.session_id = p_session_id and m.user_id = v_user
         and (p_before is null or (m.created_at, m.id) < (v_at, v_id))
       order by m.created_at desc, m.id desc
       limit p_limit;
  end if;
end;
$$;

comment on function public.list_chat_messages(uuid, uuid, uuid, integer) is
  'A page of p_limit (1-50) of the caller''s messages of one session, by keyset on (created_at, id): the newest '
  'first, or those before p_before, newest first (scrolling back), or those after p_after, oldest first (catching '
  'up). The cursor is a message id of the session. Reads only the caller''s rows (the policy''s condition, '
  'user_id = auth.uid(), stated in the query; SECURITY DEFINER for private.raise_api_error): another user''s session '
  'reads as empty, another user''s message as a cursor is message_not_found (404). Reads '
  'chat_messages_session_created_idx in order.';

grant execute on function public.list_chat_messages(uuid, uuid, uuid, integer) to authenticated;
