create table private.token_holds (
  request_id text primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  provider text not null,
  model text not null,
  amount bigint not null constraint amount_is_positive check (amount > 0),
  pricing_id bigint references public.model_pricing (id),
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);

comment on table private.token_holds is
  'Tokens reserved for gateway calls in flight (the most each can cost): one row per call admitted on its own '
  '(gateway_admit), or one per function instance and user for a lease (gateway_lease), which the calls it admits '
  'draw on. token_balances.held is their sum per user. Settled by gateway_settle, leases given back by '
  'gateway_release; holds of calls or instances that died are released by aie_release_expired_holds.';

create index token_holds_user_id_idx on private.token_holds (user_id);

create index token_holds_expires_at_idx on private.token_holds (expires_at);

create index token_holds_pricing_id_idx on private.token_holds (pricing_id);

alter table private.token_holds enable row level security;

grant select on private.token_holds to service_role;
