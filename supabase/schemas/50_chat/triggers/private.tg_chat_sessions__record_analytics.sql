create or replace function private.tg_chat_sessions__record_analytics() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Its messages go with it (the foreign key's cascade), and their own trigger no longer finds the session: the
  -- session takes them off its employee's total here, by its count.
  if old.message_count > 0 then
    insert into private.employee_analytics_deltas (employee_id, messages) values (old.employee_id, -old.message_count);
  end if;
  return null;
end;
$$;

comment on function private.tg_chat_sessions__record_analytics() is
  'AFTER DELETE on chat_sessions: takes the session''s messages (message_count) off its employee''s total_messages '
  'as one analytics delta row. Messages deleted with their session are counted here, not by '
  'tg_chat_messages__roll_up (which no longer finds the session).';
