create or replace function public.search_chat_messages(
  p_query text, p_session_id uuid default null, p_limit integer default 20
) returns table (
  message_id uuid, session_id uuid, role text, snippet text, created_at timestamptz
)
language plpgsql stable
security definer
set search_path = ''
as $$
declare
  v_user uuid := auth.uid();
  v_query tsquery;
begin
  if p_query is null or btrim(p_query) = '' or char_length(p_query) > 200 then
    perform private.raise_api_error(400, 'invalid_query', 'A search is 1 to 200 characters');
  end if;
  if p_limit is null or p_limit not between 1 and 50 then
    perform private.raise_api_error(400, 'invalid_limit', 'A page holds 1 to 50 messages');
  end if;
  v_query := websearch_to_tsquery('simple', p_query);

  return query
    select m.id, m.session_id, m.role,
           ts_headline('simple', m.content, v_query, 'MaxFragments=1, MaxWords=24, MinWords=8, StartSel=<<, StopSel=>>'),
           m.created_at
      from public.chat_messages m
     where m.user_id = v_user
       -- chat_messages_search_idx's expression, exactly.
       and to_tsvector('simple', m.content) @@ v_query
       and (p_session_id is null or m.session_id = p_session_id)
     order by m.created_at desc, m.id desc
     limit p_limit;
end;
$$;

comment on function public.search_chat_messages(text, uuid, integer) is
  'Full-text search over the caller''s own messages (optionally one session): web-search syntax ("quoted phrase", '
  'or, -not), unstemmed words, newest first, p_limit (1-50); each hit with a snippet, the matches between << and '
  '>>. Reads only the caller''s rows (user_id = auth.uid(), the policy''s condition, stated in the query; SECURITY '
  'DEFINER for private.raise_api_error) through chat_messages_search_idx (owner and words). invalid_query (400): '
  'empty or over 200 characters.';

grant execute on function public.search_chat_messages(text, uuid, integer) to authenticated;
