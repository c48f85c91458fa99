create table private.usage_outbox (
  id bigint generated always as identity primary key,
  request_id text not null constraint usage_outbox_request_id_is_unique unique,
  payload jsonb not null,
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  next_attempt_at timestamptz not null default now(),
  applied_at timestamptz,
  dead_at timestamptz,
  dead_reason text
);

comment on table private.usage_outbox is
  'Usage records whose settlement failed when the call ended; aie_usage_outbox applies them through '
  'gateway_settle (idempotent per request_id). Waiting records: applied_at is null.';

comment on column private.usage_outbox.dead_at is
  'When the record was given up as one that can never apply (malformed, or failing after 10 tries): an operator '
  'alert was raised and its hold released; private.replay_usage_dead_letter applies it once corrected.';

create index usage_outbox_waiting_idx on private.usage_outbox (next_attempt_at) where applied_at is null and dead_at is null;

alter table private.usage_outbox enable row level security;

grant select on private.usage_outbox to service_role;
