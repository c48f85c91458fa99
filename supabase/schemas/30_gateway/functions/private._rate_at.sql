create or replace function private._rate_at(p_at timestamptz) returns setof public.platform_token_rates
language sql stable rows 1
as $$
  select t.* from public.platform_token_rates t
   order by private._in_force(t.effective_from, t.effective_to, p_at) desc, t.effective_from desc
   limit 1
$$;

comment on function private._rate_at(timestamptz) is
  'The platform token rate at p_at: the one in force then, else the newest. Inlinable, as private._price_at.';
