-- Records a refund or dispute (a Stripe object) unless a higher-ranked state of it is recorded.

create or replace function private._record_reversal(
  p_kind text, p_object jsonb, p_payment_intent text, p_event_id text, p_event_created timestamptz
) returns void
language plpgsql
set search_path = ''
as $$
begin
  insert into private.stripe_payment_reversals as r (
    id, kind, payment_intent_id, charge_id, amount, status, stripe_created_at, stripe_updated_at, stripe_event_id)
  values (
    p_object ->> 'id', p_kind, coalesce(p_object ->> 'payment_intent', p_payment_intent), p_object ->> 'charge',
    coalesce((p_object ->> 'amount')::bigint, 0), coalesce(p_object ->> 'status', 'succeeded'),
    private._stripe_ts(p_object -> 'created'), p_event_created, p_event_id)
  on conflict (id) do update set
    payment_intent_id = coalesce(excluded.payment_intent_id, r.payment_intent_id),
    charge_id = coalesce(excluded.charge_id, r.charge_id),
    amount = excluded.amount,
    status = excluded.status,
    stripe_created_at = coalesce(excluded.stripe_created_at, r.stripe_created_at),
    stripe_updated_at = excluded.stripe_updated_at,
    stripe_event_id = excluded.stripe_event_id
  where (excluded.stripe_updated_at, private._reversal_stage(p_kind, excluded.status), excluded.stripe_event_id)
      > (r.stripe_updated_at, private._reversal_stage(p_kind, r.status), r.stripe_event_id);
end;
$$;

comment on function private._record_reversal(text, jsonb, text, text, timestamptz) is
  'Upserts a Stripe refund or dispute into private.stripe_payment_reversals unless a higher-ranked state of '
  'it (event time, stage, event id) is recorded. Commutative over the events of one refund or dispute.';
