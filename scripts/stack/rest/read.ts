// GET and HEAD on a table or view: plan the read, run it in a read-only transaction (one round trip), answer
// with the rows (or one object, or CSV), Content-Range and, when counted, 206/416 as PostgREST does.
import {
  checkStrictPreferences,
  type Context,
  countMode,
  findTable,
  needsPlan,
  roleIsolation,
  setupFor,
  totalOf,
} from "./context.ts";
import { errorResponse, singularityError } from "./errors.ts";
import { planRead, tableRelation } from "./plan.ts";
import { preferenceApplied } from "./request.ts";
import {
  contentProfile,
  negotiate,
  outOfRange,
  rangeStatus,
  toResponse,
  withGucOverrides,
} from "./response.ts";
import { readPlanStatement, readStatement } from "./statements.ts";

export async function read(ctx: Context, relation: string, headersOnly: boolean): Promise<Response> {
  const { api } = ctx;
  const table = findTable(ctx, relation);
  const { plan } = planRead(ctx.cache, api.schema, tableRelation(table), api.query, {
    rootFilters: true,
    ranges: true,
    topRange: api.range,
    maxRows: ctx.config.maxRows,
  });
  const negotiated = negotiate(api.accept, { singularAllowed: true, csvAllowed: true });
  checkStrictPreferences(ctx);
  if (plan.deferred) throw plan.deferred;

  const handler = headersOnly ? "none" : negotiated.handler;
  const main = readStatement(table, plan.root, handler, countMode(ctx));
  const explain = needsPlan(ctx) ? readPlanStatement(table, plan.root) : null;
  const result = await ctx.db.transaction(
    { readOnly: true, isolation: roleIsolation(ctx) },
    setupFor(ctx),
    main,
    explain,
    null,
  );

  const row = result.main[0];
  const pageTotal = Number(row.page_total);
  const singular = negotiated.handler === "single" || negotiated.handler === "single-stripped";
  if (singular && pageTotal !== 1) throw singularityError(pageTotal);
  const total = totalOf(ctx, row, result.extra);
  const { status, range } = rangeStatus(api.range.offset, pageTotal, total);

  const headers = new Headers({ "content-range": range, "content-type": negotiated.contentType });
  contentProfile(api, headers);
  const applied = preferenceApplied({
    count: api.prefs.count,
    handling: api.prefs.handling,
    timezone: api.prefs.timezone,
  });
  if (applied) headers.set("preference-applied", applied);
  if (status === 416) {
    const err = outOfRange(api.range.offset, total);
    const res = errorResponse(err, { head: headersOnly });
    headers.forEach((v, k) => res.headers.set(k, v));
    return res;
  }
  const answer = withGucOverrides({ status, headers, body: String(row.body ?? "") }, row);
  return toResponse(answer, headersOnly);
}
