create table private.stripe_payment_reversals (
  id text primary key constraint id_looks_like_a_refund_or_dispute check (id ~ '^(re|pyr|dp|du)_[A-Za-z0-9_]+$'),
  kind text not null constraint kind_is_known check (kind in ('refund', 'dispute')),
  payment_intent_id text constraint payment_intent_id_looks_like_one check (payment_intent_id ~ '^pi_[A-Za-z0-9_]+$'),
  charge_id text,
  amount bigint not null constraint amount_is_not_negative check (amount >= 0),
  status text not null constraint status_is_short check (char_length(status) between 1 and 64),
  stripe_created_at timestamptz,
  stripe_updated_at timestamptz not null,
  stripe_event_id text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table private.stripe_payment_reversals is
  'Every Stripe refund and dispute seen, by its id, in the state of its highest-ranked event (event time, '
  'life stage, event id). private._apply_pack_reversals turns those of a token pack payment into ledger '
  'rows; one that arrives before the pack''s credit waits here until the credit lands.';

create index stripe_payment_reversals_payment_intent_idx on private.stripe_payment_reversals (payment_intent_id);

create trigger _100_timestamps before update on private.stripe_payment_reversals
  for each row execute function private.tg__set_updated_at();

alter table private.stripe_payment_reversals enable row level security;

grant select on private.stripe_payment_reversals to service_role;
