create or replace function private.replay_usage_dead_letter(p_request_id text, p_payload jsonb default null)
returns public.token_usage
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_row private.usage_outbox;
  v_usage public.token_usage;
begin
  select * into v_row from private.usage_outbox where request_id = p_request_id and dead_at is not null for update;
  if not found then
    raise exception 'usage record % is not a dead letter', p_request_id using errcode = 'PB404';
  end if;
  if p_payload is not null and p_payload ->> 'request_id' is distinct from p_request_id then
    raise exception 'the corrected record must keep request id %', p_request_id using errcode = '22023';
  end if;
  v_usage := private.gateway_settle(coalesce(p_payload, v_row.payload));
  update private.usage_outbox
     set payload = coalesce(p_payload, payload), applied_at = now(), dead_at = null, last_error = null,
         attempts = attempts + 1
   where id = v_row.id;
  update private.admin_alerts set acknowledged_at = now()
   where dedupe_key = 'usage_dead_letter:' || p_request_id and acknowledged_at is null;
  return v_usage;
end;
$$;

comment on function private.replay_usage_dead_letter(text, jsonb) is
  'Operator: settles a dead-lettered usage record (optionally corrected: same request id), once, and '
  'acknowledges its alert. Raises if it still cannot apply (nothing changes then).';

grant execute on function private.replay_usage_dead_letter(text, jsonb) to service_role;
