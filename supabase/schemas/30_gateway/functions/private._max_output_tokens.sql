create or replace function private._max_output_tokens(p_requested integer, p_plan_max integer) returns integer
language sql immutable
as $$ select least(greatest(coalesce(p_requested, p_plan_max), 0), p_plan_max) $$;

comment on function private._max_output_tokens(integer, integer) is
  'A call''s output cap: what it asks for, at most the plan''s max; null asks for the plan''s max, and 0 for no '
  'output at all (embeddings and token counts generate nothing, so they hold and count no output). The gateway''s '
  'lease book computes the same (admission/hold.ts maxOutputOf; a table-driven test holds the two together).';
