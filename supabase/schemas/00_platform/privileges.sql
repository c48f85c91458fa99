-- Default-deny: functions created by postgres are not executable by PUBLIC, anon or authenticated, and new
-- tables and sequences in public give anon and authenticated nothing, unless their file grants it by name
-- (service_role keeps the platform default in public; in private it has USAGE only, so a service function there
-- is granted to it by name).
alter default privileges for role postgres revoke execute on functions from public;
alter default privileges for role postgres in schema public revoke execute on functions from anon, authenticated;
alter default privileges for role postgres in schema public revoke all on tables from anon, authenticated;
alter default privileges for role postgres in schema public revoke all on sequences from anon, authenticated;
