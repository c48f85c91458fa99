create or replace function private._alert_unpriced_model(p_provider text, p_model text) returns void
language sql
set search_path = ''
as $$
  insert into private.admin_alerts (kind, user_id, details, dedupe_key)
  values ('unpriced_model', null, jsonb_build_object('provider', p_provider, 'model', p_model),
          'unpriced_model:' || p_provider || ':' || p_model || ':' || to_char(now(), 'YYYY-MM-DD'))
  on conflict (dedupe_key) do nothing
$$;

comment on function private._alert_unpriced_model(text, text) is
  'The operator alert for a call settled without a price (once per model per day).';
