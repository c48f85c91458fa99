create or replace function private.gateway_admit(
  p_user_id uuid,
  p_provider text,
  p_model text,
  p_request_id text,
  p_input_estimate bigint,
  p_requested_output integer,
  p_check_limits boolean default true,
  p_choices integer default 1,
  p_hold_seconds integer default 900,
  p_input_unbounded boolean default false,
  p_search_context_size text default null
) returns table (
  outcome text,
  message text,
  plan text,
  max_output_tokens integer,
  hold_tokens bigint,
  pricing_id bigint,
  requests_per_minute integer,
  tokens_per_minute integer,
  limit_value integer,
  limit_remaining integer,
  limit_reset_at timestamptz,
  balance bigint
)
language plpgsql
set search_path = ''
as $$
declare
  v_lease private.lease_grant;
begin
  if exists (select 1 from private.token_holds h where h.request_id = p_request_id) then
    raise exception 'request % is already admitted', p_request_id using errcode = '23505';
  end if;
  v_lease := private.gateway_lease((p_user_id, p_provider, p_request_id, p_model, p_input_estimate,
    p_requested_output, p_choices, p_input_unbounded, p_search_context_size, 1, 0, 0, 0, false, p_check_limits,
    p_hold_seconds)::private.lease_request);
  if v_lease.outcome = 'ok' then
    update private.token_holds h set pricing_id = v_lease.pricing_id where h.request_id = p_request_id;
  end if;
  return query select v_lease.outcome, v_lease.message, v_lease.plan, v_lease.max_output_tokens, v_lease.hold_tokens,
    v_lease.pricing_id, v_lease.requests_per_minute, v_lease.tokens_per_minute, v_lease.limit_value,
    case when v_lease.outcome = 'rate_limited' then 0 end, v_lease.limit_reset_at,
    case when v_lease.outcome in ('ok', 'payment_required') then v_lease.balance end;
end;
$$;

comment on function private.gateway_admit(uuid, text, text, text, bigint, integer, boolean, integer, integer, boolean,
  text) is
  'Admits one call: a lease of exactly that call (private.gateway_lease) under its own request id, with the price '
  'in force kept on the hold. Outcomes as gateway_lease''s; the gateway itself leases for several calls.';
