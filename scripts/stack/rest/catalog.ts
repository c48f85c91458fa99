// The catalog queries the schema cache is built from (modelled on PostgREST 13's SchemaCache.hs), run once per
// load with `search_path = ''` so every default and type name comes out schema-qualified. $1 is always the
// exposed schemas (text[]); a schema that does not exist is simply empty.

const BASE_TYPES = `
  base_types as (
    with recursive recurse as (
      select oid, typbasetype, typnamespace as base_namespace, coalesce(nullif(typbasetype, 0), oid) as base_type
        from pg_catalog.pg_type
      union
      select t.oid, b.typbasetype, b.typnamespace, coalesce(nullif(b.typbasetype, 0), b.oid)
        from recurse t join pg_catalog.pg_type b on t.typbasetype = b.oid
    )
    select oid, base_namespace, base_type from recurse where typbasetype = 0
  )`;

/** Tables, views, their columns (type, default, nullability) and primary keys. */
export const TABLES_SQL = `
with ${BASE_TYPES},
columns as (
  select c.oid as relid, a.attnum, json_build_object(
    'name', a.attname::text,
    'dataType', case
      when t.typtype = 'd' then case
        when bt.base_namespace = 'pg_catalog'::regnamespace then pg_catalog.format_type(bt.base_type, null)
        else pg_catalog.format_type(a.atttypid, a.atttypmod) end
      when t.typnamespace = 'pg_catalog'::regnamespace then pg_catalog.format_type(a.atttypid, null)
      else pg_catalog.format_type(a.atttypid, a.atttypmod) end,
    'nominalType', pg_catalog.format_type(a.atttypid, a.atttypmod),
    'baseType', (select b.typname::text from pg_catalog.pg_type b where b.oid = bt.base_type),
    'nullable', not (a.attnotnull or (t.typtype = 'd' and t.typnotnull)),
    'default', case
      when t.typbasetype <> 0 and ad.adbin is null then pg_catalog.pg_get_expr(t.typdefaultbin, 0)
      when a.attidentity = 'd' then pg_catalog.format('nextval(%L)', seq.objid::regclass)
      when a.attgenerated = 's' then null
      else pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)::text end,
    'position', a.attnum::int
  ) as col
  from pg_catalog.pg_attribute a
  join pg_catalog.pg_class c on c.oid = a.attrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  join pg_catalog.pg_type t on t.oid = a.atttypid
  left join base_types bt on bt.oid = t.oid
  left join pg_catalog.pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
  left join pg_catalog.pg_depend seq
    on seq.refobjid = a.attrelid and seq.refobjsubid = a.attnum and seq.deptype = 'i'
       and seq.classid = 'pg_catalog.pg_class'::regclass
  where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'v', 'f', 'm', 'p')
    and n.nspname = any($1::text[])
),
pks as (
  select con.conrelid as relid, json_agg(a.attname::text order by a.attname) as cols
    from pg_catalog.pg_constraint con
    join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = any(con.conkey)
   where con.contype = 'p'
   group by con.conrelid
)
select n.nspname::text as schema, c.relname::text as name, c.relkind in ('v', 'm') as is_view,
       (c.relkind in ('r', 'p') or (c.relkind in ('v', 'f')
         and (pg_catalog.pg_relation_is_updatable(c.oid::regclass, true) & 8) = 8)) as insertable,
       (c.relkind in ('r', 'p') or (c.relkind in ('v', 'f')
         and (pg_catalog.pg_relation_is_updatable(c.oid::regclass, true) & 4) = 4)) as updatable,
       (c.relkind in ('r', 'p') or (c.relkind in ('v', 'f')
         and (pg_catalog.pg_relation_is_updatable(c.oid::regclass, true) & 16) = 16)) as deletable,
       coalesce(pks.cols, '[]') as pk,
       coalesce((select json_agg(col.col order by col.attnum) from columns col where col.relid = c.oid), '[]')
         as columns
  from pg_catalog.pg_class c
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  left join pks on pks.relid = c.oid
 where c.relkind in ('v', 'r', 'm', 'f', 'p') and not c.relispartition and n.nspname = any($1::text[])
 order by 1, 2`;

