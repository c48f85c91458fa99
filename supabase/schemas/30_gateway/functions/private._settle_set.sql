create or replace function private._settle_set(p_records jsonb) returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_ok boolean;
  v_unpriced integer;
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

  -- One statement, so the charges are computed once and every part sees the balances before the batch: the
  -- ledger (balance_after in gateway_settle's order), what the calls cost off their leases (a lease used up is
  -- deleted) and off the balance, the usage rows, and an alert for a model that never had a price.
  with charges as (
    select r.*, c.pricing_id, c.rate_id, c.cost_micro_usd, c.request_fee_micro_usd, c.platform_tokens
      from private._usage_records(p_records) r
     cross join lateral private._charge(r.provider, r.model, r.admitted_at, r.input_tokens, r.cached_input_tokens,
                                        r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
                                        r.search_context_size) c
  ), ledger as (
    insert into public.token_transactions (user_id, delta, balance_after, reason, reference, metadata)
    select c.user_id, -c.platform_tokens,
           b.balance - sum(c.platform_tokens) over (partition by c.user_id order by c.request_id rows unbounded preceding),
           'usage', 'usage:' || c.request_id,
           jsonb_build_object('provider', c.provider, 'model', c.model, 'cost_micro_usd', c.cost_micro_usd)
      from charges c join public.token_balances b on b.user_id = c.user_id
     where c.platform_tokens > 0
     order by c.user_id, c.request_id
  ), per_lease as (
    select c.user_id, c.lease_id, sum(c.platform_tokens) as used from charges c group by 1, 2
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
  ), per_user as (
    select c.user_id, sum(c.platform_tokens) as used from charges c group by 1
  ), balances as (
    update public.token_balances b
       set balance = b.balance - pu.used,
           held = greatest(b.held - coalesce(t.taken, 0), 0),
           updated_at = case when pu.used > 0 then now() else b.updated_at end
      from per_user pu left join taken t on t.user_id = pu.user_id
     where b.user_id = pu.user_id
  ), usage as (
    insert into public.token_usage (
      request_id, user_id, provider, model, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
      reasoning_tokens, cost_micro_usd, request_fee_micro_usd, search_context_size, pricing_id, rate_id,
      price_missing, tokens_estimated, debited_tokens, status, http_status, latency_ms, upstream_request_id)
    select c.request_id, c.user_id, c.provider, c.model, c.input_tokens, c.cached_input_tokens, c.cache_write_tokens,
           c.output_tokens, c.reasoning_tokens, case when c.pricing_id is not null then c.cost_micro_usd end,
           c.request_fee_micro_usd, c.search_context_size, c.pricing_id, c.rate_id, c.pricing_id is null,
           c.tokens_estimated, c.platform_tokens, c.status, c.http_status, c.latency_ms, c.upstream_request_id
      from charges c
     order by c.user_id, c.request_id
    returning provider, model, pricing_id
  )
  select count(*) into v_unpriced
    from (select private._alert_unpriced_model(u.provider, u.model)
            from (select distinct provider, model from usage where pricing_id is null) u) alerts;
  return true;
end;
$$;

comment on function private._settle_set(jsonb) is
  'gateway_settle for a whole batch in a few statements, for the usual batch only (calls admitted under leases, '
  'settled for the first time): returns false, changing nothing, for any other. Same rows and amounts as '
  'settling the records one by one in (user, request) order.';
