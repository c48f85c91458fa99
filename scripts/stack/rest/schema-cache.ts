// The schema cache: what PostgREST knows about the exposed schemas, built from the catalog in one read-only
// transaction (catalog.ts) and replaced whole on every reload. Requests never query the catalog.
//   tables and views, their columns, primary keys; relationships for embedding (many-to-one, one-to-one and
//   their inverses from foreign keys, many-to-many through junction tables); functions with their parameters,
//   return shape, volatility and settings; the settings of the roles requests may run as; cast target types.
import type postgres from "npm:postgres@3.4.9";
import {
  FOREIGN_KEYS_SQL,
  FUNCTIONS_SQL,
  ROLE_SETTINGS_SQL,
  TABLES_SQL,
  TIMEZONES_SQL,
  TYPES_SQL,
} from "./catalog.ts";

export type Column = {
  name: string;
  /** The type PostgREST reads values as (a domain over a pg_catalog type: the base type), schema-qualified. */
  dataType: string;
  nominalType: string;
  /** The base type's name (json, jsonb, tsvector, …). */
  baseType: string;
  nullable: boolean;
  /** The default expression, schema-qualified (null: none). */
  default: string | null;
  position: number;
};

export type Table = {
  schema: string;
  name: string;
  isView: boolean;
  insertable: boolean;
  updatable: boolean;
  deletable: boolean;
  pk: string[];
  columns: Map<string, Column>;
};

export type QualifiedName = { schema: string; name: string };

export type Cardinality = "many-to-one" | "one-to-one" | "one-to-many" | "many-to-many";

export type Junction = {
  table: QualifiedName;
  /** The junction's key to the origin: [origin column, junction column] pairs. */
  sourceConstraint: string;
  sourceColumns: [string, string][];
  /** The junction's key to the target: [target column, junction column] pairs. */
  targetConstraint: string;
  targetColumns: [string, string][];
};

export type Relationship = {
  table: QualifiedName;
  foreignTable: QualifiedName;
  isSelf: boolean;
  cardinality: Cardinality;
  constraint: string;
  /** [column of `table`, column of `foreignTable`] pairs (empty for many-to-many). */
  columns: [string, string][];
  junction?: Junction;
};

export type RoutineParam = { name: string; type: string; required: boolean; variadic: boolean };

export type Routine = {
  schema: string;
  name: string;
  params: RoutineParam[];
  /** The return type as SQL (setof excluded), e.g. `integer`, `public.items`, `record`. */
  returnType: string;
  returnsSet: boolean;
  returnsComposite: boolean;
  returnsVoid: boolean;
  /** A table or view's row type: the relation the results can embed from. */
  returnTable: QualifiedName | null;
  /** The result's columns for composite returns (RETURNS TABLE, OUT parameters, a composite type). */
  returnColumns: { name: string; type: string }[];
  volatility: "immutable" | "stable" | "volatile";
  isolationLevel: string | null;
  settings: [string, string][];
};

export type RoleSettings = { isolationLevel: string | null; settings: [string, string][] };

export type SchemaCache = {
  loadedAt: Date;
  tables: Map<string, Table>;
  /** Relationships by origin table key (`schema.name`). */
  relationships: Map<string, Relationship[]>;
  /** Functions (overloads) by `schema.name`. */
  routines: Map<string, Routine[]>;
  roleSettings: Map<string, RoleSettings>;
  /** Cast targets by lower-cased name (type name or SQL name): the type's schema and pg_type name. */
  types: Map<string, QualifiedName>;
  /** Time zone names PostgreSQL knows (Prefer: timezone=). */
  timezones: Set<string>;
};

export const key = (schema: string, name: string) => `${schema}.${name}`;

