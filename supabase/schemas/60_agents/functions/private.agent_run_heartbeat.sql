create or replace function private.agent_run_heartbeat(p_run_id uuid)
returns table (cancel_requested boolean, status text)
language sql
security definer
set search_path = ''
as $$
  update public.agent_runs r set heartbeat_at = now()
   where r.id = p_run_id and r.status in ('queued', 'in_progress')
  returning r.cancel_requested_at is not null, r.status
$$;

comment on function private.agent_run_heartbeat(uuid) is
  'The worker running an active run is alive: moves its heartbeat, and returns whether the user asked to cancel '
  'it (no row once the run is over). Service only.';

grant execute on function private.agent_run_heartbeat(uuid) to service_role;
