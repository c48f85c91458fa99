create unlogged table private.rate_limit_buckets (
  key text primary key constraint key_is_short check (char_length(key) <= 512),
  window_start timestamptz not null,
  hits integer not null constraint hits_is_positive check (hits > 0),
  expires_at timestamptz not null
);

comment on table private.rate_limit_buckets is
  'Fixed-window counters for private.rate_limit_hit: one row per limiter key, reset when its window ends.';

alter table private.rate_limit_buckets enable row level security;

create index rate_limit_buckets_expires_at_idx on private.rate_limit_buckets (expires_at);
