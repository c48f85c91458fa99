create or replace function private.begin_agent_run(p_run_id uuid)
returns table (
  run_id uuid, user_id uuid, session_id uuid, user_message_id uuid, status text, system_prompt text, tools text[],
  provider text, model text, generation_settings jsonb, custom_instructions text, max_steps integer,
  max_output_tokens integer, max_cost_tokens bigint
)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- queued → in_progress (a run already begun, or over, stays as it is: the caller sees its status).
  update public.agent_runs r set status = 'in_progress', started_at = now(), heartbeat_at = now()
   where r.id = p_run_id and r.status = 'queued';
  return query
    select r.id, r.user_id, r.session_id, r.user_message_id, r.status, v.system_prompt, v.tools, v.provider, v.model,
           v.generation_settings, h.custom_instructions, r.max_steps, r.max_output_tokens, r.max_cost_tokens
      from public.agent_runs r
      join public.ai_employee_versions v on v.employee_id = r.employee_id and v.version = r.employee_version
      join public.purchased_employees h on h.id = r.hire_id
     where r.id = p_run_id;
end;
$$;

comment on function private.begin_agent_run(uuid) is
  'Starts a queued run (in_progress, heartbeat now) and returns what it runs with: the pinned version''s system '
  'prompt, tools, provider, model and settings, the user''s custom instructions, and the run''s limits. A run that '
  'is not queued keeps its status (returned, for the worker to stop). Service only.';

grant execute on function private.begin_agent_run(uuid) to service_role;
