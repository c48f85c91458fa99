create or replace function public.marketplace_catalog_version() returns bigint
language sql stable
security definer
set search_path = ''
as $$ select coalesce((select v.version from private.marketplace_catalog_version v), 0) $$;

comment on function public.marketplace_catalog_version() is
  'The marketplace catalog''s version: bumped in the transaction of every change to ai_employees or their '
  'categories, never by hires or ratings. A cache of the listing keys on it (list_ai_employees returns it too, read '
  'in the same snapshot as its rows).';

grant execute on function public.marketplace_catalog_version() to anon, authenticated;
