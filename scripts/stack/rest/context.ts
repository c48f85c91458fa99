// What every action (read, write, call) gets: the request as read, who it runs as, the schema cache, the
// settings, the pool; and the helpers they share (the setup statement, the transaction options, the count).
import type { AuthResult } from "./auth.ts";
import type { RestConfig } from "./config.ts";
import type { Database, Row } from "./db.ts";
import { invalidPreferences, tableNotFound } from "./errors.ts";
import { closest } from "./fuzzy.ts";
import type { ApiRequest } from "./request.ts";
import { key, type SchemaCache, type Table } from "./schema-cache.ts";
import { type CountMode, setupStatement, type Statement } from "./statements.ts";

export type Context = {
  api: ApiRequest;
  auth: AuthResult;
  cache: SchemaCache;
  config: RestConfig;
  db: Database;
};

/** The table or view a request names, or PGRST205 with PostgREST's "Perhaps you meant" hint. */
export function findTable(ctx: Context, name: string): Table {
  const t = ctx.cache.tables.get(key(ctx.api.schema, name));
  if (t) return t;
  const names = [...ctx.cache.tables.values()].filter((x) => x.schema === ctx.api.schema).map((x) => x.name);
  throw tableNotFound(ctx.api.schema, name, closest(name, names));
}

/** PGRST122 for unknown preferences when the client asked for Prefer: handling=strict. */
export function checkStrictPreferences(ctx: Context): void {
  if (ctx.api.prefs.handling === "strict" && ctx.api.prefs.invalid.length) {
    throw invalidPreferences(ctx.api.prefs.invalid);
  }
}

/** The setup statement: search path, the role's settings, role, claims, request.* (PostgREST's setPgLocals). */
export function setupFor(ctx: Context, functionSettings: [string, string][] = []): Statement {
  const { api, auth, cache, config } = ctx;
  return setupStatement({
    searchPath: [api.schema, ...config.extraSearchPath],
    roleSettings: cache.roleSettings.get(auth.role)?.settings ?? [],
    role: auth.role,
    claims: auth.claims,
    method: api.method,
    path: api.path,
    headers: api.headers,
    cookies: api.cookies,
    timezone: api.prefs.timezone,
    functionSettings,
  });
}

export const roleIsolation = (ctx: Context) =>
  ctx.cache.roleSettings.get(ctx.auth.role)?.isolationLevel ?? null;

/** How Prefer: count is counted: exact in SQL; estimated exact up to max_rows, then the planner's guess. */
export function countMode(ctx: Context): CountMode {
  const { count } = ctx.api.prefs;
  if (count === "exact") return { kind: "exact" };
  if (count === "estimated") {
    return ctx.config.maxRows === null
      ? { kind: "exact" }
      : { kind: "limited", limit: ctx.config.maxRows + 1 };
  }
  return { kind: "none" };
}

export const needsPlan = (ctx: Context) =>
  ctx.api.prefs.count === "planned" || ctx.api.prefs.count === "estimated";

/** The Plan Rows of an EXPLAIN (FORMAT JSON) result. */
function planRows(rows: Row[] | null): number | null {
  const plan = rows?.[0]?.["QUERY PLAN"];
  const parsed = typeof plan === "string" ? JSON.parse(plan) : plan;
  const n = (parsed as { Plan?: { "Plan Rows"?: number } }[] | undefined)?.[0]?.Plan?.["Plan Rows"];
  return typeof n === "number" ? n : null;
}

/** The total for Content-Range, as PostgREST computes it for each Prefer: count. */
export function totalOf(ctx: Context, main: Row, plan: Row[] | null): number | null {
  const counted = main.total_result_set === null || main.total_result_set === undefined
    ? null
    : Number(main.total_result_set);
  const { count } = ctx.api.prefs;
  if (count === "planned") return planRows(plan);
  if (
    count === "estimated" && counted !== null && ctx.config.maxRows !== null && counted > ctx.config.maxRows
  ) {
    return Math.max(counted, planRows(plan) ?? 0);
  }
  return counted;
}
