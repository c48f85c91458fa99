create or replace function private._price_at(p_provider text, p_model text, p_at timestamptz)
returns setof public.model_pricing
language sql stable rows 1
as $$
  select m.* from public.model_pricing m
   where m.provider = p_provider and m.model = p_model
   order by private._in_force(m.effective_from, m.effective_to, p_at) desc, m.effective_from desc
   limit 1
$$;

comment on function private._price_at(text, text, timestamptz) is
  'The model''s price at p_at: the one in force then, else (a price closed retroactively while calls were in '
  'flight) its newest; no row for a model that never had a price. Admission also requires it in force '
  '(private._in_force); settlement bills at it. Inlinable (a set-returning SQL function without SET, so the '
  'planner folds it into the statements that settle a batch); names are schema-qualified.';
