create table private.stripe_webhook_events (
  id text primary key constraint id_looks_like_an_event check (id ~ '^evt_[A-Za-z0-9_]+$'),
  type text not null,
  livemode boolean not null default false,
  stripe_created_at timestamptz not null,
  status text not null default 'received'
    constraint status_is_known check (status in ('received', 'processed', 'ignored', 'failed')),
  attempts integer not null default 0,
  last_error text,
  errors jsonb not null default '[]',
  payload jsonb not null,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  updated_at timestamptz not null default now(),
  ignored_reason text
);

comment on table private.stripe_webhook_events is
  'Every Stripe event once (by id): its payload and processing state (received, processed, ignored for '
  'types we do not handle, failed with attempts and last_error).';

comment on column private.stripe_webhook_events.ignored_reason is
  'Why an ignored event changed nothing (a type we do not handle, a customer with no user here, …).';

create index stripe_webhook_events_status_idx on private.stripe_webhook_events (status, updated_at)
  where status in ('received', 'failed');

create trigger _100_timestamps before update on private.stripe_webhook_events
  for each row execute function private.tg__set_updated_at();

alter table private.stripe_webhook_events enable row level security;

grant select on private.stripe_webhook_events to service_role;
