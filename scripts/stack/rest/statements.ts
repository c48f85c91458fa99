// The statements of a request, each one round trip (PostgREST's Statements.hs and Query.hs):
//   setup  `select set_config(…)`: search_path, the role's own settings, role, request.jwt.claims,
//          request.method/path/headers/cookies, a function's hoisted settings
//   main   WITH pgrst_source AS (the read, write or call) SELECT total, page total, body, response GUCs
//   plan   EXPLAIN of the count query, for Prefer: count=planned|estimated
import type { Payload } from "./request.ts";
import type { ReadNode, WriteColumn } from "./plan.ts";
import type { Routine, RoutineParam, Table } from "./schema-cache.ts";
import {
  countQuery,
  embedNullInRead,
  ident,
  levelQuery,
  logicSql,
  qualified,
  SqlBuilder,
} from "./query-builder.ts";
import type { PlannedLogic } from "./plan.ts";

export type Statement = { text: string; params: unknown[] };

// ------------------------------------------------------------------------------------------- setup
export type Locals = {
  searchPath: string[];
  roleSettings: [string, string][];
  role: string;
  claims: Record<string, unknown>;
  method: string;
  path: string;
  headers: Record<string, string>;
  cookies: Record<string, string>;
  timezone: string | null;
  functionSettings: [string, string][];
};

export function setupStatement(l: Locals): Statement {
  const b = new SqlBuilder();
  const set = (name: string, value: string) =>
    `set_config(${b.param(name, "text")}, ${b.param(value, "text")}, true)`;
  const calls = [
    set("search_path", l.searchPath.map(ident).join(", ")),
    // The role's own settings come before the role (so GRANT SET ON PARAMETER … TO authenticator works).
    ...l.roleSettings.map(([k, v]) => set(k, v)),
    set("role", l.role),
    set("request.jwt.claims", JSON.stringify(l.claims)),
    set("request.method", l.method),
    set("request.path", l.path),
    set("request.headers", JSON.stringify(l.headers)),
    set("request.cookies", JSON.stringify(l.cookies)),
    ...(l.timezone ? [set("timezone", l.timezone)] : []),
    ...l.functionSettings.map(([k, v]) => set(k, v)),
  ];
  return { text: `select ${calls.join(", ")}`, params: b.params };
}

// -------------------------------------------------------------------------------------------- body
/** How the body is made from the rows (PostgREST's media handlers). */
export type BodyHandler = "json" | "json-stripped" | "single" | "single-stripped" | "csv" | "none";

function bodySql(b: SqlBuilder, handler: BodyHandler, csvHeader: string): string {
  const row = `_postgrest_t.${ident("pgrst_row")}`;
  switch (handler) {
    case "json":
      return `coalesce(json_agg(${row}), '[]')::text`;
    case "json-stripped":
      return `coalesce(json_strip_nulls(json_agg(${row})), '[]')::text`;
    case "single":
      return `coalesce(json_agg(${row})->0, 'null')::text`;
    case "single-stripped":
      return `coalesce(json_strip_nulls(json_agg(${row})->0), 'null')::text`;
    case "csv": {
      const rec = `_postgrest_t.${ident("pgrst_csv")}`;
      return `(CASE WHEN pg_catalog.count(*) = 0 THEN '' ELSE ${
        b.param(csvHeader, "text")
      } END) || E'\\n' || ` +
        `coalesce(string_agg(substr(${rec}, 2, length(${rec}) - 2), E'\\n'), '')`;
    }
    case "none":
      return "''";
  }
}

const csvHeaderOf = (node: ReadNode) =>
  node.entries.flatMap((e) => e.kind === "spread" ? spreadHeader(e.child) : [e.key]).join(",");
const spreadHeader = (node: ReadNode): string[] =>
  node.entries.flatMap((e) => e.kind === "spread" ? spreadHeader(e.child) : [e.key]);

const RESPONSE_GUCS = "nullif(current_setting('response.headers', true), '') AS response_headers, " +
  "nullif(current_setting('response.status', true), '') AS response_status";

/** How the total is counted: exact (a count CTE), limited for `estimated`, or not at all. */
export type CountMode = { kind: "none" } | { kind: "exact" } | { kind: "limited"; limit: number };

function countCte(count: CountMode, countSql: string): { cte: string; total: string } {
  if (count.kind === "none") return { cte: "", total: "null::bigint" };
  const limit = count.kind === "limited" ? ` LIMIT ${count.limit}` : "";
  return {
    cte: `, pgrst_source_count AS (${countSql}${limit})`,
    total: "(SELECT pg_catalog.count(*) FROM pgrst_source_count)",
  };
}