/**
 * Foreign keys between exposed tables (many-to-one, or one-to-one when the referencing columns are also a
 * primary key or unique), as [column, referenced column] pairs in key order.
 */
export const FOREIGN_KEYS_SQL = `
with uniques as (
  select conrelid, array_agg(key order by key) as cols
    from pg_catalog.pg_constraint, lateral unnest(conkey) as _(key)
   where contype in ('p', 'u')
   group by oid, conrelid
)
select ns1.nspname::text as table_schema, tab.relname::text as table_name,
       ns2.nspname::text as foreign_schema, other.relname::text as foreign_name,
       con.conrelid = con.confrelid as is_self, con.conname::text as constraint_name,
       cols.pairs as columns,
       (cols.nums in (select u.cols from uniques u where u.conrelid = con.conrelid)) as one_to_one
  from pg_catalog.pg_constraint con
  join lateral (
    select json_agg(json_build_array(ca.attname::text, ra.attname::text) order by ord) as pairs,
           array_agg(ca.attnum order by ca.attnum) as nums
      from unnest(con.conkey, con.confkey) with ordinality as _(col, ref, ord)
      join pg_catalog.pg_attribute ca on ca.attrelid = con.conrelid and ca.attnum = col
      join pg_catalog.pg_attribute ra on ra.attrelid = con.confrelid and ra.attnum = ref
  ) cols on true
  join pg_catalog.pg_class tab on tab.oid = con.conrelid
  join pg_catalog.pg_namespace ns1 on ns1.oid = tab.relnamespace
  join pg_catalog.pg_class other on other.oid = con.confrelid
  join pg_catalog.pg_namespace ns2 on ns2.oid = other.relnamespace
 where con.contype = 'f' and con.conparentid = 0
   and ns1.nspname = any($1::text[]) and ns2.nspname = any($1::text[])
 order by con.conrelid, con.conname`;

/**
 * Functions in the exposed schemas: input parameters (name, type, required, variadic), what they return
 * (set or single; a table/composite type with its columns, or a scalar), volatility, and the settings
 * PostgREST applies for them ($2: the hoisted settings' names).
 */
