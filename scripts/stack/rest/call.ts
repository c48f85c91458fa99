// POST /rpc/<fn> (named arguments in a JSON object, a single unnamed json/jsonb/text parameter, form fields) and
// GET/HEAD /rpc/<fn>?arg=… : find the function (overloads by argument names), call it in a transaction that is
// read-only unless the function is volatile and called with POST, and read its result like a table: filters,
// order, limit, select= and embedding on a function that returns rows of a table.
import {
  checkStrictPreferences,
  type Context,
  countMode,
  needsPlan,
  roleIsolation,
  setupFor,
  totalOf,
} from "./context.ts";
import type { Row } from "./db.ts";
import { errorResponse, maxAffectedRpcViolation, maxAffectedViolation, singularityError } from "./errors.ts";
import { planRead, type Relation, tableRelation } from "./plan.ts";
import { preferenceApplied } from "./request.ts";
import {
  contentProfile,
  negotiate,
  outOfRange,
  rangeStatus,
  toResponse,
  withGucOverrides,
} from "./response.ts";
import { type CallKind, findRoutine, isSingleUnnamed, takesSingleObject } from "./routines.ts";
import { key, type Routine } from "./schema-cache.ts";
import { type CallArgs, callPlanStatement, callStatement, isScalar } from "./statements.ts";

function callKind(ctx: Context): CallKind {
  const { api } = ctx;
  const isPost = api.method === "POST";
  const kind = api.contentType.kind;
  const contentType = kind === "json"
    ? "json"
    : kind === "text"
    ? "text"
    : kind === "xml"
    ? "xml"
    : kind === "octet"
    ? "octet"
    : "other";
  return { isPost, contentType, singleObject: isPost && api.prefs.paramsSingleObject };
}

/** The relation the call's rows are read as: the table it returns rows of, or its own result columns. */
function resultRelation(ctx: Context, r: Routine): Relation {
  const t = r.returnTable ? ctx.cache.tables.get(key(r.returnTable.schema, r.returnTable.name)) : undefined;
  if (t) return tableRelation(t);
  const columns = isScalar(r) ? [] : r.returnColumns;
  return {
    label: r.name,
    origin: { schema: r.schema, name: r.name },
    columns: new Map(columns.map((c) => [c.name, { name: c.name, dataType: c.type, baseType: c.type }])),
    columnOrder: columns.map((c) => c.name),
  };
}

function argsFor(ctx: Context, r: Routine): CallArgs {
  const { api } = ctx;
  if (api.method !== "POST" || api.payload?.kind === "json" && api.contentType.kind === "form") {
    const values = new Map<string, string[]>();
    const pairs = api.method === "POST" && api.payload?.kind === "json"
      ? Object.entries(JSON.parse(api.payload.raw) as Record<string, string>)
      : api.query.rpcArgs;
    for (const [k, v] of pairs) values.set(k, [...(values.get(k) ?? []), String(v)]);
    return values.size ? { kind: "direct", values } : { kind: "none" };
  }
  const payload = api.payload;
  if (isSingleUnnamed(r) || takesSingleObject(r, callKind(ctx))) {
    return { kind: "single", raw: payload?.raw ?? "", type: r.params[0].type };
  }
  if (payload?.kind !== "json") return { kind: "none" };
  const given = new Set(api.columns);
  const params = r.params.filter((p) => given.has(p.name));
  return params.length ? { kind: "json", payload, params } : { kind: "none" };
}

export async function call(ctx: Context, name: string, method: "GET" | "HEAD" | "POST"): Promise<Response> {
  const { api } = ctx;
  const argNames = method === "POST"
    ? [...new Set(api.columns)].sort()
    : [...new Set(api.query.rpcArgs.map(([k]) => k))].sort();
  const routine = findRoutine(ctx.cache, api.schema, name, argNames, callKind(ctx));
  const { plan } = planRead(ctx.cache, api.schema, resultRelation(ctx, routine), api.query, {
    rootFilters: true,
    ranges: true,
    topRange: api.range,
    maxRows: ctx.config.maxRows,
  });
  const negotiated = negotiate(api.accept, { singularAllowed: true, csvAllowed: true });
  checkStrictPreferences(ctx);
  const strictMax = api.prefs.handling === "strict" && api.prefs.maxAffected !== null;
  if (strictMax && !routine.returnsSet) throw maxAffectedRpcViolation();
  if (plan.deferred) throw plan.deferred;

  const headersOnly = method === "HEAD";
  // A function returning one value or one row answers that value, not an array of one.
  const single = !routine.returnsSet && negotiated.handler === "json"
    ? "single"
    : !routine.returnsSet && negotiated.handler === "json-stripped"
    ? "single-stripped"
    : negotiated.handler;
  const handler = headersOnly ? "none" : single;
  const args = argsFor(ctx, routine);
  const main = callStatement(routine, args, plan.root, handler, countMode(ctx));
  const explain = needsPlan(ctx) ? callPlanStatement(routine, args, plan.root) : null;
  const readOnly = method !== "POST" || routine.volatility !== "volatile";
  const singular = negotiated.handler === "single" || negotiated.handler === "single-stripped";
  const verdict = (rows: Row[]) => {
    const n = Number(rows[0]?.page_total ?? 0);
    if (singular && n !== 1) return singularityError(n);
    if (strictMax && n > api.prefs.maxAffected!) return maxAffectedViolation(n);
    return null;
  };
  const result = await ctx.db.transaction(
    { readOnly, isolation: routine.isolationLevel ?? roleIsolation(ctx) },
    setupFor(ctx, routine.settings),
    main,
    explain,
    readOnly ? null : verdict,
  );
  const row = result.main[0] ?? { page_total: 0, body: "[]" };
  if (readOnly) {
    const problem = verdict([row]);
    if (problem) throw problem;
  }
  const pageTotal = Number(row.page_total);
  const total = totalOf(ctx, row, result.extra);
  const { status, range } = rangeStatus(api.range.offset, pageTotal, total);
  const headers = new Headers({ "content-range": range });
  const applied = preferenceApplied({
    count: api.prefs.count,
    handling: api.prefs.handling,
    timezone: api.prefs.timezone,
    maxAffected: api.prefs.maxAffected,
  });
  if (applied) headers.set("preference-applied", applied);
  if (routine.returnsVoid) {
    return toResponse(withGucOverrides({ status: 204, headers, body: null }, row), true);
  }
  headers.set("content-type", negotiated.contentType);
  contentProfile(api, headers);
  if (status === 416) {
    const res = errorResponse(outOfRange(api.range.offset, total), { head: headersOnly });
    headers.forEach((v, k) => res.headers.set(k, v));
    return res;
  }
  return toResponse(withGucOverrides({ status, headers, body: String(row.body ?? "") }, row), headersOnly);
}
