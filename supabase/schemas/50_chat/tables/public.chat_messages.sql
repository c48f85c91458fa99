create table public.chat_messages (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null,
  user_id uuid not null,
  role text not null default 'user' constraint role_is_known check (role in ('user', 'assistant', 'tool')),
  content text not null default '' constraint content_is_bounded check (char_length(content) <= 100000),
  parts jsonb constraint parts_is_an_array check (jsonb_typeof(parts) = 'array'),
  parent_id uuid,
  run_id uuid,
  model text,
  provider text,
  gateway_request_id text,
  status text not null default 'complete'
    constraint status_is_known check (status in ('complete', 'streaming', 'failed', 'cancelled')),
  error_code text constraint error_code_is_a_code check (error_code ~ '^[a-z][a-z0-9_]*$'),
  created_at timestamptz not null default clock_timestamp(),
  updated_at timestamptz not null default now(),
  -- What parent_id references: a message's parent is in its session.
  constraint chat_messages_id_session_id_key unique (id, session_id),
  -- The owner is the session's owner, so the policies are the plain (select auth.uid()) = user_id.
  constraint owner_is_the_sessions foreign key (session_id, user_id)
    references public.chat_sessions (id, user_id) on delete cascade,
  constraint parent_is_in_the_session foreign key (parent_id, session_id)
    references public.chat_messages (id, session_id) on delete cascade,
  constraint user_messages_are_complete check (role <> 'user' or status = 'complete'),
  constraint error_code_only_on_failure check (error_code is null or status in ('failed', 'cancelled'))
);

comment on table public.chat_messages is
  'One row per message of a chat session (never a session-wide blob). user_id is the session''s owner (a composite '
  'foreign key), so a policy reads only the row itself. Messages form a tree by parent_id (regenerating or editing '
  'makes a sibling branch); the visible thread is a path from a root. Users read and delete their own and write '
  'only user messages in their own sessions; assistant and tool messages are the agents service''s (service key). '
  'Deleting a message deletes the replies under it. Page with list_chat_messages, search with '
  'search_chat_messages.';

comment on column public.chat_messages.parts is
  'Structured parts, a JSON array (tool calls and their results, as the agents service stores them); null for plain '
  'text.';
comment on column public.chat_messages.parent_id is
  'The message it answers or follows (null: a root). Siblings are branches.';
comment on column public.chat_messages.run_id is
  'The agent run that produced it. A plain uuid for now: public.agent_runs comes with 60_agents, which adds the '
  'foreign key.';
comment on column public.chat_messages.gateway_request_id is
  'The request id of the gateway call that produced it (public.token_usage.request_id; no foreign key, since usage '
  'is written after the call, through the usage outbox).';
comment on column public.chat_messages.status is
  'complete, streaming (being written), failed or cancelled (with error_code). User messages are complete.';
comment on column public.chat_messages.created_at is
  'When it was written: clock time, not transaction time, so messages written in one transaction keep their order.';

-- A session's thread, newest first (seed section 7.1), under the policy's user_id: keyset pages both ways read it
-- in order. Also serves the session foreign key.
create index chat_messages_session_created_idx on public.chat_messages (session_id, user_id, created_at desc, id desc);
create index chat_messages_parent_idx on public.chat_messages (parent_id, session_id);
-- Full-text search over one's own messages (search_chat_messages, whose condition is this expression, word for
-- word, so that it matches): btree_gin keys it by owner too. The simple configuration: words unstemmed, since
-- messages are in any language. (Not a private function: clients write messages, and the index would evaluate it
-- as them; not a stored column: every client select would carry it.)
create index chat_messages_search_idx on public.chat_messages using gin (user_id, to_tsvector('simple', content));

create trigger _100_timestamps before update on public.chat_messages
  for each row execute function private.tg__set_updated_at();

create trigger _500_roll_up_inserted after insert on public.chat_messages
  referencing new table as changed
  for each statement execute function private.tg_chat_messages__roll_up();

create trigger _500_roll_up_deleted after delete on public.chat_messages
  referencing old table as changed
  for each statement execute function private.tg_chat_messages__roll_up();

alter table public.chat_messages enable row level security;

create policy "Users can read their own chat messages" on public.chat_messages
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can write user messages in their own chat sessions" on public.chat_messages
  for insert to authenticated with check ((select auth.uid()) = user_id and role = 'user');

create policy "Users can delete their own chat messages" on public.chat_messages
  for delete to authenticated using ((select auth.uid()) = user_id);

-- Least privilege on top of RLS: a client writes the text of a user message (role, status and the model columns
-- keep their defaults or stay null) in a session the foreign key proves is theirs, and never changes a message.
revoke all on public.chat_messages from anon, authenticated;
grant select, delete on public.chat_messages to authenticated;
grant insert (session_id, user_id, content, parent_id) on public.chat_messages to authenticated;
