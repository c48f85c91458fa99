-- Turns the recorded refunds and disputes of one token pack payment into ledger rows, each exactly once.

create or replace function private._apply_pack_reversals(p_payment_intent text) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_credit public.token_transactions;
  v_paid bigint;
  v_reversal private.stripe_payment_reversals;
  v_share bigint;
  v_shares bigint := 0;
  v_reversed bigint := 0;
  v_reference text;
  v_rounding text := 'refund_rounding:' || p_payment_intent;
begin
  select * into v_credit from public.token_transactions
   where reference = 'pi:' || p_payment_intent and reason = 'token_pack_purchase';
  if not found then
    return; -- the pack's credit has not landed yet: it applies what is recorded when it does
  end if;
  v_paid := coalesce((v_credit.metadata ->> 'amount_paid')::bigint,
                     (select price_cents from public.token_packs where id = v_credit.metadata ->> 'pack_id'));
  if v_paid is null or v_paid <= 0 then
    return; -- nothing was paid, so nothing can be refunded
  end if;
  -- Lock order of the ledger: the user row (key share), then the balance row.
  perform 1 from public.users where id = v_credit.user_id for key share;
  perform 1 from public.token_balances where user_id = v_credit.user_id for update;

  for v_reversal in
    select * from private.stripe_payment_reversals where payment_intent_id = p_payment_intent
     order by stripe_created_at nulls last, id
  loop
    v_reference := v_reversal.kind || ':' || v_reversal.id;
    -- Its share of the pack, rounded down; the rounding is taken with the last of the money (below).
    v_share := (v_credit.delta * least(v_reversal.amount, v_paid)) / v_paid;
    if private._reversal_takes_back(v_reversal.kind, v_reversal.status) then
      v_shares := v_shares + v_share;
      v_reversed := v_reversed + v_reversal.amount;
      perform private._take_back(
        v_credit, v_reference,
        case when v_reversal.kind = 'refund' then 'token_pack_refund' else 'token_pack_dispute' end, v_share,
        jsonb_build_object(v_reversal.kind, v_reversal.id, 'payment_intent', p_payment_intent,
                           'amount', v_reversal.amount));
    else
      -- A refund that failed or was canceled, a dispute won: what it took comes back.
      perform private._give_back(
        v_credit, v_reference,
        jsonb_build_object(v_reversal.kind, v_reversal.id, 'payment_intent', p_payment_intent,
                           'status', v_reversal.status));
    end if;
  end loop;

  -- All the money is back with the buyer: the tokens the rounding of the shares left are taken too (and given
  -- back if a refund among them fails later).
  if v_reversed >= v_paid then
    if v_credit.delta - v_shares > 0 then
      perform private._take_back(v_credit, v_rounding, 'token_pack_refund', v_credit.delta - v_shares,
                                 jsonb_build_object('payment_intent', p_payment_intent));
    end if;
  else
    perform private._give_back(v_credit, v_rounding, jsonb_build_object('payment_intent', p_payment_intent));
  end if;
end;
$$;

comment on function private._apply_pack_reversals(text) is
  'Takes back, once each, the share of a token pack (tokens × amount / amount paid, rounded down) that each of its '
  'recorded refunds and disputes takes back (reference refund:<id> / dispute:<id>), gives back what a failed '
  'refund or a won dispute took (reinstated:<reference>), and takes the rounding when everything paid is back. '
  'Never below zero: a takeback takes what is left and records the shortfall. No-op until the pack is credited.';