// -------------------------------------------------------------------------------------------- read
export function readStatement(
  table: Table,
  root: ReadNode,
  handler: BodyHandler,
  count: CountMode,
): Statement {
  const b = new SqlBuilder();
  const from = `${qualified(table)} AS ${ident(root.ref)}`;
  const source = levelQuery(b, root, { from, conds: [], shape: "row", csv: handler === "csv" });
  const { cte, total } = countCte(count, count.kind === "none" ? "" : countQuery(b, root, from, []));
  const text = `WITH pgrst_source AS (${source})${cte} SELECT ${total} AS total_result_set, ` +
    `pg_catalog.count(*)::bigint AS page_total, ${
      bodySql(b, handler, csvHeaderOf(root))
    } AS body, ${RESPONSE_GUCS} ` +
    `FROM (SELECT * FROM pgrst_source) _postgrest_t`;
  return { text, params: b.params };
}

/** EXPLAIN of what a read counts: the planner's row estimate for Prefer: count=planned|estimated. */
export function readPlanStatement(table: Table, root: ReadNode): Statement {
  const b = new SqlBuilder();
  const from = `${qualified(table)} AS ${ident(root.ref)}`;
  return { text: `EXPLAIN (FORMAT JSON) ${countQuery(b, root, from, [])}`, params: b.params };
}

// ------------------------------------------------------------------------------------------ writes
/** FROM the JSON body as typed rows (PostgREST's fromJsonBodyF), defaults filled in for missing=default. */
function fromBody(
  b: SqlBuilder,
  payload: Payload & { kind: "json" },
  cols: { name: string; type: string; default?: string | null }[],
  opts: { applyDefaults: boolean; limitOne: boolean },
): string {
  const { applyDefaults } = opts;
  const isArray = payload.isArray;
  const json = applyDefaults ? "jsonb" : "json";
  let from = `FROM (SELECT ${b.param(payload.raw, json)} AS json_data) pgrst_payload, `;
  let source = "pgrst_payload.json_data";
  if (applyDefaults) {
    const defs = cols.filter((c) => c.default !== null && c.default !== undefined)
      .map((c) => `${b.param(c.name, "text")}, ${c.default}`);
    const defsObj = `jsonb_build_object(${defs.join(", ")})`;
    from += isArray
      ? `LATERAL (SELECT jsonb_agg(${defsObj} || elem) AS val FROM jsonb_array_elements(pgrst_payload.json_data) elem) pgrst_json_defs, `
      : `LATERAL (SELECT ${defsObj} || pgrst_payload.json_data AS val) pgrst_json_defs, `;
    source = "pgrst_json_defs.val";
  }
  const names = cols.map((c) => ident(c.name)).join(", ");
  if (cols.length === 0) {
    from += isArray
      ? `LATERAL (SELECT FROM ${json}_array_elements(${source}) _) pgrst_body `
      : `LATERAL (SELECT FROM (values(1)) _) pgrst_body `;
  } else {
    const fn = `${json}_to_record${isArray ? "set" : ""}`;
    const typed = cols.map((c) => `${ident(c.name)} ${c.type}`).join(", ");
    from += `LATERAL (SELECT ${names} FROM ${fn}(${source}) AS _(${typed})${
      opts.limitOne ? " LIMIT 1" : ""
    }) pgrst_body `;
  }
  return from;
}

export type Returning = string[] | "*" | null;

function returningSql(ref: string, returning: Returning): string {
  if (returning === null) return "RETURNING 1";
  if (returning === "*") return `RETURNING ${ident(ref)}.*`;
  return `RETURNING ${returning.map((c) => `${ident(ref)}.${ident(c)}`).join(", ")}`;
}

const INSERTED_PLUS =
  "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) + 1)::text, true) <> '0'";
const INSERTED_MINUS =
  "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0) - 1)::text, true) <> '-1'";

export type InsertSpec = {
  table: Table;
  columns: WriteColumn[];
  payload: Payload & { kind: "json" };
  applyDefaults: boolean;
  onConflict: { resolution: "merge-duplicates" | "ignore-duplicates"; columns: string[] } | null;
  returning: Returning;
  /** PUT: the row written must be the one the URL names (its primary key filters, on the body). */
  putConditions?: PlannedLogic[];
};

