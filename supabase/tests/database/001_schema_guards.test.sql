-- Schema guards: invariants every migration, present and future, must keep. The generic guards
-- query the catalog rather than a fixed list, so a new table or function is covered the moment its
-- migration lands; each one reports the offending objects in its failure diagnostics (have/want).
-- Then the structural checks of the identity schema (20261125160100_identity.sql).
begin;
\ir ../_helpers.psql
select plan(49);

-- --------------------------------------------------------------------------- generic guards: RLS
select is(
  (select coalesce(array_agg(format('%I.%I', 'public', c.relname) order by c.relname), '{}')
     from pg_class c
    where c.relnamespace = 'public'::regnamespace
      and c.relkind in ('r', 'p')
      and not c.relrowsecurity),
  '{}'::text[],
  'Every table in schema public has row level security enabled (have = the tables without it)'
);

-- The guard above is only worth something if it sees tables at all.
select ok(
  (select count(*) from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and c.relrowsecurity) >= 3,
  'The RLS guard sees the identity tables in schema public'
);

select is(
  (select coalesce(array_agg(format('%I.%I', 'public', c.relname) order by c.relname), '{}')
     from pg_class c
    where c.relnamespace = 'public'::regnamespace
      and c.relkind in ('r', 'p')
      and coalesce(btrim(obj_description(c.oid, 'pg_class')), '') = ''),
  '{}'::text[],
  'Every table in schema public has a comment on table (have = the tables without one)'
);

-- Least privilege on top of RLS: RLS does not cover TRUNCATE, and TRIGGER/REFERENCES are never the
-- API roles' business; anon and authenticated get nothing on a new public table by default.
select is(
  (select coalesce(array_agg(format('%I: %s to %s', c.relname, p.privilege, r.grantee)
                             order by c.relname, p.privilege, r.grantee), '{}')
     from pg_class c
    cross join (values ('anon'), ('authenticated')) as r(grantee)
    cross join (values ('TRUNCATE'), ('TRIGGER'), ('REFERENCES')) as p(privilege)
    where c.relnamespace = 'public'::regnamespace
      and c.relkind in ('r', 'p')
      and has_table_privilege(r.grantee, c.oid, p.privilege)),
  '{}'::text[],
  'No table in schema public grants TRUNCATE, TRIGGER or REFERENCES to anon or authenticated (have = the grants)'
);

select is(
  (select coalesce(array_agg(format('%s on %s', d.defaclobjtype, d.defaclacl::text)), '{}')
     from pg_default_acl d
    where d.defaclrole = 'postgres'::regrole
      and d.defaclnamespace = 'public'::regnamespace
      and d.defaclobjtype in ('r', 'S')
      and exists (select 1 from aclexplode(d.defaclacl) a
                   where a.grantee in ('anon'::regrole, 'authenticated'::regrole))),
  '{}'::text[],
  'New tables and sequences in public give anon and authenticated nothing by default (have = the default ACLs that do)'
);

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

-- ------------------------------------------------------------ generic guards: foreign key indexes
-- A foreign key needs an index whose leading column(s) are its column(s), or every delete/update of
-- the referenced row scans the referencing table (and cascades lock it). Partial and invalid
-- indexes do not count.
select is(
  (select coalesce(array_agg(fk.label order by fk.label), '{}')
     from (
       select format('%s.%I(%s) [%s]', t.relnamespace::regnamespace, t.relname,
                     (select string_agg(a.attname, ', ' order by k.ord)
                        from unnest(c.conkey) with ordinality as k(attnum, ord)
                        join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum),
                     c.conname) as label
         from pg_constraint c
         join pg_class t on t.oid = c.conrelid
        where c.contype = 'f'
          and t.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
          and not exists (
            select 1 from pg_index i
             where i.indrelid = c.conrelid
               and i.indisvalid
               and i.indpred is null
               and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
               and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey
          )
     ) as fk),
  '{}'::text[],
  'Every foreign key in public and private has an index led by its column(s) (have = the unindexed foreign keys)'
);

select ok(
  (select count(*) from pg_constraint c join pg_class t on t.oid = c.conrelid
    where c.contype = 'f' and t.relnamespace in ('public'::regnamespace, 'private'::regnamespace)) >= 3,
  'The foreign key index guard sees the identity foreign keys'
);

-- ------------------------------------------------------------------------------ identity: tables
select has_table('public', 'users', 'public.users exists');
select has_table('public', 'user_profiles', 'public.user_profiles exists');
select has_table('public', 'user_settings', 'public.user_settings exists');

select columns_are('public', 'users', array[
  'id', 'email', 'plan', 'plan_status', 'stripe_customer_id', 'stripe_subscription_id',
  'created_at', 'updated_at'
], 'public.users has exactly the expected columns');
select columns_are('public', 'user_profiles', array[
  'user_id', 'display_name', 'avatar_url', 'bio', 'company', 'job_title', 'created_at', 'updated_at'
], 'public.user_profiles has exactly the expected columns');
select columns_are('public', 'user_settings', array[
  'user_id', 'theme', 'locale', 'timezone', 'email_notifications', 'marketing_emails', 'usage_alerts',
  'created_at', 'updated_at'
], 'public.user_settings has exactly the expected columns');

