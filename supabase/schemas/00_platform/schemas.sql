-- Schemas are split by who may reach them, not by domain: public is the API's (every table under RLS), private
-- the service's (not in [api] schemas, so PostgREST never exposes it).
create schema if not exists private;
comment on schema private is
  'Service-only tables and functions (webhook events, dead letters, rate-limit state, outboxes, trigger '
  'functions). Not exposed by the API; anon and authenticated have no access.';
revoke all on schema private from public;
grant usage on schema private to service_role;