function insertSql(b: SqlBuilder, s: InsertSpec): string {
  const cols = s.columns.map((c) => ({ name: c.name, type: c.dataType, default: c.default }));
  const names = s.columns.map((c) => ident(c.name));
  const merge = s.onConflict?.resolution === "merge-duplicates";
  let sql = `INSERT INTO ${qualified(s.table)}${names.length ? `(${names.join(", ")})` : ""} ` +
    `SELECT ${s.columns.map((c) => `pgrst_body.${ident(c.name)}`).join(", ")} ` +
    fromBody(b, s.payload, cols, { applyDefaults: s.applyDefaults, limitOne: false });
  if (s.putConditions?.length) {
    const conds = s.putConditions.map((w) => logicSql(b, "pgrst_body", w, embedNullInRead));
    sql += `WHERE ${INSERTED_PLUS} AND ${conds.join(" AND ")} `;
  } else if (s.onConflict && merge) sql += `WHERE ${INSERTED_PLUS} `;
  if (s.onConflict && s.onConflict.columns.length) {
    sql += `ON CONFLICT(${s.onConflict.columns.map(ident).join(", ")}) `;
    if (!merge || names.length === 0) sql += "DO NOTHING ";
    else {
      sql += `DO UPDATE SET ${names.map((n) => `${n} = EXCLUDED.${n}`).join(", ")} WHERE ${INSERTED_MINUS} `;
    }
  }
  return sql + returningSql(s.table.name, s.returning);
}

export type UpdateSpec = {
  table: Table;
  columns: WriteColumn[];
  payload: Payload & { kind: "json" };
  applyDefaults: boolean;
  where: PlannedLogic[];
  returning: Returning;
};

function whereSql(b: SqlBuilder, ref: string, where: PlannedLogic[]): string {
  return where.length ? ` WHERE ${where.map((w) => logicSql(b, ref, w, embedNullInRead)).join(" AND ")}` : "";
}

function updateSql(b: SqlBuilder, s: UpdateSpec): string {
  const ref = s.table.name;
  if (s.columns.length === 0) {
    const cols = s.returning === null
      ? "NULL"
      : s.returning === "*"
      ? `${ident(ref)}.*`
      : s.returning.map((c) => `${ident(ref)}.${ident(c)}`).join(", ");
    return `SELECT ${cols} FROM ${qualified(s.table)} WHERE false`;
  }
  const cols = s.columns.map((c) => ({ name: c.name, type: c.dataType, default: c.default }));
  return `UPDATE ${qualified(s.table)} SET ${
    s.columns.map((c) => `${ident(c.name)} = pgrst_body.${ident(c.name)}`).join(", ")
  } ` +
    fromBody(b, s.payload, cols, { applyDefaults: s.applyDefaults, limitOne: false }) +
    whereSql(b, ref, s.where) + " " + returningSql(ref, s.returning);
}

export type DeleteSpec = { table: Table; where: PlannedLogic[]; returning: Returning };

function deleteSql(b: SqlBuilder, s: DeleteSpec): string {
  return `DELETE FROM ${qualified(s.table)}${whereSql(b, s.table.name, s.where)} ${
    returningSql(s.table.name, s.returning)
  }`;
}

export type WriteSpec =
  | ({ kind: "insert" } & InsertSpec)
  | ({ kind: "update" } & UpdateSpec)
  | ({ kind: "delete" } & DeleteSpec);

/** The write, then the read of what it returned (or just the count, for return=minimal). */
export function writeStatement(
  spec: WriteSpec,
  root: ReadNode,
  handler: BodyHandler,
  opts: { location: string[] | null; countInserted: boolean },
): Statement {
  const b = new SqlBuilder();
  const dml = spec.kind === "insert"
    ? insertSql(b, spec)
    : spec.kind === "update"
    ? updateSql(b, spec)
    : deleteSql(b, spec);
  const read = handler === "none" ? "SELECT * FROM pgrst_source" : levelQuery(b, root, {
    from: `pgrst_source AS ${ident(root.ref)}`,
    conds: [],
    shape: "row",
    csv: handler === "csv",
  });
  const location = opts.location
    ? `CASE WHEN pg_catalog.count(*) = 1 THEN coalesce((WITH data AS (SELECT row_to_json(_) AS row FROM pgrst_source AS _ LIMIT 1) ` +
      `SELECT array_agg(json_data.key || '=' || coalesce('eq.' || json_data.value, 'is.null')) FROM data ` +
      `CROSS JOIN json_each_text(data.row) AS json_data WHERE json_data.key = ANY(${
        b.param(opts.location, "text[]")
      })), ` +
      `array[]::text[]) ELSE array[]::text[] END`
    : "array[]::text[]";
  const inserted = opts.countInserted
    ? "nullif(current_setting('pgrst.inserted', true), '')::int"
    : "null::int";
  const text = `WITH pgrst_source AS (${dml}) SELECT null::bigint AS total_result_set, ` +
    `pg_catalog.count(*)::bigint AS page_total, ${location} AS header, ${
      bodySql(b, handler, csvHeaderOf(root))
    } AS body, ` +
    `${RESPONSE_GUCS}, ${inserted} AS response_inserted FROM (${read}) _postgrest_t`;
  return { text, params: b.params };
}

