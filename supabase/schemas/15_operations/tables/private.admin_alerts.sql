create table private.admin_alerts (
  id bigint generated always as identity primary key,
  kind text not null,
  user_id uuid references public.users (id) on delete cascade,
  details jsonb not null default '{}',
  dedupe_key text not null constraint admin_alerts_dedupe_key_is_unique unique,
  created_at timestamptz not null default now(),
  acknowledged_at timestamptz
);

comment on table private.admin_alerts is 'Alerts for operators (usage spikes, unpriced models in use). One per dedupe_key.';

create index admin_alerts_user_id_idx on private.admin_alerts (user_id);

alter table private.admin_alerts enable row level security;

grant select on private.admin_alerts to service_role;