type TableRow = {
  schema: string;
  name: string;
  is_view: boolean;
  insertable: boolean;
  updatable: boolean;
  deletable: boolean;
  pk: string[];
  columns: Column[];
};
type ForeignKeyRow = {
  table_schema: string;
  table_name: string;
  foreign_schema: string;
  foreign_name: string;
  is_self: boolean;
  constraint_name: string;
  columns: [string, string][];
  one_to_one: boolean;
};
type RoutineRow = {
  schema: string;
  name: string;
  params: { name: string; type: string; variadic: boolean; position: number }[];
  required_count: number;
  return_schema: string;
  return_name: string;
  return_type: string;
  returns_set: boolean;
  returns_composite: boolean;
  returns_void: boolean;
  returns_table_type: boolean;
  return_columns: { name: string; type: string }[] | null;
  volatility: string;
  isolation_level: string | null;
  settings: [string, string][];
};
type RoleRow = { role: string; isolation_level: string | null; settings: [string, string][] };
type TypeRow = { name: string; sql_name: string; schema: string };

const VOLATILITY = { i: "immutable", s: "stable", v: "volatile" } as const;

// SQL spellings of built-in types that are neither a pg_type name nor format_type's output.
const TYPE_ALIASES: Record<string, string> = {
  int: "int4",
  integer: "int4",
  smallint: "int2",
  bigint: "int8",
  real: "float4",
  float: "float8",
  "double precision": "float8",
  decimal: "numeric",
  dec: "numeric",
  boolean: "bool",
  varchar: "varchar",
  "character varying": "varchar",
  char: "bpchar",
  character: "bpchar",
};

function tablesFrom(rows: TableRow[]): Map<string, Table> {
  const tables = new Map<string, Table>();
  for (const r of rows) {
    tables.set(key(r.schema, r.name), {
      schema: r.schema,
      name: r.name,
      isView: r.is_view,
      insertable: r.insertable,
      updatable: r.updatable,
      deletable: r.deletable,
      pk: r.pk,
      columns: new Map(r.columns.map((c) => [c.name, c])),
    });
  }
  return tables;
}

const swap = (pairs: [string, string][]): [string, string][] => pairs.map(([a, b]) => [b, a]);

/** Foreign keys as relationships both ways, plus many-to-many through junctions (FK columns within its PK). */
function relationshipsFrom(rows: ForeignKeyRow[], tables: Map<string, Table>): Map<string, Relationship[]> {
  const direct: Relationship[] = rows.map((r) => ({
    table: { schema: r.table_schema, name: r.table_name },
    foreignTable: { schema: r.foreign_schema, name: r.foreign_name },
    isSelf: r.is_self,
    cardinality: r.one_to_one ? "one-to-one" : "many-to-one",
    constraint: r.constraint_name,
    columns: r.columns,
  }));
  const inverse: Relationship[] = direct.map((r) => ({
    table: r.foreignTable,
    foreignTable: r.table,
    isSelf: r.isSelf,
    cardinality: r.cardinality === "one-to-one" ? "one-to-one" : "one-to-many",
    constraint: r.constraint,
    columns: swap(r.columns),
  }));
  const manyToMany: Relationship[] = [];
  for (const a of direct) {
    if (a.cardinality !== "many-to-one") continue;
    for (const b of direct) {
      if (b.cardinality !== "many-to-one" || a.constraint === b.constraint) continue;
      if (key(a.table.schema, a.table.name) !== key(b.table.schema, b.table.name)) continue;
      const junction = tables.get(key(a.table.schema, a.table.name));
      const pk = new Set(junction?.pk ?? []);
      const cols = [...a.columns.map(([c]) => c), ...b.columns.map(([c]) => c)];
      if (!cols.every((c) => pk.has(c))) continue;
      manyToMany.push({
        table: a.foreignTable,
        foreignTable: b.foreignTable,
        isSelf:
          key(a.foreignTable.schema, a.foreignTable.name) === key(b.foreignTable.schema, b.foreignTable.name),
        cardinality: "many-to-many",
        constraint: a.constraint,
        columns: [],
        junction: {
          table: a.table,
          sourceConstraint: a.constraint,
          sourceColumns: swap(a.columns),
          targetConstraint: b.constraint,
          targetColumns: swap(b.columns),
        },
      });
    }
  }
  const byOrigin = new Map<string, Relationship[]>();
  for (const r of [...direct, ...inverse, ...manyToMany]) {
    const k = key(r.table.schema, r.table.name);
    byOrigin.set(k, [...(byOrigin.get(k) ?? []), r]);
  }
  return byOrigin;
}

