create or replace function private._charge(
  p_provider text, p_model text, p_at timestamptz, p_input bigint, p_cached bigint, p_cache_write bigint,
  p_output bigint, p_reasoning bigint, p_search_context_size text
) returns setof private.usage_charge
language sql stable
as $$
  select p.id, r.id,
         ceil(private._call_cost_micro_usd(p, p_input, p_cached, p_cache_write, p_output, p_reasoning)
              + coalesce(f.micro_usd_per_request, 0))::bigint,
         coalesce(f.micro_usd_per_request, 0),
         case when p.id is null then p_input + p_output
              else private._platform_tokens(
                private._call_cost_micro_usd(p, p_input, p_cached, p_cache_write, p_output, p_reasoning)
                + coalesce(f.micro_usd_per_request, 0), r.micro_usd_per_mtok) end
    from (select 1) one
    left join lateral private._price_at(p_provider, p_model, p_at) p on true
    left join lateral private._rate_at(p_at) r on true
    left join lateral private._request_fee_at(p_provider, p_model, p_search_context_size, p_at) f on true
$$;

comment on function private._charge(text, text, timestamptz, bigint, bigint, bigint, bigint, bigint, text) is
  'What a call is billed (a private.usage_charge): the price, rate and request fee (for the search context size of a call that searched; '
  'none when p_search_context_size is null) at p_at, when the call was admitted (private._price_at, _rate_at, '
  '_request_fee_at), the cost in micro-dollars (rounded up), and the platform tokens ceil((cost + fee) / rate). A '
  'model that never had a price (admission refuses those) is billed its raw tokens, one platform token each, with '
  'pricing_id null. Inlinable.';
