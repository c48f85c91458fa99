create or replace function private.process_usage_outbox(p_limit integer default 100) returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_row private.usage_outbox;
  v_done integer := 0;
  v_error text;
  v_state text;
begin
  perform set_config('lock_timeout', '3s', true); -- see gateway_batch_settle
  for v_row in
    select * from private.usage_outbox
     where applied_at is null and dead_at is null and next_attempt_at <= now()
     order by id limit p_limit
     for update skip locked
  loop
    begin
      perform private.gateway_settle(v_row.payload);
      update private.usage_outbox set applied_at = now(), attempts = attempts + 1, last_error = null
       where id = v_row.id;
      v_done := v_done + 1;
    exception when others then
      v_state := sqlstate;
      v_error := sqlstate || ': ' || sqlerrm;
      if not exists (select 1 from public.users where id = (v_row.payload ->> 'user_id')::uuid) then
        -- The user was deleted (with all their usage): nothing left to record this against.
        update private.usage_outbox
           set attempts = attempts + 1, applied_at = now(), last_error = 'discarded: the user no longer exists'
         where id = v_row.id;
      elsif v_state like '22%' or v_row.attempts + 1 >= 10 then
        -- Malformed (a data exception never goes away), or failing for too long: given up, loudly.
        perform private._dead_letter_usage(v_row, v_error);
      else
        update private.usage_outbox
           set attempts = attempts + 1, last_error = v_error,
               next_attempt_at = now() + least(interval '1 minute' * power(2, attempts), interval '1 hour')
         where id = v_row.id;
      end if;
    end;
  end loop;
  return v_done;
end;
$$;

comment on function private.process_usage_outbox(integer) is
  'pg_cron (aie_usage_outbox): applies waiting usage records through gateway_settle, with backoff on failure; a '
  'record that can never apply (a data exception, or 10 failed tries) is dead-lettered. Returns how many it applied.';
