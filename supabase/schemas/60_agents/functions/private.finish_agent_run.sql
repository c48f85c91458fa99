create or replace function private.finish_agent_run(
  p_run_id uuid, p_status text, p_incomplete_reason text, p_error_code text, p_error_message text, p_message jsonb
) returns table (finished boolean, status text, assistant_message_id uuid)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_run public.agent_runs;
  v_message uuid;
begin
  if p_status not in ('completed', 'incomplete', 'failed', 'cancelled') then
    raise exception 'finish_agent_run: % is not how a worker ends a run', p_status using errcode = '22023';
  end if;
  select * into v_run from public.agent_runs r where r.id = p_run_id for update;
  if not found or v_run.status not in ('queued', 'in_progress') then
    -- Over already (expired by the sweep, say): nothing more is written.
    return query select false, v_run.status, v_run.assistant_message_id;
    return;
  end if;

  -- The answer, written once and whole: complete (also when a limit stopped it), or failed / cancelled with what
  -- was produced.
  insert into public.chat_messages (session_id, user_id, role, content, parts, parent_id, run_id, model, provider,
                                    gateway_request_id, status, error_code)
  values (v_run.session_id, v_run.user_id, 'assistant', coalesce(p_message ->> 'content', ''),
          p_message -> 'parts', v_run.user_message_id, v_run.id, v_run.model, v_run.provider,
          p_message ->> 'gateway_request_id',
          case p_status when 'failed' then 'failed' when 'cancelled' then 'cancelled' else 'complete' end,
          case when p_status in ('failed', 'cancelled') then p_error_code end)
  returning id into v_message;

  update public.agent_runs r
     set status = p_status, incomplete_reason = p_incomplete_reason,
         error_code = case when p_status in ('failed', 'cancelled') then p_error_code end,
         error_message = case when p_status in ('failed', 'cancelled') then left(p_error_message, 1000) end,
         assistant_message_id = v_message, ended_at = now(), heartbeat_at = now()
   where r.id = p_run_id;
  return query select true, p_status, v_message;
end;
$$;

comment on function private.finish_agent_run(uuid, text, text, text, text, jsonb) is
  'Ends an active run: writes its assistant message once (p_message: content, parts, gateway_request_id; complete '
  'for a completed or incomplete run, else failed / cancelled with the error code) and the run''s final status in '
  'the same transaction. A run already over (expired) is left as it is: finished = false. Service only.';

grant execute on function private.finish_agent_run(uuid, text, text, text, text, jsonb) to service_role;
