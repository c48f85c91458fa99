create table private.marketplace_catalog_version (
  id boolean primary key default true constraint is_the_only_row check (id),
  version bigint not null default 1 constraint version_is_positive check (version > 0),
  changed_at timestamptz not null default now()
);

comment on table private.marketplace_catalog_version is
  'One row: the version of the marketplace catalog (ai_employees and ai_employee_categories), bumped by a '
  'statement trigger in the transaction of any change to them, so a cache of the listing keyed by it is never '
  'stale for the catalog. Hires and ratings do not bump it (their numbers change the listing''s popularity and '
  'rating sorts, which a cache keeps for a short TTL instead). Read with public.marketplace_catalog_version().';
