create or replace function private.retry_failed_webhook_events(p_limit integer default 50) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_id text;
  v_count integer := 0;
begin
  -- Dead letters whose backoff has passed (at most 8 automatic replays), then events that failed fewer
  -- than 3 times and have not been retried by Stripe for 10 minutes.
  for v_id in
    select event_id from private.failed_webhook_events
     where resolved_at is null and next_retry_at <= now() and replay_count < 8
     order by next_retry_at limit p_limit
  loop
    perform private.replay_failed_webhook_event(v_id);
    v_count := v_count + 1;
  end loop;
  for v_id in
    select id from private.stripe_webhook_events
     where status in ('received', 'failed') and attempts < 3 and updated_at < now() - interval '10 minutes'
     order by updated_at limit p_limit
  loop
    perform private.process_stripe_event(v_id);
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

comment on function private.retry_failed_webhook_events(integer) is
  'pg_cron (aie_stripe_webhook_retry): retries transient failures through the same code path. Returns how '
  'many events it tried.';
