create or replace function private.raise_admin_alert(p_kind text, p_user_id uuid, p_details jsonb, p_dedupe_key text)
returns boolean
language sql
set search_path = ''
as $$
  with raised as (
    insert into private.admin_alerts (kind, user_id, details, dedupe_key)
    values (p_kind, p_user_id, coalesce(p_details, '{}'), p_dedupe_key)
    on conflict (dedupe_key) do nothing
    returning 1
  )
  select exists (select 1 from raised)
$$;

comment on function private.raise_admin_alert(text, uuid, jsonb, text) is
  'Raises an operator alert once per dedupe_key (kind:<what it is about>:<period>); true if this call raised it. '
  'The one writer of private.admin_alerts.';
