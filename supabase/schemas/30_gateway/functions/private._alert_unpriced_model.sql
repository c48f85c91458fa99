create or replace function private._alert_unpriced_model(p_provider text, p_model text) returns void
language sql
set search_path = ''
as $$
  select private.raise_admin_alert('unpriced_model', null, jsonb_build_object('provider', p_provider, 'model', p_model),
                                   'unpriced_model:' || p_provider || ':' || p_model || ':' || to_char(now(), 'YYYY-MM-DD'))
$$;

comment on function private._alert_unpriced_model(text, text) is
  'The operator alert for a call settled without a price (once per model per day).';
