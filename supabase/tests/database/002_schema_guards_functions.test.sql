-- Schema guards of the functions: every security definer function in public and private pins search_path to the
-- empty string, and schema private is private (no USAGE, no EXECUTE on any of its functions for anon,
-- authenticated or PUBLIC). The guards query the catalog rather than a fixed list, so a new function is covered the
-- moment its migration lands; each one reports the offending objects in its failure diagnostics (have/want).
begin;
\ir ../_helpers.psql
select plan(8);

-- -------------------------------------------------------------- generic guards: security definer
select is(
  (select coalesce(array_agg(format('%s.%I(%s)', p.pronamespace::regnamespace, p.proname,
                                    pg_get_function_identity_arguments(p.oid))
                             order by p.pronamespace::regnamespace::text, p.proname), '{}')
     from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
      and p.prosecdef
      and not exists (select 1 from pg_depend d
                       where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as cfg(setting)
                       where cfg.setting like 'search_path=%')),
  '{}'::text[],
  'Every security definer function in public and private pins search_path (have = the functions that do not)'
);

select is(
  (select coalesce(array_agg(format('%s.%I(%s) %s', p.pronamespace::regnamespace, p.proname,
                                    pg_get_function_identity_arguments(p.oid), coalesce(p.proconfig::text, '{}'))
                             order by p.pronamespace::regnamespace::text, p.proname), '{}')
     from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)
      and p.prosecdef
      and not exists (select 1 from pg_depend d
                       where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) as cfg(setting)
                       where cfg.setting = 'search_path=""')),
  '{}'::text[],
  'Every security definer function in public and private pins search_path to the empty string (have = the functions that do not)'
);

select ok(
  (select count(*) from pg_proc p
    where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace) and p.prosecdef) >= 2,
  'The security definer guards see the identity trigger functions'
);

-- ------------------------------------------------------------ generic guards: private is private
select is(
  (select coalesce(array_agg(format('%s.%I(%s) by %s', p.pronamespace::regnamespace, p.proname,
                                    pg_get_function_identity_arguments(p.oid), r.grantee)
                             order by p.pronamespace::regnamespace::text, p.proname, r.grantee), '{}')
     from pg_proc p
    cross join (values ('anon'), ('authenticated'), ('public')) as r(grantee)
    where p.pronamespace = 'private'::regnamespace
      and has_function_privilege(r.grantee, p.oid, 'EXECUTE')),
  '{}'::text[],
  'No function in schema private is executable by anon, authenticated or PUBLIC (have = function by grantee)'
);

select ok(
  (select count(*) from pg_proc p where p.pronamespace = 'private'::regnamespace) >= 3,
  'The private EXECUTE guard sees the functions in schema private'
);

select ok(
  not has_schema_privilege('anon', 'private', 'USAGE'),
  'anon has no USAGE on schema private'
);
select ok(
  not has_schema_privilege('authenticated', 'private', 'USAGE'),
  'authenticated has no USAGE on schema private'
);
select ok(
  not has_schema_privilege('public', 'private', 'USAGE'),
  'PUBLIC has no USAGE on schema private'
);

select * from finish();
rollback;
