create or replace function private._chat_message_search_vector(p_content text) returns tsvector
language sql immutable
set search_path = ''
as $$
  select to_tsvector('pg_catalog.simple', coalesce(p_content, ''))
$$;

comment on function private._chat_message_search_vector(text) is
  'What chat search matches in a message: its words, unstemmed (the simple configuration: messages are in any '
  'language). The expression of chat_messages_search_idx and of search_chat_messages'' condition. Not inlinable on '
  'purpose (SET search_path): the query keeps the call, so it matches the index expression (an inlined call does '
  'not).';

-- chat_messages_search_idx evaluates it as the writing role: users write their messages, the service the rest.
-- (Without USAGE on schema private, a client still cannot call it by name.)
grant execute on function private._chat_message_search_vector(text) to authenticated, service_role;
