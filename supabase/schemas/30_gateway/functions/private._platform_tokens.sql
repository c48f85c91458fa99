create or replace function private._platform_tokens(p_cost_micro_usd numeric, p_rate_micro_usd_per_mtok bigint) returns bigint
language sql immutable
as $$ select ceil(p_cost_micro_usd * 1000000 / p_rate_micro_usd_per_mtok)::bigint $$;

comment on function private._platform_tokens(numeric, bigint) is
  'Platform tokens a cost is billed: ceil(cost / rate). The one place the unit is defined.';
