create or replace function private._settle_set(p_records jsonb) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_ok boolean;
  v_unpriced integer;
  v_records private.usage_record[];
  v_charges private.usage_charge[];
begin
  -- Only the usual batch: calls admitted under leases, each settled for the first time. Anything else goes
  -- record by record (gateway_settle).
  select count(*) = count(distinct r.request_id)
         and bool_and(r.lease_id is not null and r.request_id is not null and r.user_id is not null)
    into v_ok
    from private._usage_records(p_records) r;
  if not coalesce(v_ok, false) then
    return false;
  end if;
  if exists (select 1 from private._usage_records(p_records) r
              where exists (select 1 from public.token_usage t where t.request_id = r.request_id)
                 or exists (select 1 from private.token_holds h where h.request_id = r.request_id)
                 or not exists (select 1 from public.token_balances b where b.user_id = r.user_id)) then
    return false;
  end if;

  -- Lock order as in gateway_settle: users (key share), their balance rows, then the leases; each in id order.
  perform 1 from public.users u where u.id in (select r.user_id from private._usage_records(p_records) r)
   order by u.id for key share;
  perform 1 from public.token_balances b where b.user_id in (select r.user_id from private._usage_records(p_records) r)
   order by b.user_id for update;
  perform 1 from private.token_holds h where h.request_id in (select r.lease_id from private._usage_records(p_records) r)
   order by h.request_id for update;

  -- The charges, computed once, in (user, request) order: the order balance_after follows, as in gateway_settle.
  select coalesce(array_agg(r order by r.user_id, r.request_id), '{}'),
         coalesce(array_agg(c order by r.user_id, r.request_id), '{}')
    into v_records, v_charges
    from private._usage_records(p_records) r
   cross join lateral private._charge(r.provider, r.model, r.admitted_at, r.input_tokens, r.cached_input_tokens,
                                      r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
                                      r.search_context_size) c;

  -- The debits, through the ledger.
  perform from private._write_ledger(array(
    select (s.user_id, -s.platform_tokens, 'usage', 'usage:' || s.request_id,
            jsonb_build_object('provider', s.provider, 'model', s.model, 'cost_micro_usd', s.cost_micro_usd)
           )::private.ledger_entry
      from unnest(v_records, v_charges) with ordinality as s
     order by s.ordinality));

  -- One statement for the rest: what the calls cost off their leases (a lease used up is deleted) and off the
  -- balances' held, the usage rows, and an alert for a model that never had a price.
  with settled as (
    select * from unnest(v_records, v_charges)
  ), per_lease as (
    select s.user_id, s.lease_id, sum(s.platform_tokens) as used from settled s group by 1, 2
  ), used_up as (
    delete from private.token_holds h using per_lease pl
     where h.request_id = pl.lease_id and h.user_id = pl.user_id and pl.used >= h.amount
    returning h.user_id, h.amount as taken
  ), cut as (
    update private.token_holds h set amount = h.amount - pl.used from per_lease pl
     where h.request_id = pl.lease_id and h.user_id = pl.user_id and pl.used < h.amount
    returning h.user_id, pl.used as taken
  ), taken as (
    select t.user_id, sum(t.taken) as taken from (select * from used_up union all select * from cut) t group by 1
  ), held as (
    update public.token_balances b set held = greatest(b.held - t.taken, 0)
      from taken t
     where b.user_id = t.user_id and t.taken > 0
  ), usage as (
    insert into public.token_usage (
      request_id, user_id, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
      reasoning_tokens, cost_micro_usd, request_fee_micro_usd, search_context_size, pricing_id, rate_id,
      price_missing, tokens_estimated, debited_tokens, status, http_status, latency_ms, upstream_request_id,
      session_id, run_id)
    select s.request_id, s.user_id, s.provider, s.model, s.input_tokens, s.cached_input_tokens, s.cache_write_tokens,
           s.output_tokens, s.reasoning_tokens, case when s.pricing_id is not null then s.cost_micro_usd end,
           s.request_fee_micro_usd, s.search_context_size, s.pricing_id, s.rate_id, s.pricing_id is null,
           s.tokens_estimated, s.platform_tokens, s.status, s.http_status, s.latency_ms, s.upstream_request_id,
           s.session_id, s.run_id
      from settled s
     order by s.user_id, s.request_id
    returning provider, model, pricing_id
  )
  select count(*) into v_unpriced
    from (select private._alert_unpriced_model(u.provider, u.model)
            from (select distinct provider, model from usage where pricing_id is null) u) alerts;
  return true;
end;
$$;

comment on function private._settle_set(jsonb) is
  'gateway_settle for a whole batch in a few set-based statements, for the usual batch only (calls admitted under '
  'leases, settled for the first time): returns false, changing nothing, for any other. Same rows and amounts as '
  'settling the records one by one in (user, request) order.';
