create or replace function private.tg_marketplace__bump_catalog_version() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into private.marketplace_catalog_version as v (id, version, changed_at) values (true, 1, now())
  on conflict (id) do update set version = v.version + 1, changed_at = now();
  return null;
end;
$$;

comment on function private.tg_marketplace__bump_catalog_version() is
  'AFTER each statement on ai_employees or ai_employee_categories: bumps the catalog version (in the same '
  'transaction, so whoever sees the change sees the new version). Security definer: operators write the catalog '
  'with the service key, which has no access to private tables.';
