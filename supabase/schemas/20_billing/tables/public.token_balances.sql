create table public.token_balances (
  user_id uuid primary key references public.users (id) on delete cascade,
  balance bigint not null default 0,
  updated_at timestamptz not null default now(),
  held bigint not null default 0 constraint held_is_not_negative check (held >= 0)
);

comment on table public.token_balances is
  'The user''s spendable platform tokens. Changed only by the ledger functions, always in the same transaction as '
  'the token_transactions row of the change. It goes below zero only when settling calls already admitted costs '
  'more than was left (the overage is a ledger row like any other); no call is admitted while it is <= 0, and the '
  'next credit pays the debt first.';

comment on column public.token_balances.held is 'Tokens reserved by gateway calls in flight (sum of private.token_holds).';

alter table public.token_balances enable row level security;

create policy "Users can read their own balance" on public.token_balances
  for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.token_balances from anon, authenticated;
grant select on public.token_balances to authenticated;
-- The service key reads balances but changes them only through the ledger functions.
revoke insert, update, delete, truncate on public.token_balances from service_role;

-- Every user has a balance from the start.
create trigger _500_create_balance after insert on public.users
  for each row execute function private.tg_users__create_balance();
