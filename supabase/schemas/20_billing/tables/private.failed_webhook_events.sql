create table private.failed_webhook_events (
  event_id text primary key references private.stripe_webhook_events (id) on delete cascade,
  type text not null,
  payload jsonb not null,
  errors jsonb not null default '[]',
  attempts integer not null,
  failed_at timestamptz not null default now(),
  replay_count integer not null default 0,
  last_replayed_at timestamptz,
  next_retry_at timestamptz,
  resolved_at timestamptz
);

comment on table private.failed_webhook_events is
  'Dead-letter queue: events whose processing failed 3 times, with their payload and every error. Replayed '
  'by private.replay_failed_webhook_event (operator) or the aie_stripe_webhook_retry job (backoff).';

create index failed_webhook_events_retry_idx on private.failed_webhook_events (next_retry_at)
  where resolved_at is null;

alter table private.failed_webhook_events enable row level security;

grant select on private.failed_webhook_events to service_role;
