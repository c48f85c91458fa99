create or replace function private._price_in_force(p_provider text, p_model text, p_at timestamptz)
returns public.model_pricing
language sql stable
set search_path = ''
as $$
  select * from public.model_pricing
   where provider = p_provider and model = p_model
     and effective_from <= p_at and (effective_to is null or effective_to > p_at)
   order by effective_from desc
   limit 1
$$;

comment on function private._price_in_force(text, text, timestamptz) is 'The model_pricing row in force at p_at, if any.';
