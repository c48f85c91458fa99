create or replace function private.replay_failed_webhook_event(p_event_id text) returns table (status text, error text, reason text)
language plpgsql
security definer
set search_path = ''
as $$
begin
  update private.failed_webhook_events
     set replay_count = replay_count + 1, last_replayed_at = now()
   where event_id = p_event_id;
  if not found then
    raise exception 'event % is not in the dead-letter queue', p_event_id using errcode = 'PB404';
  end if;
  return query select * from private.process_stripe_event(p_event_id, true);
end;
$$;

comment on function private.replay_failed_webhook_event(text) is
  'Operator: re-applies a dead-lettered event through process_stripe_event. Applies it at most once; a '
  'success marks the dead letter resolved.';

grant execute on function private.replay_failed_webhook_event(text) to service_role;
