// GET /functions/v1/marketplace[?category=&q=&sort=&after=&limit=]  the catalog listing (public.list_ai_employees)
// GET /functions/v1/marketplace/plans                                the subscription plans, as anon sees them
// GET /functions/v1/marketplace/packs                                the token packs, as anon sees them
// The anon key is enough (the gateway verifies it). Every answer is read as PostgREST reads it for anon (role
// anon and its claims, in one transaction, RLS on), served through Redis: the listing keyed by the catalog version
// (public.marketplace_catalog_version(), bumped by trigger on every catalog change) and the normalised query, 60 s
// for the popular and rating sorts (hires and ratings move them without a catalog change), 300 s for newest and
// name; plans and packs for 60 s. ETag + If-None-Match → 304; Cache-Control: public, max-age=60,
// stale-while-revalidate=300; X-Cache: hit | miss | bypass (Redis down, slow or not configured: served from
// Postgres, never an error).
// 400 an unknown or repeated parameter, a limit that is not a whole number, and whatever the listing's SQL refuses
// (invalid_sort, invalid_limit, query_too_long, unknown_category, invalid_cursor: its own code) · 404 another path ·
// 405 not GET/HEAD · 503 the database is down.
import { HttpError } from "../_shared/http/errors.ts";
import { parseWith, z } from "../_shared/http/validation.ts";
import { type RequestContext, withHttp } from "../_shared/http/with-http.ts";
import { type CachedJson, cachedJson, keyHash, type Loaded } from "../_shared/platform/cache.ts";
import { db, type Sql } from "../_shared/platform/db.ts";

const CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300";
/** Sorts whose order moves with hires and ratings (no catalog change): their entries live 60 s, the others 300 s. */
const MOVING_SORTS = new Set(["popular", "rating"]);
const TTL_MOVING = 60;
const TTL_STABLE = 300;
const TTL_PRICES = 60;
/** A bump of this prefix drops every entry of an older shape. */
const KEY = "marketplace:v1";

// The listing's rules (which sorts, 1-50, 200 characters, known categories, our cursors) are the SQL's; here only
// the shape of the query string.
const text = z.string();
const ListingParams = z.strictObject({
  category: text.optional(),
  q: text.optional(),
  sort: text.optional(),
  after: text.optional(),
  limit: z.string().regex(/^\d{1,9}$/, "must be a whole number").transform(Number).optional(),
});
const NoParams = z.strictObject({});

/** The query string as an object; a parameter given twice is a 400. */
function queryParams(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of url.searchParams) {
    if (Object.hasOwn(out, name)) throw new HttpError("invalid_request", `${name}: given more than once`);
    out[name] = value;
  }
  return out;
}

/** Runs `query` as PostgREST runs a request of the anon key: one transaction, role anon, anon's claims. */
function asAnon<T>(sql: Sql, query: (tx: Sql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    // anon's statement_timeout on the platform (the Data API applies the role's settings; set role does not).
    await tx`select set_config('role', 'anon', true),
                    set_config('request.jwt.claims', '{"role":"anon"}', true),
                    set_config('statement_timeout', '3s', true)`;
    return await query(tx as unknown as Sql);
  }) as Promise<T>;
}

async function listing(url: URL, ctx: RequestContext): Promise<CachedJson> {
  const p = parseWith(ListingParams, queryParams(url));
  // Normalised: a search's runs of white space are one space (websearch_to_tsquery reads them so), empty is none.
  const category = p.category?.trim() || null;
  const query = p.q?.trim().replace(/\s+/g, " ") || null;
  const after = p.after?.trim() || null;
  const sql = db();
  const [{ version }] = await sql`select public.marketplace_catalog_version()::text as version`;
  const fingerprint = await keyHash(
    JSON.stringify([category, query, p.sort ?? null, after, p.limit ?? null]),
  );
  const keyFor = (v: string) => `${KEY}:list:${v}:${fingerprint}`;

  return cachedJson(keyFor(version), async (): Promise<Loaded> => {
    const [row] = await asAnon(sql, (tx) => {
      // Parameters not given take the SQL's defaults (popular, 20).
      const args = [
        tx`p_category => ${category}::text`,
        tx`p_query => ${query}::text`,
        p.sort !== undefined && tx`p_sort => ${p.sort}::text`,
        tx`p_after => ${after}::text`,
        p.limit !== undefined && tx`p_limit => ${p.limit}::integer`,
      ].filter((a) => a !== false);
      const list = args.slice(1).reduce((all, a) => tx`${all}, ${a}`, args[0]);
      return tx`select r::text as body, r ->> 'catalog_version' as version, r ->> 'sort' as sort
                  from public.list_ai_employees(${list}) r`;
    });
    return {
      body: row.body,
      ttlSeconds: MOVING_SORTS.has(row.sort) ? TTL_MOVING : TTL_STABLE,
      // The listing's own snapshot says which catalog it shows (a change may land between the two reads).
      storeAs: keyFor(row.version),
    };
  }, ctx.log);
}

function prices(url: URL, ctx: RequestContext, what: "plans" | "packs"): Promise<CachedJson> {
  parseWith(NoParams, queryParams(url));
  return cachedJson(`${KEY}:${what}`, async (): Promise<Loaded> => {
    const [row] = await asAnon(
      db(),
      (tx) =>
        what === "plans"
          ? tx`select json_build_object('plans', coalesce(json_agg(p order by p.sort_order, p.id), '[]'))::text as body
               from (select id, name, description, monthly_token_allowance, price_monthly_cents, price_yearly_cents,
                            requests_per_minute, tokens_per_minute, max_input_tokens, max_output_tokens, allowed_models,
                            max_hired_employees, sort_order
                       from public.subscription_plans) p`
          : tx`select json_build_object('packs', coalesce(json_agg(p order by p.sort_order, p.id), '[]'))::text as body
               from (select id, name, description, tokens, price_cents, currency, sort_order
                       from public.token_packs) p`,
    );
    return { body: row.body, ttlSeconds: TTL_PRICES };
  }, ctx.log);
}

/** Whether If-None-Match names this ETag (weak comparison, as RFC 9110 says for it) or is `*`. */
function notModified(req: Request, etag: string): boolean {
  const header = req.headers.get("if-none-match");
  if (!header) return false;
  const strip = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim() === "*" || strip(tag) === strip(etag));
}

function answer(req: Request, result: CachedJson): Response {
  const headers = new Headers({ etag: result.etag, "cache-control": CACHE_CONTROL, "x-cache": result.cache });
  if (notModified(req, result.etag)) return new Response(null, { status: 304, headers });
  headers.set("content-type", "application/json; charset=utf-8");
  return new Response(result.body, { status: 200, headers });
}

Deno.serve(withHttp({ name: "marketplace", methods: ["GET"] }, async (req, ctx) => {
  const path = ctx.url.pathname.replace(/^\/functions\/v1/, "").replace(/^\/marketplace/, "").replace(
    /\/$/,
    "",
  );
  switch (path) {
    case "":
      return answer(req, await listing(ctx.url, ctx));
    case "/plans":
      return answer(req, await prices(ctx.url, ctx, "plans"));
    case "/packs":
      return answer(req, await prices(ctx.url, ctx, "packs"));
    default:
      throw new HttpError(
        "not_found",
        "No such marketplace route: GET /marketplace, /marketplace/plans or /packs",
      );
  }
}));