select col_is_pk('public', 'users', 'id', 'public.users is keyed by id');
select col_is_pk('public', 'user_profiles', 'user_id', 'public.user_profiles is keyed by user_id');
select col_is_pk('public', 'user_settings', 'user_id', 'public.user_settings is keyed by user_id');

select fk_ok('public', 'users', 'id', 'auth', 'users', 'id',
  'public.users.id references auth.users.id');
select fk_ok('public', 'user_profiles', 'user_id', 'public', 'users', 'id',
  'public.user_profiles.user_id references public.users.id');
select fk_ok('public', 'user_settings', 'user_id', 'public', 'users', 'id',
  'public.user_settings.user_id references public.users.id');

select is(
  (select array_agg(format('%s.%s', c.conrelid::regclass, c.confdeltype) order by c.conrelid::regclass::text)
     from pg_constraint c
    where c.contype = 'f'
      and c.confrelid in ('auth.users'::regclass, 'public.users'::regclass)
      and c.conrelid in ('public.users'::regclass, 'public.user_profiles'::regclass,
                         'public.user_settings'::regclass)),
  array['user_profiles.c', 'user_settings.c', 'users.c'],
  'Every identity foreign key to a user cascades on delete'
);

select col_not_null('public', 'users', 'plan', 'public.users.plan is not null');
select col_default_is('public', 'users', 'plan', 'free', 'public.users.plan defaults to free');
select col_not_null('public', 'users', 'plan_status', 'public.users.plan_status is not null');
select col_default_is('public', 'users', 'plan_status', 'active', 'public.users.plan_status defaults to active');
select col_type_is('public', 'users', 'updated_at', 'timestamp with time zone',
  'public.users.updated_at is a timestamptz');

-- ----------------------------------------------------------------------------- identity: indexes
-- Name-agnostic: any valid, non-partial index led by the column counts, unique-constraint ones included.
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisvalid and i.indpred is null
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'email')),
  'public.users(email) has an index'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisvalid and i.indpred is null
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_customer_id')),
  'public.users(stripe_customer_id) has an index'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisvalid and i.indpred is null
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_subscription_id')),
  'public.users(stripe_subscription_id) has an index'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisunique and i.indpred is null
            and i.indnatts = 1
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_customer_id')),
  'A Stripe customer id belongs to at most one user (unique index on stripe_customer_id alone)'
);
select ok(
  exists(select 1 from pg_index i
          where i.indrelid = 'public.users'::regclass and i.indisunique and i.indpred is null
            and i.indnatts = 1
            and i.indkey[0] = (select attnum from pg_attribute
                                where attrelid = 'public.users'::regclass and attname = 'stripe_subscription_id')),
  'A Stripe subscription id belongs to at most one user (unique index on stripe_subscription_id alone)'
);

-- ---------------------------------------------------------------------------- identity: triggers
select has_trigger('auth', 'users', '_500_create_identity', 'auth.users has the _500_create_identity trigger');
select trigger_is('auth', 'users', '_500_create_identity', 'private', 'tg_auth_users__create_identity',
  '_500_create_identity calls private.tg_auth_users__create_identity()');
select matches(
  (select pg_get_triggerdef(t.oid) from pg_trigger t
    where t.tgrelid = 'auth.users'::regclass and t.tgname = '_500_create_identity'),
  'AFTER INSERT ON auth\.users FOR EACH ROW',
  '_500_create_identity fires after insert, for each row'
);

select has_trigger('auth', 'users', '_500_sync_email', 'auth.users has the _500_sync_email trigger');
select trigger_is('auth', 'users', '_500_sync_email', 'private', 'tg_auth_users__sync_email',
  '_500_sync_email calls private.tg_auth_users__sync_email()');
select matches(
  (select pg_get_triggerdef(t.oid) from pg_trigger t
    where t.tgrelid = 'auth.users'::regclass and t.tgname = '_500_sync_email'),
  'AFTER UPDATE OF email ON auth\.users FOR EACH ROW',
  '_500_sync_email fires after an update of email, for each row'
);

select is_definer('private', 'tg_auth_users__create_identity', '{}'::name[],
  'The identity-creating trigger function is security definer (Auth inserts as its own role)');
select is_definer('private', 'tg_auth_users__sync_email', '{}'::name[],
  'The email-syncing trigger function is security definer (Auth updates as its own role)');

select trigger_is('public', 'users', '_100_timestamps', 'private', 'tg__set_updated_at',
  'public.users stamps updated_at with private.tg__set_updated_at()');
select trigger_is('public', 'user_profiles', '_100_timestamps', 'private', 'tg__set_updated_at',
  'public.user_profiles stamps updated_at with private.tg__set_updated_at()');
select trigger_is('public', 'user_settings', '_100_timestamps', 'private', 'tg__set_updated_at',
  'public.user_settings stamps updated_at with private.tg__set_updated_at()');

select * from finish();
rollback;
