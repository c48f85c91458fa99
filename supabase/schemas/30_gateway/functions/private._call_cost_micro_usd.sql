-- Inlinable (no SET clause; every name in full): the settlement's set-based path and admission call them.

create or replace function private._call_cost_micro_usd(
  p_price public.model_pricing, p_input bigint, p_cached bigint, p_cache_write bigint, p_output bigint,
  p_reasoning bigint
) returns numeric
language sql immutable
as $$
  select (
      greatest(p_input - p_cached - p_cache_write, 0)::numeric * p_price.input_micro_usd_per_mtok
      + p_cached::numeric * coalesce(p_price.cached_input_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok)
      + p_cache_write::numeric * coalesce(p_price.cache_write_micro_usd_per_mtok, p_price.input_micro_usd_per_mtok)
      + greatest(p_output - p_reasoning, 0)::numeric * p_price.output_micro_usd_per_mtok
      + p_reasoning::numeric * coalesce(p_price.reasoning_micro_usd_per_mtok, p_price.output_micro_usd_per_mtok)
    ) / 1000000
$$;

comment on function private._call_cost_micro_usd(public.model_pricing, bigint, bigint, bigint, bigint, bigint) is
  'The exact cost in micro-dollars (not rounded) of a call''s tokens at a price row: input, cached input, cache '
  'writes, output and reasoning each at its own price (cached, cache-write and reasoning prices default to input '
  'and output).';
