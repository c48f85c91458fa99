create or replace function private._hold_tokens(
  p_price public.model_pricing, p_rate_micro_usd_per_mtok bigint, p_input_estimate bigint, p_max_output bigint,
  p_choices integer, p_request_fee_micro_usd bigint
) returns bigint
language sql immutable
as $$
  select private._platform_tokens(
    (greatest(p_input_estimate, 0)::numeric
       * greatest(p_price.input_micro_usd_per_mtok,
                  coalesce(p_price.cache_write_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok))
     + greatest(p_max_output, 0)::numeric * greatest(coalesce(p_choices, 1), 1)
       * greatest(p_price.output_micro_usd_per_mtok,
                  coalesce(p_price.reasoning_micro_usd_per_mtok, p_price.output_micro_usd_per_mtok))) / 1000000
    + coalesce(p_request_fee_micro_usd, 0),
    p_rate_micro_usd_per_mtok)
$$;

comment on function private._hold_tokens(public.model_pricing, bigint, bigint, bigint, integer, bigint) is
  'The most a call can cost, in platform tokens: its input estimate at the dearer of the input and cache-write '
  'prices, its max output for every choice at the dearer of the output and reasoning prices, and its request '
  'fee. The gateway''s lease book computes the same from the prices gateway_lease returns (a table-driven test '
  'holds the two together).';
