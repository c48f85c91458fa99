create or replace function private.start_agent_run(
  p_user_id uuid,
  p_session_id uuid,
  p_hire_id uuid,
  p_message text,
  p_parent_id uuid,
  p_idempotency_key text,
  p_request_fingerprint text,
  p_max_steps integer,
  p_max_output_tokens integer,
  p_max_cost_tokens bigint
) returns table (run_id uuid, session_id uuid, user_message_id uuid, replayed boolean)
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_session public.chat_sessions;
  v_hire public.purchased_employees;
  v_version public.ai_employee_versions;
  v_existing public.agent_runs;
  v_active uuid;
  v_parent uuid;
  v_message uuid;
  v_run uuid;
begin
  if (p_session_id is null) = (p_hire_id is null) then
    perform private.raise_api_error(400, 'invalid_request', 'Send either session_id or hire_id');
  end if;

  -- The same key from the same user is the same run: concurrent requests with it wait for each other here.
  if p_idempotency_key is not null then
    perform pg_advisory_xact_lock(hashtextextended('agent_run:' || p_user_id || ':' || p_idempotency_key, 0));
    select * into v_existing from public.agent_runs r
     where r.user_id = p_user_id and r.idempotency_key = p_idempotency_key;
    if found then
      if v_existing.request_fingerprint is distinct from p_request_fingerprint then
        perform private.raise_api_error(422, 'idempotency_key_reused',
          'This Idempotency-Key was used with a different request', v_existing.id::text,
          'Use a new key for a new request');
      end if;
      return query select v_existing.id, v_existing.session_id, v_existing.user_message_id, true;
      return;
    end if;
  end if;

  -- The session (locked: one run at a time on it), or a new one with the hire. Either way the hire is the
  -- caller's and active.
  if p_session_id is not null then
    select * into v_session from public.chat_sessions s where s.id = p_session_id and s.user_id = p_user_id
       for update;
    if not found then
      perform private.raise_api_error(404, 'session_not_found', 'No such chat session of yours');
    end if;
    select * into v_hire from public.purchased_employees h where h.id = v_session.hire_id;
  else
    select * into v_hire from public.purchased_employees h where h.id = p_hire_id and h.user_id = p_user_id;
    if not found then
      perform private.raise_api_error(404, 'hire_not_found', 'No such hired employee of yours');
    end if;
  end if;
  if not v_hire.is_active then
    perform private.raise_api_error(409, 'hire_inactive', 'This hired employee is deactivated', v_hire.id::text,
      'Reactivate it (purchased_employees.is_active) to work with it again');
  end if;
  if p_session_id is null then
    insert into public.chat_sessions (user_id, hire_id) values (p_user_id, v_hire.id) returning * into v_session;
  end if;

  select r.id into v_active from public.agent_runs r
   where r.session_id = v_session.id and r.status in ('queued', 'in_progress');
  if found then
    perform private.raise_api_error(409, 'run_in_progress', 'A run is already in progress on this session',
      v_active::text, 'Wait for it to end, or cancel it (POST agents-execute/runs/{id}/cancel)');
  end if;

  -- The message answers the given one (an edit or a regeneration branches there), else the newest of the session.
  if p_parent_id is not null then
    select m.id into v_parent from public.chat_messages m
     where m.id = p_parent_id and m.session_id = v_session.id and m.user_id = p_user_id;
    if not found then
      perform private.raise_api_error(404, 'message_not_found', 'parent_id is not a message of this session');
    end if;
  else
    select m.id into v_parent from public.chat_messages m
     where m.session_id = v_session.id and m.user_id = p_user_id
     order by m.created_at desc, m.id desc limit 1;
  end if;

  select * into v_version from public.ai_employee_versions v
   where v.employee_id = v_hire.employee_id and v.version = v_hire.pinned_version;

  insert into public.chat_messages (session_id, user_id, role, content, parent_id)
  values (v_session.id, p_user_id, 'user', p_message, v_parent)
  returning id into v_message;

  insert into public.agent_runs (user_id, session_id, hire_id, employee_id, employee_version, provider, model,
                                 user_message_id, idempotency_key, request_fingerprint, max_steps,
                                 max_output_tokens, max_cost_tokens)
  values (p_user_id, v_session.id, v_hire.id, v_version.employee_id, v_version.version, v_version.provider,
          v_version.model, v_message, p_idempotency_key, p_request_fingerprint, p_max_steps, p_max_output_tokens,
          p_max_cost_tokens)
  returning id into v_run;

  return query select v_run, v_session.id, v_message, false;
end;
$$;

comment on function private.start_agent_run(uuid, uuid, uuid, text, uuid, text, text, integer, integer, bigint) is
  'agents-execute''s first transaction: the user message and the queued run, together or not at all. Either an '
  'existing session of the caller (session_id) or a new one with their hire (hire_id); the hire must be theirs and '
  'active (404 hire_not_found / session_not_found, 409 hire_inactive). A second run on a session while one is '
  'queued or in progress: 409 run_in_progress, details = its id. The same idempotency key returns the same run '
  '(replayed), or 422 idempotency_key_reused with another request. The run is pinned to the hire''s version now.';

grant execute on function private.start_agent_run(uuid, uuid, uuid, text, uuid, text, text, integer, integer, bigint)
  to service_role;
