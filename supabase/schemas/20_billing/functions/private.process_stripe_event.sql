create or replace function private.process_stripe_event(p_event_id text, p_force boolean default false)
returns table (status text, error text, reason text)
language plpgsql
set search_path = ''
as $$
declare
  v_event private.stripe_webhook_events;
  v_reason text;
  v_error text;
begin
  -- The row lock makes concurrent deliveries of one event wait for each other: the first applies it,
  -- the others find it processed.
  select * into v_event from private.stripe_webhook_events e where e.id = p_event_id for update;
  if not found then
    raise exception 'unknown Stripe event %', p_event_id using errcode = 'PB404';
  end if;
  if v_event.status in ('processed', 'ignored') then
    return query select 'duplicate'::text, null::text, v_event.ignored_reason;
    return;
  end if;
  if v_event.status = 'failed' and v_event.attempts >= 3 and not p_force then
    return query select 'failed'::text, v_event.last_error, null::text;
    return;
  end if;

  begin
    v_reason := private._apply_stripe_event(v_event.payload);
  exception when others then
    v_error := sqlstate || ': ' || sqlerrm;
  end;

  if v_error is null then
    update private.stripe_webhook_events e
       set status = case when v_reason is null then 'processed' else 'ignored' end, ignored_reason = v_reason,
           attempts = e.attempts + 1, processed_at = now(), last_error = null
     where e.id = p_event_id;
    update private.failed_webhook_events f set resolved_at = now() where f.event_id = p_event_id and f.resolved_at is null;
    return query select case when v_reason is null then 'processed' else 'ignored' end, null::text, v_reason;
    return;
  end if;

  update private.stripe_webhook_events e
     set status = 'failed', attempts = e.attempts + 1, last_error = v_error,
         errors = e.errors || jsonb_build_array(jsonb_build_object('at', now(), 'error', v_error))
   where e.id = p_event_id
  returning * into v_event;
  if v_event.attempts >= 3 then
    insert into private.failed_webhook_events as f (event_id, type, payload, errors, attempts, next_retry_at)
    values (v_event.id, v_event.type, v_event.payload, v_event.errors, v_event.attempts, now() + interval '5 minutes')
    on conflict (event_id) do update
      set errors = excluded.errors,
          attempts = excluded.attempts, failed_at = now(), resolved_at = null,
          next_retry_at = now() + least(interval '5 minutes' * power(2, f.replay_count), interval '1 day');
  end if;
  return query select 'failed'::text, v_error, null::text;
end;
$$;

comment on function private.process_stripe_event(text, boolean) is
  'The one code path that applies a recorded Stripe event: exactly once (row lock + status), in a '
  'subtransaction so a failure is recorded (attempts, last_error) instead of lost; the third failure lands '
  'in failed_webhook_events. Returns processed, ignored (with the reason), duplicate or failed (with the error).';
