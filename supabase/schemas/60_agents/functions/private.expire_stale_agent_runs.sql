create or replace function private.expire_stale_agent_runs(p_stale_after interval default interval '2 minutes')
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_expired integer;
begin
  with stale as (
    select r.id, r.user_id, r.session_id, r.user_message_id, r.model, r.provider
      from public.agent_runs r
     where r.status in ('queued', 'in_progress') and r.heartbeat_at < now() - p_stale_after
       for update skip locked
  ), answered as (
    -- The thread shows that the answer never came.
    insert into public.chat_messages (session_id, user_id, role, content, parent_id, run_id, model, provider, status,
                                      error_code)
    select s.session_id, s.user_id, 'assistant', '', s.user_message_id, s.id, s.model, s.provider, 'failed',
           'run_expired'
      from stale s
    returning id, run_id
  ), ended as (
    update public.agent_runs r
       set status = 'expired', error_code = 'worker_lost', ended_at = now(), assistant_message_id = a.id,
           error_message = 'The worker running it stopped before it ended'
      from answered a
     where r.id = a.run_id
    returning r.id, r.user_id
  ), events as (
    -- Replaying clients are told it is over.
    insert into public.agent_run_events (run_id, sequence_number, user_id, type, data)
    select e.id, n.last + k.i, e.user_id, k.type,
           case k.type when 'done' then '{}'::jsonb
                else jsonb_build_object('run_id', e.id, 'status', 'expired', 'error_code', 'worker_lost') end
      from ended e
     cross join lateral (select coalesce(max(v.sequence_number), 0) as last
                           from public.agent_run_events v where v.run_id = e.id) n
     cross join (values (1, 'run.expired'), (2, 'done')) as k(i, type)
  )
  select count(*) into v_expired from ended;
  return v_expired;
end;
$$;

comment on function private.expire_stale_agent_runs(interval) is
  'The sweep (aie_agent_runs_expire, every minute): a queued or in-progress run whose worker has sent no heartbeat '
  'for p_stale_after (a worker beats every few seconds and at every step) is expired: worker_lost, a failed '
  'assistant message (run_expired) so the thread shows no answer came, and run.expired + done events so that '
  'replaying clients stop. Its session takes runs again. What its model calls held came off the lease''s hold, '
  'which release_expired_holds gives back when it expires; what they consumed is billed by their settlement.';

grant execute on function private.expire_stale_agent_runs(interval) to service_role;
