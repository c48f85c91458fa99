create or replace function private._charge(
  p_provider text, p_model text, p_at timestamptz, p_input bigint, p_cached bigint, p_cache_write bigint,
  p_output bigint, p_reasoning bigint, p_search_context_size text
) returns table (pricing_id bigint, rate_id bigint, cost_micro_usd bigint, request_fee_micro_usd bigint,
                 platform_tokens bigint)
language sql stable
as $$
  select (p.price).id, (r.rate).id,
         ceil(private._call_cost_micro_usd(p.price, p_input, p_cached, p_cache_write, p_output, p_reasoning)
              + coalesce(f.fee, 0))::bigint,
         coalesce(f.fee, 0),
         case when (p.price).id is null then p_input + p_output
              else private._platform_tokens(
                private._call_cost_micro_usd(p.price, p_input, p_cached, p_cache_write, p_output, p_reasoning)
                + coalesce(f.fee, 0), (r.rate).micro_usd_per_mtok) end
    from (select 1) one
    left join lateral (
      -- The price in force at p_at; if it was closed retroactively, the model's newest price.
      select m as price from public.model_pricing m
       where m.provider = p_provider and m.model = p_model
       order by (m.effective_from <= p_at and (m.effective_to is null or m.effective_to > p_at)) desc,
                m.effective_from desc
       limit 1
    ) p on true
    left join lateral (
      select t as rate from public.platform_token_rates t
       order by (t.effective_from <= p_at and (t.effective_to is null or t.effective_to > p_at)) desc,
                t.effective_from desc
       limit 1
    ) r on true
    left join lateral (
      select e.micro_usd_per_request as fee from public.model_request_fees e
       where e.provider = p_provider and e.model = p_model and e.search_context_size = p_search_context_size
       order by (e.effective_from <= p_at and (e.effective_to is null or e.effective_to > p_at)) desc,
                e.effective_from desc
       limit 1
    ) f on true
$$;

comment on function private._charge(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) is
  'What a call is billed: the price, rate and request fee (for the search context size of a call that searched; '
  'none when p_search_context_size is null) in force at p_at (when the call was admitted; a price '
  'closed retroactively falls back to the model''s newest), the cost in micro-dollars (rounded up), and the '
  'platform tokens ceil((cost + fee) / rate). A model that never had a price (admission refuses those) is billed '
  'its raw tokens, one platform token each, with pricing_id null. Inlinable.';
