-- Schema guards of the tables: invariants every migration, present and future, must keep. They query the catalog
-- rather than a fixed list, so a new table is covered the moment its migration lands, and each one reports the
-- offending objects in its failure diagnostics (have/want): every public table has RLS and a comment and grants the
-- API roles no TRUNCATE, TRIGGER or REFERENCES (nor anything by default), every foreign key has an index, every
-- money and token column is an exact integer.
begin;
\ir ../_helpers.psql
select plan(10);

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

-- ------------------------------------------------------------------------- generic guards: integer amounts
-- Generic over every table in public: money and token columns are exact integers, never float/numeric.
select is(
  (select coalesce(array_agg(format('%I.%I %s', c.table_name, c.column_name, c.data_type)
                             order by c.table_name, c.column_name), '{}')
     from information_schema.columns c
     join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and c.column_name ~ '(_cents|tokens|balance|delta|balance_after|allowance)$'
      and c.data_type not in ('bigint', 'integer')),
  '{}'::text[],
  'No money or token column in public is a float, numeric or any non-integer type (have = the offenders)'
);
-- Token amounts (balances, deltas, allowances, pack sizes) are bigint; limits such as max_output_tokens and
-- prices in cents may be integer.
select is(
  (select coalesce(array_agg(format('%I.%I %s', c.table_name, c.column_name, c.data_type)
                             order by c.table_name, c.column_name), '{}')
     from information_schema.columns c
     join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and c.column_name ~ '(^tokens|balance|delta|balance_after|allowance)$'
      and c.data_type <> 'bigint'),
  '{}'::text[],
  'Every token amount column in public (tokens, *balance, *delta, *allowance) is bigint (have = the offenders)'
);
select ok(
  (select count(*) from information_schema.columns c
     join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = 'public' and t.table_type = 'BASE TABLE'
      and c.column_name ~ '(^tokens|balance|delta|balance_after|allowance)$') >= 5,
  'The amount guards see the billing columns (balance, delta, balance_after, tokens, monthly_token_allowance)'
);

select * from finish();
rollback;
