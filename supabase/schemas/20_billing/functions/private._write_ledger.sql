create or replace function private._write_ledger(p_entries private.ledger_entry[])
returns setof public.token_transactions
language plpgsql
set search_path = ''
as $$
begin
  -- Lock order as everywhere: the users (key share: deleting one waits rather than deadlocks), then their
  -- balance rows, each in id order. Held already by the caller in the usual case; then these are no-ops. After
  -- them, the statement below sees every earlier change of these balances.
  perform 1 from public.users u where u.id in (select e.user_id from unnest(p_entries) e) order by u.id for key share;
  perform 1 from public.token_balances b where b.user_id in (select e.user_id from unnest(p_entries) e)
   order by b.user_id for update;

  -- One statement: every part sees the balances before it, so each row's balance_after is the running total
  -- of the user's entries in the order given.
  return query
  with entries as (
    select e.* from unnest(p_entries) with ordinality as e(user_id, delta, reason, reference, metadata, n)
     where e.delta <> 0
  ), balances as (
    update public.token_balances b set balance = b.balance + s.delta, updated_at = now()
      from (select e.user_id, sum(e.delta) as delta from entries e group by 1) s
     where b.user_id = s.user_id
  )
  insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
  select e.user_id, e.delta,
         b.balance + sum(e.delta) over (partition by e.user_id order by e.n rows unbounded preceding),
         e.reason, e.reference, coalesce(e.metadata, '{}')
    from entries e join public.token_balances b on b.user_id = e.user_id
   order by e.n
  returning *;
end;
$$;

comment on function private._write_ledger(private.ledger_entry[]) is
  'The one writer of the token ledger: applies the entries (in order; zero deltas skipped) to the users'' '
  'balances and appends their token_transactions rows (balance_after: the running balance), in one statement. '
  'Enforces nothing but the tables'' rules (a unique reference, a balance below zero only after usage or a '
  'credit); callers decide (update_user_token_balance: idempotency, no debit below zero; the gateway''s '
  'settlement: usage in full).';
