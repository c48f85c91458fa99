create or replace function private.gateway_settle(p_record jsonb) returns public.token_usage
language plpgsql
set search_path = ''
as $$
declare
  v_r private.usage_record;
  v_charge private.usage_charge;
  v_usage public.token_usage;
  v_balance bigint;
  v_held bigint;
  v_hold_amount bigint;
  v_lease bigint;
  v_from_lease bigint;
begin
  -- Never queue behind a lock for long: a settlement that cannot proceed goes to the outbox instead.
  perform set_config('lock_timeout', '3s', true);
  select * into strict v_r from private._usage_records(jsonb_build_array(p_record));
  -- Lock order as everywhere: the user row (key share, so a concurrent deletion of the user waits rather than
  -- deadlocks), then the balance row, which serializes this user's settlements (and a repeat of this one).
  perform 1 from public.users where id = v_r.user_id for key share;
  select b.balance, b.held into v_balance, v_held from public.token_balances b where b.user_id = v_r.user_id for update;
  if not found then
    raise exception 'unknown user %', v_r.user_id using errcode = 'PB404';
  end if;
  select * into v_usage from public.token_usage where request_id = v_r.request_id;
  if found then
    if v_usage.user_id <> v_r.user_id then
      raise exception 'request % was settled for another user', v_r.request_id using errcode = 'PB409';
    end if;
    -- Already settled: a retried write is a no-op, but a hold parked for it (an outbox copy) goes back.
    perform private._release_hold(v_r.request_id);
    return v_usage;
  end if;

  select * into strict v_charge from private._charge(v_r.provider, v_r.model, v_r.admitted_at, v_r.input_tokens,
    v_r.cached_input_tokens, v_r.cache_write_tokens, v_r.output_tokens, v_r.reasoning_tokens, v_r.search_context_size);

  -- A hold of its own: a call admitted on its own (gateway_admit), or what a parked call used, moved out of its
  -- lease when it was parked (enqueue_usage). All of it goes back.
  delete from private.token_holds h where h.request_id = v_r.request_id returning h.amount into v_hold_amount;
  if v_hold_amount is null and v_r.lease_id is not null then
    -- A call admitted under a lease: what it cost comes off the lease (the rest stays leased for later calls).
    select h.amount into v_lease from private.token_holds h
     where h.request_id = v_r.lease_id and h.user_id = v_r.user_id for update;
    v_from_lease := least(v_charge.platform_tokens, coalesce(v_lease, 0));
    if v_from_lease = v_lease then
      delete from private.token_holds h where h.request_id = v_r.lease_id;
    elsif v_from_lease > 0 then
      update private.token_holds h set amount = h.amount - v_from_lease where h.request_id = v_r.lease_id;
    end if;
    v_held := greatest(v_held - v_from_lease, 0);
  end if;
  if v_hold_amount is not null then
    v_held := greatest(v_held - v_hold_amount, 0);
  end if;

  -- Release the hold, then debit what the call cost, in full (usage beyond the hold takes the balance below zero:
  -- never written off), through the ledger.
  update public.token_balances set held = v_held where user_id = v_r.user_id and held <> v_held;
  perform from private._write_ledger(array[(v_r.user_id, -v_charge.platform_tokens, 'usage', 'usage:' || v_r.request_id,
    jsonb_build_object('provider', v_r.provider, 'model', v_r.model, 'cost_micro_usd', v_charge.cost_micro_usd)
  )::private.ledger_entry]);

  insert into public.token_usage (
    request_id, user_id, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
    reasoning_tokens, cost_micro_usd, request_fee_micro_usd, search_context_size, pricing_id, rate_id, price_missing,
    tokens_estimated, debited_tokens, status, http_status, latency_ms, upstream_request_id, session_id, run_id)
  values (
    v_r.request_id, v_r.user_id, v_r.provider, v_r.model, v_r.input_tokens, v_r.cached_input_tokens,
    v_r.cache_write_tokens, v_r.output_tokens, v_r.reasoning_tokens,
    case when v_charge.pricing_id is not null then v_charge.cost_micro_usd end, v_charge.request_fee_micro_usd,
    v_r.search_context_size, v_charge.pricing_id, v_charge.rate_id, v_charge.pricing_id is null, v_r.tokens_estimated,
    v_charge.platform_tokens, v_r.status, v_r.http_status, v_r.latency_ms, v_r.upstream_request_id, v_r.session_id,
    v_r.run_id)
  returning * into v_usage;

  if v_charge.pricing_id is null then
    perform private._alert_unpriced_model(v_r.provider, v_r.model);
  end if;
  return v_usage;
end;
$$;

comment on function private.gateway_settle(jsonb) is
  'Settles a gateway call (a usage record) once per request_id, atomically: debits its full cost in platform '
  'tokens (private._charge at the price and rate in force when it was admitted; the balance may go below zero) '
  'and writes the token_usage row. A call admitted on its own releases its hold; one admitted under a lease '
  'takes what it cost off that lease. A model that never had a price is billed its raw tokens and alerts '
  'operators. A repeat returns the existing row and changes nothing.';
