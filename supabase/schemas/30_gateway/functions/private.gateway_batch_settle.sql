create or replace function private.gateway_batch_settle(p_records jsonb, p_close_leases jsonb default '[]')
returns table (request_id text, error text, cost_tokens bigint, balance bigint)
language plpgsql
set search_path = ''
as $$
declare
  v_items jsonb[];
  v_kinds text[];
  v_all_done boolean := false;
  v_set boolean;
  v_record jsonb;
  v_ids text[] := '{}';
  v_errors text[] := '{}';
  v_settles boolean[] := '{}';
begin
  -- Before gateway_settle is first compiled in this session: compiling it opens the tables its variables are
  -- typed by, and that wait must time out too (a blocked settlement goes to the outbox, it never hangs).
  perform set_config('lock_timeout', '3s', true);
  -- In user order, so concurrent batches lock balance rows in the same order (no deadlocks); a user's calls
  -- before the leases they were admitted under are given back.
  select coalesce(array_agg(items.record order by items.record ->> 'user_id', items.settles_first,
                                                  items.record ->> 'request_id', items.record ->> 'lease_id'), '{}'),
         coalesce(array_agg(items.kind order by items.record ->> 'user_id', items.settles_first,
                                                items.record ->> 'request_id', items.record ->> 'lease_id'), '{}')
    into v_items, v_kinds
    from (select value as record, 'settle' as kind, 0 as settles_first from jsonb_array_elements(p_records)
          union all
          select value, 'close_lease', 1 from jsonb_array_elements(coalesce(p_close_leases, '[]'))) items;

  -- The usual case at once, in one subtransaction: set-based when it can (_settle_set), else call by call.
  begin
    v_set := private._settle_set(p_records);
    for i in 1 .. cardinality(v_items) loop
      if v_kinds[i] = 'close_lease' then
        perform private.gateway_release(v_items[i] ->> 'lease_id');
      elsif not v_set then
        perform private.gateway_settle(v_items[i]);
      end if;
    end loop;
    v_all_done := true;
  exception when others then
    v_all_done := false; -- all of it undone: again one by one, to park only what fails
  end;

  for i in 1 .. cardinality(v_items) loop
    v_record := v_items[i];
    v_ids := v_ids || coalesce(v_record ->> 'request_id', v_record ->> 'lease_id');
    v_settles := v_settles || (v_kinds[i] = 'settle');
    v_errors := v_errors || null::text;
    if not v_all_done then
      begin
        if v_kinds[i] = 'settle' then
          perform private.gateway_settle(v_record);
        else
          perform private.gateway_release(v_ids[i]);
        end if;
      exception when others then
        v_errors[i] := sqlstate || ': ' || sqlerrm;
        if v_kinds[i] = 'settle' then
          perform private.enqueue_usage(v_record, v_errors[i]); -- keeps what the call cost held for it
        end if;
      end;
    end if;
  end loop;
  -- Each item with its error; a settled call with what it cost and its user's balance after the whole batch, for
  -- the instance's lease book.
  return query
    select x.id, x.error, t.debited_tokens, b.balance
      from unnest(v_ids, v_errors, v_settles) as x (id, error, settles)
      left join public.token_usage t on x.settles and x.error is null and t.request_id = x.id
      left join public.token_balances b on b.user_id = t.user_id;
end;
$$;

comment on function private.gateway_batch_settle(jsonb, jsonb) is
  'Settles many gateway calls in one transaction (all at once, or, when one fails, each in its own '
  'subtransaction): a record whose settlement fails is parked in the usage outbox instead (what it cost stays '
  'held for it, see enqueue_usage). Then gives back the leases in p_close_leases ([{lease_id, user_id}]; one that '
  'cannot be given back now expires with its hold). Returns each request or lease id with its error (null when '
  'done) and, for a settled call, what it cost in platform tokens and its user''s balance after the batch.';
