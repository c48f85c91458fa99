create or replace function private.purge_agent_run_events(p_keep interval default interval '7 days') returns integer
language sql
security definer
set search_path = ''
as $$
  with purged as (
    delete from public.agent_run_events e
     using public.agent_runs r
     where r.id = e.run_id and r.ended_at < now() - p_keep
    returning 1
  )
  select count(*)::integer from purged
$$;

comment on function private.purge_agent_run_events(interval) is
  'Deletes the streamed events of runs that ended more than p_keep ago (aie_agent_run_events_purge, daily): replay '
  'is for clients that reconnect, and the run, its steps and its messages stay.';

grant execute on function private.purge_agent_run_events(interval) to service_role;
