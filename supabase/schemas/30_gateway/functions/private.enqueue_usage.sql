create or replace function private.enqueue_usage(p_payload jsonb, p_error text default null) returns void
language plpgsql
set search_path = ''
as $$
declare
  v_lease private.token_holds;
  v_keep bigint;
begin
  if exists (select 1 from public.token_usage t where t.request_id = p_payload ->> 'request_id') then
    return; -- settled already (a copy from Redis or a log of a call whose settlement did commit)
  end if;
  insert into private.usage_outbox (request_id, payload, last_error)
  values (p_payload ->> 'request_id', p_payload, p_error)
  on conflict (request_id) do nothing;
  if not found or p_payload ->> 'lease_id' is null then
    return;
  end if;
  -- A call admitted under a lease: what it cost moves out of the lease into a hold of its own, so that giving
  -- the lease back does not free it before the outbox settles the call (gateway_settle releases that hold).
  select * into v_lease from private.token_holds h
   where h.request_id = p_payload ->> 'lease_id' and h.user_id::text = p_payload ->> 'user_id' for update;
  if v_lease.request_id is null then
    return;
  end if;
  begin
    select least(v_lease.amount, c.platform_tokens) into v_keep
      from private._usage_records(jsonb_build_array(p_payload)) r
     cross join lateral private._charge(r.provider, r.model, r.admitted_at, r.input_tokens, r.cached_input_tokens,
                                        r.cache_write_tokens, r.output_tokens, r.reasoning_tokens,
                                        r.search_context_size) c;
  exception when others then
    v_keep := v_lease.amount; -- a record that cannot be read keeps the whole lease until it is looked at
  end;
  if coalesce(v_keep, 0) <= 0 then
    return;
  end if;
  insert into private.token_holds (request_id, user_id, provider, model, amount, expires_at)
  values (p_payload ->> 'request_id', v_lease.user_id, v_lease.provider, coalesce(p_payload ->> 'model', v_lease.model),
          v_keep, greatest(v_lease.expires_at, now() + interval '1 day'))
  on conflict (request_id) do nothing;
  if found then
    if v_keep = v_lease.amount then
      delete from private.token_holds h where h.request_id = v_lease.request_id;
    else
      update private.token_holds h set amount = h.amount - v_keep where h.request_id = v_lease.request_id;
    end if;
  end if;
end;
$$;

comment on function private.enqueue_usage(jsonb, text) is
  'Parks a usage record whose settlement failed; aie_usage_outbox applies it. Idempotent per request_id. What a '
  'call admitted under a lease cost moves into a hold of its own (kept a day at least) until it is settled.';
