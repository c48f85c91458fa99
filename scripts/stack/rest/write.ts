// POST (insert, upsert with on_conflict and Prefer: resolution), PATCH, PUT and DELETE: plan the write and
// the read of what it returns, run them as one statement in a read-write transaction, roll back when the
// result breaks what the client asked for (.single() on several rows, max-affected), answer as PostgREST.
import { checkStrictPreferences, type Context, findTable, roleIsolation, setupFor } from "./context.ts";
import type { Row } from "./db.ts";
import { ApiError, invalidBody, maxAffectedViolation, singularityError } from "./errors.ts";
import {
  type PlannedLogic,
  planRead,
  planRootWhere,
  returningColumns,
  tableRelation,
  writeColumns,
} from "./plan.ts";
import { type Mutation, preferenceApplied } from "./request.ts";
import { contentProfile, contentRange, negotiate, toResponse, withGucOverrides } from "./response.ts";
import type { Table } from "./schema-cache.ts";
import { type Returning, type WriteSpec, writeStatement } from "./statements.ts";

const putFiltersError = () =>
  new ApiError(405, "PGRST105", "Filters must include all and only primary key columns with 'eq' operators");

/** PUT: the URL must name the row by its whole primary key, each with a plain `eq`. */
function putConditions(ctx: Context, table: Table): PlannedLogic[] {
  const { query } = ctx.api;
  const root = query.filters.filter((f) => f.path.length === 0);
  const fields = new Set(root.map((f) => f.filter.field.name));
  const pk = new Set(table.pk);
  const plainEq = root.every(({ filter }) =>
    !filter.expr.negated && filter.expr.operation.kind === "quant" &&
    filter.expr.operation.operator === "eq" &&
    filter.expr.operation.quantifier === null && filter.field.jsonPath.length === 0
  );
  const samePk = pk.size > 0 && fields.size === pk.size && [...pk].every((c) => fields.has(c));
  if (query.logic.some((l) => l.path.length === 0) || !samePk || !plainEq) throw putFiltersError();
  return root.map(({ filter }) => {
    const c = table.columns.get(filter.field.name)!;
    return {
      kind: "stmt",
      filter: {
        kind: "filter",
        field: {
          column: { name: c.name, dataType: c.dataType, baseType: c.baseType },
          jsonPath: [],
          toJson: false,
        },
        expr: filter.expr,
      },
    };
  });
}

export async function write(ctx: Context, relation: string, mutation: Mutation): Promise<Response> {
  const { api } = ctx;
  const table = findTable(ctx, relation);
  const rel = tableRelation(table);
  const { plan, planner } = planRead(ctx.cache, api.schema, rel, api.query, {
    rootFilters: false,
    ranges: false,
    topRange: { offset: 0, limit: null },
    maxRows: null,
  });
  const { prefs } = api;
  const representation = prefs.representation === "representation";
  const returning: Returning = representation
    ? returningColumns(plan.root, table.pk)
    : prefs.representation === "headers-only" && mutation === "create"
    ? "*"
    : null;
  const columns = mutation === "delete" ? [] : writeColumns(table, api.columns);
  const payload = api.payload;
  if (mutation !== "delete" && payload?.kind !== "json") throw invalidBody("Empty or invalid json");
  const where = mutation === "update" || mutation === "delete" ? planRootWhere(planner, rel, api.query) : [];
  const negotiated = negotiate(api.accept, { singularAllowed: true, csvAllowed: true });
  checkStrictPreferences(ctx);
  if (planner.deferred) throw planner.deferred;

  const pkOrConflict = table.pk.length > 0 || api.query.onConflict !== null;
  let spec: WriteSpec;
  if (mutation === "create") {
    const conflictCols = api.query.onConflict ?? table.pk;
    for (const c of conflictCols) {
      if (!table.columns.has(c)) throw new ApiError(400, "42703", `column "${c}" does not exist`);
    }
    spec = {
      kind: "insert",
      table,
      columns,
      payload: payload as Extract<typeof payload, { kind: "json" }>,
      applyDefaults: prefs.missing === "default",
      onConflict: prefs.resolution ? { resolution: prefs.resolution, columns: conflictCols } : null,
      returning,
    };
  } else if (mutation === "upsert") {
    const conditions = putConditions(ctx, table);
    spec = {
      kind: "insert",
      table,
      columns,
      payload: payload as Extract<typeof payload, { kind: "json" }>,
      applyDefaults: false,
      onConflict: { resolution: "merge-duplicates", columns: table.pk },
      returning,
      putConditions: conditions,
    };
  } else if (mutation === "update") {
    spec = {
      kind: "update",
      table,
      columns,
      payload: payload as Extract<typeof payload, { kind: "json" }>,
      applyDefaults: prefs.missing === "default",
      where,
      returning,
    };
  } else {
    spec = { kind: "delete", table, where, returning };
  }

  const handler = representation ? negotiated.handler : "none";
  const singular = negotiated.handler === "single" || negotiated.handler === "single-stripped";
  const statement = writeStatement(spec, plan.root, handler, {
    location: prefs.representation === "headers-only" && mutation === "create" ? table.pk : null,
    countInserted: (mutation === "create" && prefs.resolution === "merge-duplicates") ||
      mutation === "upsert",
  });
  const strictMax = prefs.handling === "strict" && prefs.maxAffected !== null &&
    (mutation === "update" || mutation === "delete");
  const verdict = (rows: Row[]) => {
    const n = Number(rows[0]?.page_total ?? 0);
    if (mutation === "upsert" && n !== 1) {
      return new ApiError(400, "PGRST115", "Payload values do not match URL in primary key column(s)");
    }
    if (singular && mutation !== "upsert" && n !== 1) return singularityError(n);
    if (strictMax && n > prefs.maxAffected!) return maxAffectedViolation(n);
    return null;
  };
  const result = await ctx.db.transaction(
    { readOnly: false, isolation: roleIsolation(ctx) },
    setupFor(ctx),
    statement,
    null,
    verdict,
  );
  return answer(ctx, mutation, result.main[0], {
    handler,
    contentType: negotiated.contentType,
    pkOrConflict,
  });
}

