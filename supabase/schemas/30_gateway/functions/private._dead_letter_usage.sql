create or replace function private._dead_letter_usage(p_row private.usage_outbox, p_error text) returns void
language plpgsql
set search_path = ''
as $$
begin
  update private.usage_outbox
     set attempts = attempts + 1, last_error = p_error, dead_at = now(), dead_reason = p_error
   where id = p_row.id;
  -- Its hold (what it cost, moved out of its lease when it was parked) goes back: the user is not blocked by a
  -- record only an operator can mend.
  perform private.gateway_release(p_row.request_id);
  perform private.raise_admin_alert(
    'usage_dead_letter',
    case when exists (select 1 from public.users where id::text = p_row.payload ->> 'user_id')
         then (p_row.payload ->> 'user_id')::uuid end,
    jsonb_build_object('request_id', p_row.request_id, 'error', p_error, 'attempts', p_row.attempts + 1),
    'usage_dead_letter:' || p_row.request_id);
end;
$$;

comment on function private._dead_letter_usage(private.usage_outbox, text) is
  'Gives a usage record up: marks it dead with its reason, releases its hold, and raises an operator alert.';
