-- Foundation: the conventions every later migration relies on.
--   * default-deny: functions created by postgres are not executable by PUBLIC, anon or authenticated,
--     and new tables and sequences in public give anon and authenticated nothing, unless a migration
--     grants it explicitly (service_role keeps the platform default in public; in private it has
--     USAGE only, so a service function there is granted to it by name);
--   * the `private` schema for service-only tables and functions (not in [api] schemas, so PostgREST
--     never exposes it);
--   * private.tg__set_updated_at(), the generic updated_at trigger function.

-- ------------------------------------------------------------------------------------------ grants
alter default privileges for role postgres revoke execute on functions from public;
alter default privileges for role postgres in schema public revoke execute on functions from anon, authenticated;
alter default privileges for role postgres in schema public revoke all on tables from anon, authenticated;
alter default privileges for role postgres in schema public revoke all on sequences from anon, authenticated;

-- ----------------------------------------------------------------------------------------- schemas
create schema private;
comment on schema private is
  'Service-only tables and functions (webhook events, dead letters, rate-limit state, outboxes, trigger '
  'functions). Not exposed by the API; anon and authenticated have no access.';
revoke all on schema private from public;
grant usage on schema private to service_role;

-- --------------------------------------------------------------------------------------- functions
create function private.tg__set_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
comment on function private.tg__set_updated_at() is
  'Generic BEFORE UPDATE trigger: stamps updated_at with the transaction time. Attach as _100_timestamps.';
