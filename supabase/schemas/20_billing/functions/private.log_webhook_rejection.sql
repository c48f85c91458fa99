create or replace function private.log_webhook_rejection(
  p_request_id text, p_source_ip inet, p_http_status integer, p_reason text,
  p_event_id text default null, p_event_type text default null
) returns void
language sql
set search_path = ''
as $$
  insert into private.webhook_audit_log (request_id, source_ip, event_id, event_type, outcome, http_status, reason)
  values (p_request_id, p_source_ip, p_event_id, p_event_type, 'rejected', p_http_status, left(p_reason, 500));
$$;

comment on function private.log_webhook_rejection(text, inet, integer, text, text, text) is
  'Audits a delivery the webhook refused before it reached processing (method, size, signature, limits).';
