create or replace function private.update_user_token_balance(
  p_user_id uuid,
  p_delta bigint,
  p_reason text,
  p_reference text,
  p_metadata jsonb default '{}'
) returns public.token_transactions
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_balance bigint;
  v_row public.token_transactions;
begin
  if p_delta is null or p_delta = 0 then
    raise exception 'delta must be a non-zero number of tokens' using errcode = '22023';
  end if;
  if p_reference is null or p_reference !~ '\S' then
    raise exception 'a reference is required' using errcode = '22023';
  end if;

  -- Lock order: the user row (key share: deleting the user waits rather than deadlocks), then the balance
  -- row, which serializes every change of this user's balance.
  perform 1 from public.users where id = p_user_id for key share;
  select balance into v_balance from public.token_balances where user_id = p_user_id for update;
  if not found then
    raise exception 'unknown user %', p_user_id using errcode = 'PB404';
  end if;

  -- Idempotent on reference. Read after the lock: a concurrent call with the same reference has committed.
  select * into v_row from public.token_transactions where reference = p_reference;
  if found then
    if v_row.user_id <> p_user_id or v_row.delta <> p_delta then
      raise exception 'reference % was already used for another change', p_reference using errcode = 'PB409';
    end if;
    return v_row;
  end if;

  -- A credit always lands (paying a debt first); a debit never takes the balance below zero (only the gateway's
  -- settlement of calls already admitted may, and it does not come through here).
  if p_delta < 0 and v_balance + p_delta < 0 then
    raise exception 'insufficient token balance: % available, % requested', v_balance, -p_delta
      using errcode = 'PB402';
  end if;

  select * into v_row
    from private._write_ledger(array[(p_user_id, p_delta, p_reason, p_reference, p_metadata)::private.ledger_entry]);
  return v_row;
end;
$$;

comment on function private.update_user_token_balance(uuid, bigint, text, text, jsonb) is
  'Adds p_delta tokens (negative: a debit) to the user''s balance and appends the ledger row, atomically '
  '(private._write_ledger). Idempotent on p_reference: a repeat returns the original row and changes nothing '
  '(PB409 if the repeat differs). A credit always lands (on a negative balance it pays the debt first); a debit '
  'never takes the balance below zero (PB402). Safe under concurrency (row lock per user).';

grant execute on function private.update_user_token_balance(uuid, bigint, text, text, jsonb) to service_role;
