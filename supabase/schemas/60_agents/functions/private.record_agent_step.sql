create or replace function private.record_agent_step(p_run_id uuid, p_step jsonb)
returns table (cancel_requested boolean, status text, cost_tokens bigint)
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- The run's row first: token_usage's trigger takes it too, so a step and the usage of its call, written at the
  -- same moment, never miss each other (whichever commits second sees the other and sets the step's cost).
  perform 1 from public.agent_runs r where r.id = p_run_id for update;
  -- A step of a run that is still in progress; the heartbeat moves with it.
  insert into public.agent_run_steps (run_id, step_index, user_id, kind, tool_name, tool_call_id, input, output,
                                      status, error_code, attempts, gateway_request_id, model, input_tokens,
                                      cached_input_tokens, output_tokens, cost_tokens, started_at, ended_at)
  select r.id, r.step_count, r.user_id, s.kind, s.tool_name, s.tool_call_id, s.input, s.output, s.status,
         s.error_code, coalesce(s.attempts, 1), s.gateway_request_id, s.model, coalesce(s.input_tokens, 0),
         coalesce(s.cached_input_tokens, 0), coalesce(s.output_tokens, 0),
         -- What its call was billed, if its usage settled first (else token_usage's trigger sets it later).
         coalesce(s.cost_tokens, (select u.debited_tokens from public.token_usage u
                                   where u.request_id = s.gateway_request_id and u.user_id = r.user_id)),
         s.started_at, s.ended_at
    from public.agent_runs r
   cross join jsonb_to_record(p_step) as s(
     kind text, tool_name text, tool_call_id text, input jsonb, output jsonb, status text, error_code text,
     attempts integer, gateway_request_id text, model text, input_tokens bigint, cached_input_tokens bigint,
     output_tokens bigint, cost_tokens bigint, started_at timestamptz, ended_at timestamptz)
   where r.id = p_run_id and r.status = 'in_progress';
  if found then
    update public.agent_runs r set step_count = r.step_count + 1, heartbeat_at = now() where r.id = p_run_id;
  end if;
  return query select r.cancel_requested_at is not null, r.status, r.cost_tokens
                 from public.agent_runs r where r.id = p_run_id;
end;
$$;

comment on function private.record_agent_step(uuid, jsonb) is
  'Stores one step of an in-progress run as it ends (index = the run''s step_count, so steps are numbered in the '
  'order they end) and moves its heartbeat; returns whether the user asked to cancel, the run''s status (a run '
  'expired or cancelled meanwhile stores nothing) and its cost billed so far (what the cost cap is checked '
  'against). Service only.';

grant execute on function private.record_agent_step(uuid, jsonb) to service_role;
