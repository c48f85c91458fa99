// The seed's chat design, for bench:db's as-audited copy (issue 13): the same chat tables and data, but a message is
// read through its session (the nested policy), with the seed's indexes only. Applied to the scratch copy before its
// data is loaded, so its indexes are maintained by the load as ours are. What it changes (CHAT_SEED_DESIGN, printed
// with the table):
export const CHAT_SEED_DESIGN = [
  "chat_messages' select policy is the seed's nested one, `exists (select 1 from chat_sessions s where s.id = " +
  "session_id and s.user_id = auth.uid())`, instead of `(select auth.uid()) = user_id` on the row itself",
  "chat_messages has the seed's index on (session_id, created_at desc) only, instead of (session_id, user_id, " +
  "created_at desc, id desc), the parent index and the GIN search index; its session is a plain foreign key on " +
  "session_id (no composite key to the owner, so chat_sessions has no unique (id, user_id) either)",
  "chat_sessions has an index on (user_id) and the seed's idx_chat_sessions_last_message_at on (last_message_at " +
  "desc) (its shape assumed from its name), instead of (user_id, last_message_at desc, id desc), the hire and " +
  "employee indexes",
  "list_chat_messages is SECURITY INVOKER and leaves the owner to the policy (its queries without " +
  "`user_id = auth.uid()`); the same keyset on (created_at, id)",
];

/** The seed's chat design as DDL, in one transaction-safe script (the test applies it inside a rolled-back one). */
export const CHAT_SEED_DESIGN_SQL = `
  drop index public.chat_messages_session_created_idx;
  drop index public.chat_messages_parent_idx;
  drop index public.chat_messages_search_idx;
  create index chat_messages_session_id_created_at_idx on public.chat_messages (session_id, created_at desc);
  alter table public.chat_messages drop constraint owner_is_the_sessions;
  -- The agent runs' session key (60_agents) rests on it too: in the seed, a run references its session alone.
  alter table public.agent_runs drop constraint session_is_the_owners;
  alter table public.chat_sessions drop constraint chat_sessions_id_user_id_key;
  alter table public.agent_runs add constraint agent_runs_session_id_fkey
    foreign key (session_id) references public.chat_sessions (id) on delete cascade;
  alter table public.chat_messages add constraint chat_messages_session_id_fkey
    foreign key (session_id) references public.chat_sessions (id) on delete cascade;

  drop index public.chat_sessions_user_last_message_idx;
  drop index public.chat_sessions_hire_idx;
  drop index public.chat_sessions_employee_idx;
  create index idx_chat_sessions_user_id on public.chat_sessions (user_id);
  create index idx_chat_sessions_last_message_at on public.chat_sessions (last_message_at desc);

  drop policy "Users can read their own chat messages" on public.chat_messages;
  create policy "Users can read messages of their own chat sessions" on public.chat_messages
    for select to authenticated
    using (exists (select 1 from public.chat_sessions s where s.id = session_id and s.user_id = auth.uid()));

  create or replace function public.list_chat_messages(
    p_session_id uuid, p_before uuid default null, p_after uuid default null, p_limit integer default 50
  ) returns setof public.chat_messages
  language plpgsql stable
  security invoker
  set search_path = ''
  as $$
  declare
    v_at timestamptz;
    v_id uuid;
  begin
    if p_limit is null or p_limit not between 1 and 50 or (p_before is not null and p_after is not null) then
      raise exception 'invalid page' using errcode = '22023';
    end if;
    if coalesce(p_before, p_after) is not null then
      select m.created_at, m.id into v_at, v_id from public.chat_messages m
       where m.id = coalesce(p_before, p_after) and m.session_id = p_session_id;
      if not found then
        raise exception 'message not found' using errcode = 'P0002';
      end if;
    end if;
    if p_after is not null then
      return query
        select m.* from public.chat_messages m
         where m.session_id = p_session_id and (m.created_at, m.id) > (v_at, v_id)
         order by m.created_at, m.id
         limit p_limit;
    else
      return query
        select m.* from public.chat_messages m
         where m.session_id = p_session_id and (p_before is null or (m.created_at, m.id) < (v_at, v_id))
         order by m.created_at desc, m.id desc
         limit p_limit;
    end if;
  end;
  $$;
`;
