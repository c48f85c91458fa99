create or replace function private.request_agent_run_cancel(p_user_id uuid, p_run_id uuid)
returns table (status text, cancel_requested boolean)
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.agent_runs r set cancel_requested_at = coalesce(r.cancel_requested_at, now())
   where r.id = p_run_id and r.user_id = p_user_id and r.status in ('queued', 'in_progress');
  return query select r.status, r.cancel_requested_at is not null from public.agent_runs r
    where r.id = p_run_id and r.user_id = p_user_id;
  if not found then
    perform private.raise_api_error(404, 'run_not_found', 'No such agent run of yours');
  end if;
end;
$$;

comment on function private.request_agent_run_cancel(uuid, uuid) is
  'The user asks to cancel their run: stamps cancel_requested_at if it is still active (the worker stops between '
  'steps and aborts the model call in flight; it sees the stamp on its next heartbeat or step). 404 run_not_found '
  'for a run that is not theirs. Returns the run''s status now. Service only (agents-execute''s cancel endpoint).';

grant execute on function private.request_agent_run_cancel(uuid, uuid) to service_role;