function routinesFrom(rows: RoutineRow[]): Map<string, Routine[]> {
  const routines = new Map<string, Routine[]>();
  for (const r of rows) {
    const params = r.params.map((p, i) => ({
      name: p.name,
      type: p.type,
      variadic: p.variadic,
      required: i < r.required_count,
    }));
    const routine: Routine = {
      schema: r.schema,
      name: r.name,
      params,
      returnType: r.return_type,
      returnsSet: r.returns_set,
      returnsComposite: r.returns_composite,
      returnsVoid: r.returns_void,
      returnTable: r.returns_table_type ? { schema: r.return_schema, name: r.return_name } : null,
      returnColumns: r.return_columns ?? [],
      volatility: VOLATILITY[r.volatility as keyof typeof VOLATILITY] ?? "volatile",
      isolationLevel: r.isolation_level,
      settings: r.settings,
    };
    const k = key(r.schema, r.name);
    routines.set(k, [...(routines.get(k) ?? []), routine]);
  }
  // Overloads with the fewest parameters first, as PostgREST orders them.
  const signature = (r: Routine) => r.params.map((p) => `${p.name} ${p.type}`).join(", ");
  for (const list of routines.values()) {
    list.sort((a, b) => a.params.length - b.params.length || signature(a).localeCompare(signature(b)));
  }
  return routines;
}

function typesFrom(rows: TypeRow[]): Map<string, QualifiedName> {
  const types = new Map<string, QualifiedName>();
  const byName = new Map<string, QualifiedName>();
  for (const r of rows) {
    const q = { schema: r.schema, name: r.name };
    // pg_catalog wins over a same-named type elsewhere, as it comes first on every search path.
    if (!byName.has(r.name) || r.schema === "pg_catalog") byName.set(r.name, q);
    for (const n of [r.name.toLowerCase(), r.sql_name.toLowerCase()]) {
      if (!types.has(n) || r.schema === "pg_catalog") types.set(n, q);
    }
  }
  for (const [alias, name] of Object.entries(TYPE_ALIASES)) {
    const q = byName.get(name);
    if (q) types.set(alias, q);
  }
  return types;
}

/** Builds the cache from the catalog in one read-only transaction (pipelined: one round trip). */
export async function loadSchemaCache(
  sql: postgres.Sql,
  opts: { schemas: string[]; extraSearchPath: string[]; hoistedTxSettings: string[] },
): Promise<SchemaCache> {
  const typeSchemas = ["pg_catalog", ...opts.schemas, ...opts.extraSearchPath];
  const [, tableRows, fkRows, routineRows, roleRows, typeRows, zoneRows] = await sql.begin(
    "read only",
    (tx) => [
      tx.unsafe("set local search_path = ''"),
      tx.unsafe<TableRow[]>(TABLES_SQL, [opts.schemas]),
      tx.unsafe<ForeignKeyRow[]>(FOREIGN_KEYS_SQL, [opts.schemas]),
      tx.unsafe<RoutineRow[]>(FUNCTIONS_SQL, [opts.schemas, opts.hoistedTxSettings]),
      tx.unsafe<RoleRow[]>(ROLE_SETTINGS_SQL),
      tx.unsafe<TypeRow[]>(TYPES_SQL, [typeSchemas]),
      tx.unsafe<{ name: string }[]>(TIMEZONES_SQL),
    ],
  );
  const tables = tablesFrom(tableRows as unknown as TableRow[]);
  return {
    loadedAt: new Date(),
    tables,
    relationships: relationshipsFrom(fkRows as unknown as ForeignKeyRow[], tables),
    routines: routinesFrom(routineRows as unknown as RoutineRow[]),
    roleSettings: new Map(
      (roleRows as unknown as RoleRow[]).map((r) => [r.role, {
        isolationLevel: r.isolation_level,
        settings: r.settings,
      }]),
    ),
    types: typesFrom(typeRows as unknown as TypeRow[]),
    timezones: new Set((zoneRows as unknown as { name: string }[]).map((r) => r.name)),
  };
}
