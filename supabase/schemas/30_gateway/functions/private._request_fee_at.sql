create or replace function private._request_fee_at(
  p_provider text, p_model text, p_search_context_size text, p_at timestamptz
) returns setof public.model_request_fees
language sql stable rows 1
as $$
  select e.* from public.model_request_fees e
   where e.provider = p_provider and e.model = p_model and e.search_context_size = p_search_context_size
   order by private._in_force(e.effective_from, e.effective_to, p_at) desc, e.effective_from desc
   limit 1
$$;

comment on function private._request_fee_at(text, text, text, timestamptz) is
  'The per-request fee of a call that searched with p_search_context_size, at p_at: the one in force then, else '
  'the newest; no row for a call that did not search (null size) or a model without such fees. Inlinable, as '
  'private._price_at.';
