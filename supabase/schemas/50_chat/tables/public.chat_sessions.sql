create table public.chat_sessions (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references public.users (id) on delete cascade,
  hire_id uuid not null,
  employee_id uuid not null references public.ai_employees (id),
  title text constraint title_is_short check (char_length(title) between 1 and 200),
  message_count integer not null default 0 constraint message_count_is_not_negative check (message_count >= 0),
  last_message_at timestamptz not null default now(),
  is_pinned boolean not null default false,
  is_archived boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- What chat_messages' composite foreign key references: a message's owner is its session's owner.
  constraint chat_sessions_id_user_id_key unique (id, user_id),
  -- The hire is the session owner's own (purchased_employees (id, user_id) is unique for this).
  constraint hire_is_the_owners foreign key (hire_id, user_id)
    references public.purchased_employees (id, user_id) on delete cascade
);

comment on table public.chat_sessions is
  'A conversation of a user with one of their hires (the hire is theirs: a composite foreign key on (hire_id, '
  'user_id)). Its messages are public.chat_messages, one row each; message_count and last_message_at are kept by '
  'chat_messages'' triggers, and a session without a title takes one from its first user message. Users read, '
  'create, rename, pin, archive and delete their own; deleting one deletes its messages.';

comment on column public.chat_sessions.employee_id is
  'The hire''s AI employee, set by the database from hire_id (never by a client): what the analytics count a '
  'session''s messages for, even once the hire is gone.';
comment on column public.chat_sessions.title is
  'The user''s title; when null at the first user message, the database sets it from that message (its first 80 '
  'characters, whitespace collapsed). A generated summary title may replace it later (the agents service).';
comment on column public.chat_sessions.message_count is 'Its messages, kept by chat_messages'' triggers.';
comment on column public.chat_sessions.last_message_at is
  'When its newest message was written (its creation until then), kept by chat_messages'' triggers: what "my '
  'sessions, newest first" sorts by.';

-- "My sessions, newest first" (the seed's idx_chat_sessions_last_message_at); also serves the users foreign key.
create index chat_sessions_user_last_message_idx on public.chat_sessions (user_id, last_message_at desc, id desc);
create index chat_sessions_hire_idx on public.chat_sessions (hire_id, user_id);
create index chat_sessions_employee_idx on public.chat_sessions (employee_id);

create trigger _100_timestamps before update on public.chat_sessions
  for each row execute function private.tg__set_updated_at();

create trigger _200_set_employee before insert or update of hire_id on public.chat_sessions
  for each row execute function private.tg_chat_sessions__set_employee();

create trigger _500_record_analytics after delete on public.chat_sessions
  for each row execute function private.tg_chat_sessions__record_analytics();

alter table public.chat_sessions enable row level security;

create policy "Users can read their own chat sessions" on public.chat_sessions
  for select to authenticated using ((select auth.uid()) = user_id);

create policy "Users can start chat sessions with their own hires" on public.chat_sessions
  for insert to authenticated with check ((select auth.uid()) = user_id);

create policy "Users can update their own chat sessions" on public.chat_sessions
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

create policy "Users can delete their own chat sessions" on public.chat_sessions
  for delete to authenticated using ((select auth.uid()) = user_id);

-- Least privilege on top of RLS: a client starts a session with one of its hires (the foreign key checks it is
-- theirs) and changes only the title, the pin and the archive flag; the counters and the employee are the
-- database's.
revoke all on public.chat_sessions from anon, authenticated;
grant select, delete on public.chat_sessions to authenticated;
grant insert (user_id, hire_id, title, is_pinned, is_archived) on public.chat_sessions to authenticated;
grant update (title, is_pinned, is_archived) on public.chat_sessions to authenticated;
