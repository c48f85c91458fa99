create table private.webhook_audit_log (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  provider text not null default 'stripe',
  request_id text,
  source_ip inet,
  event_id text,
  event_type text,
  outcome text not null constraint outcome_is_known check (outcome in ('accepted', 'duplicate', 'rejected', 'failed')),
  http_status integer not null,
  reason text
);

comment on table private.webhook_audit_log is
  'Every webhook delivery, accepted or not, and why. service_role reads it; nobody updates it.';

create index webhook_audit_log_received_at_idx on private.webhook_audit_log (received_at);

create index webhook_audit_log_event_id_idx on private.webhook_audit_log (event_id);

alter table private.webhook_audit_log enable row level security;

grant select on private.webhook_audit_log to service_role;