// ------------------------------------------------------------------------------------------- calls
export type CallArgs =
  | { kind: "none" }
  | { kind: "direct"; values: Map<string, string[]> }
  | { kind: "json"; payload: Payload & { kind: "json" }; params: RoutineParam[] }
  | { kind: "single"; raw: string; type: string };

export const isScalar = (r: Routine) => !r.returnsComposite;

function callSql(b: SqlBuilder, r: Routine, args: CallArgs): string {
  const fn = `${ident(r.schema)}.${ident(r.name)}`;
  const scalar = isScalar(r);
  const wrap = (argSql: string) =>
    scalar ? `(SELECT ${fn}(${argSql}) AS pgrst_scalar) pgrst_call` : `${fn}(${argSql}) pgrst_call`;
  const columns = scalar ? "pgrst_call.pgrst_scalar" : "pgrst_call.*";
  switch (args.kind) {
    case "none":
      return `SELECT ${columns} FROM ${wrap("")}`;
    case "single":
      return `SELECT ${columns} FROM ${wrap(b.param(args.raw, args.type))}`;
    case "direct": {
      const list = r.params.filter((p) => args.values.has(p.name)).map((p) => {
        const vals = args.values.get(p.name)!;
        const value = p.variadic
          ? b.param(arrayLiteralOf(vals), p.type)
          : b.param(vals[vals.length - 1], p.type);
        return `${p.variadic ? "VARIADIC " : ""}${ident(p.name)} := ${value}`;
      });
      return `SELECT ${columns} FROM ${wrap(list.join(", "))}`;
    }
    case "json": {
      const body = fromBody(b, args.payload, args.params.map((p) => ({ name: p.name, type: p.type })), {
        applyDefaults: false,
        limitOne: true,
      });
      const list = args.params.map((p) =>
        `${p.variadic ? "VARIADIC " : ""}${ident(p.name)} := pgrst_body.${ident(p.name)}`
      );
      const lateral = scalar
        ? `LATERAL (SELECT ${fn}(${list.join(", ")}) AS pgrst_scalar) pgrst_call`
        : `LATERAL ${fn}(${list.join(", ")}) pgrst_call`;
      return `SELECT ${columns} ${body}, ${lateral}`;
    }
  }
}

function arrayLiteralOf(values: string[]): string {
  const esc = (v: string) => `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return `{${values.map(esc).join(",")}}`;
}

/** The call, then the read over its result (filters, order, limit, embeds), as one statement. */
export function callStatement(
  r: Routine,
  args: CallArgs,
  root: ReadNode,
  handler: BodyHandler,
  count: CountMode,
): Statement {
  const b = new SqlBuilder();
  const call = callSql(b, r, args);
  const from = `pgrst_source AS ${ident(root.ref)}`;
  let read: string;
  if (isScalar(r)) {
    const value = r.returnsVoid
      ? `${ident(root.ref)}.pgrst_scalar IS NULL`
      : `${ident(root.ref)}.pgrst_scalar`;
    read =
      `SELECT to_json(${value}) AS ${ident("pgrst_row")}${
        handler === "csv" ? `, ROW(${ident(root.ref)}.pgrst_scalar)::text AS ${ident("pgrst_csv")}` : ""
      } FROM ${from}` + (root.range.limit !== null || root.range.offset > 0
        ? ` LIMIT ${root.range.limit === null ? "ALL" : b.param(String(root.range.limit), "bigint")} OFFSET ${
          b.param(String(root.range.offset), "bigint")
        }`
        : "");
  } else {
    read = levelQuery(b, root, { from, conds: [], shape: "row", csv: handler === "csv" });
  }
  const { cte, total } = countCte(count, count.kind === "none" ? "" : countQuery(b, root, from, []));
  const pageTotal = r.returnsSet ? "pg_catalog.count(*)::bigint" : "1::bigint";
  const text =
    `WITH pgrst_source AS (${call})${cte} SELECT ${total} AS total_result_set, ${pageTotal} AS page_total, ` +
    `${bodySql(b, handler, csvHeaderOf(root))} AS body, ${RESPONSE_GUCS} FROM (${read}) _postgrest_t`;
  return { text, params: b.params };
}

/** EXPLAIN of what a call's read counts. */
export function callPlanStatement(r: Routine, args: CallArgs, root: ReadNode): Statement {
  const b = new SqlBuilder();
  const call = callSql(b, r, args);
  const count = countQuery(b, root, `pgrst_source AS ${ident(root.ref)}`, []);
  return { text: `EXPLAIN (FORMAT JSON) WITH pgrst_source AS (${call}) ${count}`, params: b.params };
}
