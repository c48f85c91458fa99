create table public.token_transactions (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  delta bigint not null constraint delta_is_not_zero check (delta <> 0),
  balance_after bigint not null,
  reason text not null constraint reason_is_known check (reason in (
    'subscription_allowance', 'token_pack_purchase', 'token_pack_refund', 'token_pack_dispute',
    'token_pack_reinstated', 'usage', 'adjustment'
  )),
  reference text not null
    constraint token_transactions_reference_is_unique unique
    constraint reference_is_short check (char_length(reference) between 1 and 255),
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  -- A balance goes below zero only by settling calls already admitted (usage); a credit may leave it there.
  constraint balance_after_is_negative_only_after_usage_or_credit
    check (balance_after >= 0 or reason = 'usage' or delta > 0)
);

comment on table public.token_transactions is
  'Append-only token ledger: every change of a balance, with the balance after it. reference is the external '
  'key of the change (Stripe invoice, payment intent, refund, LLM request), unique, so a replay is a no-op.';

create index token_transactions_user_id_idx on public.token_transactions (user_id, created_at desc);

create trigger _100_append_only before update or delete on public.token_transactions
  for each row execute function private.tg_token_transactions__append_only();

alter table public.token_transactions enable row level security;

create policy "Users can read their own token transactions" on public.token_transactions
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.token_transactions from anon, authenticated;
grant select on public.token_transactions to authenticated;
-- The service key reads the ledger but writes it only through the ledger functions.
revoke insert, update, delete, truncate on public.token_transactions from service_role;