export const FUNCTIONS_SQL = `
with ${BASE_TYPES},
args as (
  select p.oid,
         coalesce(p.proallargtypes, p.proargtypes::oid[]) as types,
         coalesce(p.proargmodes, array_fill('i'::"char", array[cardinality(p.proargtypes::oid[])])) as modes,
         p.proargnames as names
    from pg_catalog.pg_proc p
),
inputs as (
  select a.oid,
         json_agg(json_build_object(
           'name', coalesce(x.name, ''),
           'type', case x.type
             when 'bit'::regtype then 'bit varying'
             when 'bit[]'::regtype then 'bit varying[]'
             when 'character'::regtype then 'character varying'
             when 'character[]'::regtype then 'character varying[]'
             else x.type::regtype::text end,
           'variadic', x.mode = 'v',
           'position', x.idx
         ) order by x.idx) as params,
         count(*) filter (where coalesce(x.name, '') = '') as unnamed,
         (array_agg(x.type order by x.idx))[1] as first_type
    from args a, lateral unnest(a.types, a.modes, a.names) with ordinality as x(type, mode, name, idx)
   where x.mode in ('i', 'b', 'v')
   group by a.oid
),
outputs as (
  select a.oid, json_agg(json_build_object('name', x.name, 'type', x.type::regtype::text) order by x.idx) as cols
    from args a, lateral unnest(a.types, a.modes, a.names) with ordinality as x(type, mode, name, idx)
   where x.mode in ('o', 'b', 't')
   group by a.oid
)
select pn.nspname::text as schema, p.proname::text as name,
       coalesce(i.params, '[]') as params,
       p.pronargs - p.pronargdefaults as required_count,
       tn.nspname::text as return_schema,
       coalesce(comp.relname, t.typname)::text as return_name,
       p.prorettype::regtype::text as return_type,
       p.proretset as returns_set,
       (t.typtype = 'c' or coalesce(p.proargmodes::text[] && '{t,b,o}', false)) as returns_composite,
       bt.oid <> bt.base_type as returns_composite_alias,
       p.prorettype = 'pg_catalog.void'::regtype as returns_void,
       comp.relkind is not null and comp.relkind <> 'c' as returns_table_type,
       coalesce(o.cols, case when t.typtype = 'c' then (
         select json_agg(json_build_object('name', att.attname::text,
                                           'type', pg_catalog.format_type(att.atttypid, att.atttypmod))
                         order by att.attnum)
           from pg_catalog.pg_attribute att
          where att.attrelid = t.typrelid and att.attnum > 0 and not att.attisdropped) end) as return_columns,
       p.provolatile::text as volatility,
       p.provariadic <> 0 as has_variadic,
       lower((regexp_split_to_array((regexp_split_to_array(iso.setting, '='))[2], ','))[1]) as isolation_level,
       coalesce((
         select json_agg(json_build_array(substr(s, 1, strpos(s, '=') - 1), substr(s, strpos(s, '=') + 1)))
           from unnest(p.proconfig) s
          where substr(s, 1, strpos(s, '=') - 1) = any($2::text[])
       ), '[]') as settings
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace pn on pn.oid = p.pronamespace
  left join inputs i on i.oid = p.oid
  left join outputs o on o.oid = p.oid
  join base_types bt on bt.oid = p.prorettype
  join pg_catalog.pg_type t on t.oid = bt.base_type
  join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
  left join pg_catalog.pg_class comp on comp.oid = t.typrelid
  left join lateral unnest(p.proconfig) iso(setting) on iso.setting like 'default_transaction_isolation%'
 where t.oid <> 'pg_catalog.trigger'::regtype
   and p.prokind = 'f'
   and pn.nspname = any($1::text[])
   -- callable: every input named, or a single unnamed one of a type a raw body can be (PostgREST's rule)
   and (coalesce(i.unnamed, 0) = 0 or (i.unnamed = 1 and
        i.first_type in ('pg_catalog.bytea'::regtype, 'pg_catalog.json'::regtype, 'pg_catalog.jsonb'::regtype,
                         'pg_catalog.text'::regtype, 'pg_catalog.xml'::regtype)))
 order by 1, 2`;

/**
 * The settings of the roles the authenticator can become (ALTER ROLE … SET), as PostgREST 12 reads them:
 * only settings a user may set, the isolation level apart.
 */
export const ROLE_SETTINGS_SQL = `
with role_setting as (
  select r.rolname, unnest(r.rolconfig) as setting
    from pg_catalog.pg_auth_members m
    join pg_catalog.pg_roles r on r.oid = m.roleid
   where m.member = current_user::regrole::oid
),
kv as (
  select rolname, substr(setting, 1, strpos(setting, '=') - 1) as key,
         lower(substr(setting, strpos(setting, '=') + 1)) as value
    from role_setting
)
select kv.rolname::text as role,
       max(kv.value) filter (where kv.key = 'default_transaction_isolation') as isolation_level,
       coalesce(json_agg(json_build_array(kv.key, kv.value)) filter (where kv.key <> 'default_transaction_isolation'),
                '[]') as settings
  from kv
  join pg_catalog.pg_settings ps
    on ps.name = kv.key and (ps.context = 'user' or has_parameter_privilege(current_user::regrole::oid, ps.name, 'set'))
 group by kv.rolname`;

/** Time zone names, for Prefer: timezone= (PostgREST accepts only a name PostgreSQL knows). */
export const TIMEZONES_SQL = `select name from pg_catalog.pg_timezone_names`;

/**
 * Type names a select may cast to (`col::text`): every base, domain, enum, range and composite type of
 * pg_catalog and the schemas on the search path, by type name and by SQL name (`integer`, `bigint`, …).
 */
export const TYPES_SQL = `
select t.typname::text as name, pg_catalog.format_type(t.oid, null) as sql_name, n.nspname::text as schema
  from pg_catalog.pg_type t
  join pg_catalog.pg_namespace n on n.oid = t.typnamespace
 where n.nspname = any($1::text[]) and t.typtype in ('b', 'c', 'd', 'e', 'r', 'm')
   and t.typname !~ '^_' and t.typname !~ '^pg_'`;
