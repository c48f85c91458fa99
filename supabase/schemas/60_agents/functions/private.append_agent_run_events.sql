create or replace function private.append_agent_run_events(p_run_id uuid, p_events jsonb) returns void
language sql
security definer
set search_path = ''
as $$
  insert into public.agent_run_events (run_id, sequence_number, user_id, type, data)
  select r.id, e.sequence_number, r.user_id, e.type, coalesce(e.data, '{}')
    from public.agent_runs r
   cross join jsonb_to_recordset(p_events) as e(sequence_number integer, type text, data jsonb)
   where r.id = p_run_id
  on conflict (run_id, sequence_number) do nothing
$$;

comment on function private.append_agent_run_events(uuid, jsonb) is
  'Stores a batch of a run''s streamed events ([{sequence_number, type, data}], as sent) for replay; a batch sent '
  'twice is stored once. Service only.';

grant execute on function private.append_agent_run_events(uuid, jsonb) to service_role;