function answer(
  ctx: Context,
  mutation: Mutation,
  row: Row,
  opts: { handler: string; contentType: string; pkOrConflict: boolean },
): Response {
  const { api } = ctx;
  const { prefs } = api;
  const n = Number(row.page_total ?? 0);
  const counted = prefs.count === "exact" || prefs.count === "estimated" || prefs.count === "planned";
  const total = counted ? n : null;
  const inserted = row.response_inserted === null || row.response_inserted === undefined
    ? null
    : Number(row.response_inserted);
  const representation = prefs.representation === "representation";
  const headers = new Headers();
  let status: number;
  let applied: string | null;
  if (mutation === "create") {
    status = inserted !== null && inserted <= 0 && prefs.resolution === "merge-duplicates" ? 200 : 201;
    headers.set("content-range", contentRange(1, 0, total));
    const location = row.header as string[] | null;
    if (location && location.length) {
      const qs = location.map((kv) => {
        const i = kv.indexOf("=");
        return `${encodeURIComponent(kv.slice(0, i))}=${encodeURIComponent(kv.slice(i + 1))}`;
      }).join("&");
      headers.set("location", `/${api.action.kind === "mutate" ? api.action.relation : ""}?${qs}`);
    }
    applied = preferenceApplied({
      resolution: opts.pkOrConflict ? prefs.resolution : null,
      missing: prefs.missing,
      representation: prefs.representation,
      count: prefs.count,
      handling: prefs.handling,
      timezone: prefs.timezone,
    });
  } else if (mutation === "upsert") {
    status = representation ? (inserted !== null && inserted > 0 ? 201 : 200) : 204;
    applied = preferenceApplied({
      representation: prefs.representation,
      count: prefs.count,
      handling: prefs.handling,
      timezone: prefs.timezone,
    });
  } else {
    status = representation ? 200 : 204;
    headers.set(
      "content-range",
      mutation === "update" ? contentRange(0, n - 1, total) : contentRange(1, 0, total),
    );
    applied = preferenceApplied({
      representation: prefs.representation,
      count: prefs.count,
      missing: mutation === "update" ? prefs.missing : null,
      handling: prefs.handling,
      timezone: prefs.timezone,
      maxAffected: prefs.maxAffected,
    });
  }
  if (applied) headers.set("preference-applied", applied);
  if (representation) {
    headers.set("content-type", opts.contentType);
    contentProfile(api, headers);
  }
  const body = representation ? String(row.body ?? "") : "";
  return toResponse(withGucOverrides({ status, headers, body }, row), false);
}
