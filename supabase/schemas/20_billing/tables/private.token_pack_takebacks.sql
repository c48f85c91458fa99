create table private.token_pack_takebacks (
  reference text primary key,
  payment_intent_id text not null,
  user_id uuid not null references public.users (id) on delete cascade,
  share_tokens bigint not null constraint share_is_not_negative check (share_tokens >= 0),
  taken_tokens bigint not null constraint taken_is_within_share check (taken_tokens between 0 and share_tokens),
  given_back_at timestamptz,
  created_at timestamptz not null default now()
);

comment on table private.token_pack_takebacks is
  'What each refund, dispute and rounding of a token pack takes back, decided once (keyed by the ledger '
  'reference of its debit: refund:<id>, dispute:<id>, refund_rounding:<payment intent>): its share of the pack, '
  'what the balance allowed (share - taken is the shortfall, tokens already spent), and when a failed refund, '
  'a won dispute or an undone rounding gave it back. A takeback that found nothing to take is kept too, so it '
  'is never taken again from tokens gained later.';

create index token_pack_takebacks_payment_intent_idx on private.token_pack_takebacks (payment_intent_id);

create index token_pack_takebacks_user_id_idx on private.token_pack_takebacks (user_id);

alter table private.token_pack_takebacks enable row level security;

grant select on private.token_pack_takebacks to service_role;
