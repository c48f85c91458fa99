// An HTTP request as PostgREST reads it (ApiRequest.hs, Preferences.hs, MediaType.hs, RangeQuery.hs): the
// resource and action, the schema (Accept-Profile / Content-Profile), the Prefer header, the media types
// accepted and sent, the requested range, the body, and the headers and cookies handed to SQL.
import {
  ApiError,
  invalidBody,
  invalidRange,
  invalidResourcePath,
  invalidRpcMethod,
  openApiDisabled,
  unacceptableSchema,
  unsupportedMethod,
} from "./errors.ts";
import { parseQueryParams, type QueryParams, type RowRange } from "./query-params.ts";

export type Mutation = "create" | "update" | "delete" | "upsert";
export type Action =
  | { kind: "read"; relation: string; headersOnly: boolean }
  | { kind: "mutate"; relation: string; mutation: Mutation }
  | { kind: "call"; routine: string; method: "GET" | "HEAD" | "POST" };

export type Preferences = {
  resolution: "merge-duplicates" | "ignore-duplicates" | null;
  representation: "representation" | "minimal" | "headers-only" | null;
  count: "exact" | "planned" | "estimated" | null;
  missing: "default" | "null" | null;
  handling: "strict" | "lenient" | null;
  maxAffected: number | null;
  /** PostgREST 12's `params=single-object`: the whole body is a function's one json/jsonb argument. */
  paramsSingleObject: boolean;
  /** `timezone=<name>`: the session time zone for the request, when PostgreSQL knows the name. */
  timezone: string | null;
  /** Preferences PostgREST does not know (an error with handling=strict). */
  invalid: string[];
};

/** What a client accepts or sends, as PostgREST classifies media types. */
export type MediaType =
  | { kind: "json" }
  | { kind: "object"; stripNulls: boolean }
  | { kind: "array-stripped" }
  | { kind: "csv" }
  | { kind: "any" }
  | { kind: "plan" }
  | { kind: "form" }
  | { kind: "text" }
  | { kind: "xml" }
  | { kind: "octet" }
  | { kind: "geojson" }
  | { kind: "openapi" }
  | { kind: "other"; mime: string };

export type Payload =
  | { kind: "json"; raw: string; keys: string[]; isArray: boolean }
  | { kind: "raw"; raw: string };

export type ApiRequest = {
  method: string;
  path: string;
  action: Action;
  schema: string;
  negotiatedByProfile: boolean;
  prefs: Preferences;
  accept: MediaType[];
  contentType: MediaType;
  query: QueryParams;
  /** The top-level range: limit/offset parameters intersected with a GET's Range header. */
  range: RowRange;
  payload: Payload | null;
  /** Keys of the body (or `columns=`) naming columns to write or function arguments. */
  columns: string[];
  headers: Record<string, string>;
  cookies: Record<string, string>;
};

// -------------------------------------------------------------------------------------- media types
export function mimeOf(mt: MediaType): string {
  switch (mt.kind) {
    case "json":
      return "application/json";
    case "object":
      return mt.stripNulls
        ? "application/vnd.pgrst.object+json;nulls=stripped"
        : "application/vnd.pgrst.object+json";
    case "array-stripped":
      return "application/vnd.pgrst.array+json;nulls=stripped";
    case "csv":
      return "text/csv";
    case "any":
      return "*/*";
    case "plan":
      return "application/vnd.pgrst.plan";
    case "form":
      return "application/x-www-form-urlencoded";
    case "text":
      return "text/plain";
    case "xml":
      return "text/xml";
    case "octet":
      return "application/octet-stream";
    case "geojson":
      return "application/geo+json";
    case "openapi":
      return "application/openapi+json";
    case "other":
      return mt.mime;
  }
}

export function decodeMediaType(raw: string): MediaType {
  const [type, ...paramParts] = raw.split(";");
  const [main, sub] = type.trim().toLowerCase().split("/");
  const params = new Map(paramParts.map((p) => {
    const [k, ...v] = p.split("=");
    return [k.trim().toLowerCase(), v.join("=").trim().replace(/^"|"$/g, "")] as const;
  }));
  const stripNulls = params.get("nulls") === "stripped";
  if (main === "application") {
    switch (sub) {
      case "json":
        return { kind: "json" };
      case "geo+json":
        return { kind: "geojson" };
      case "openapi+json":
        return { kind: "openapi" };
      case "x-www-form-urlencoded":
        return { kind: "form" };
      case "octet-stream":
        return { kind: "octet" };
      case "vnd.pgrst.plan":
      case "vnd.pgrst.plan+text":
      case "vnd.pgrst.plan+json":
        return { kind: "plan" };
      case "vnd.pgrst.object+json":
      case "vnd.pgrst.object":
        return { kind: "object", stripNulls };
      case "vnd.pgrst.array+json":
      case "vnd.pgrst.array":
        return stripNulls ? { kind: "array-stripped" } : { kind: "json" };
    }
  }
  if (main === "text" && sub === "csv") return { kind: "csv" };
  if (main === "text" && sub === "plain") return { kind: "text" };
  if (main === "text" && sub === "xml") return { kind: "xml" };
  if (main === "*" && sub === "*") return { kind: "any" };
  return { kind: "other", mime: type.trim() };
}

/** The Accept header's media types, best first (by q, then by order), those with q=0 left out. */
export function parseAccept(header: string | null): MediaType[] {
  if (!header) return [{ kind: "any" }];
  const items = header.split(",").map((part, i) => {
    const q = part.match(/;\s*q=([0-9.]+)/i);
    return { raw: part.replace(/;\s*q=[0-9.]+/i, "").trim(), q: q ? Number(q[1]) : 1, i };
  }).filter((x) => x.raw !== "" && x.q > 0);
  items.sort((a, b) => b.q - a.q || a.i - b.i);
  return items.map((x) => decodeMediaType(x.raw));
}

// -------------------------------------------------------------------------------------- preferences
const PREFS = {
  resolution: ["merge-duplicates", "ignore-duplicates"],
  representation: ["representation", "minimal", "headers-only"],
  count: ["exact", "planned", "estimated"],
  missing: ["default", "null"],
  handling: ["strict", "lenient"],
} as const;
const PREF_NAME = {
  resolution: "resolution",
  representation: "return",
  count: "count",
  missing: "missing",
  handling: "handling",
} as const;
// tx=commit|rollback are known names, but honoured only where db-tx-end allows it (not on the platform);
// params=single-object is PostgREST 12's (deprecated there, removed in 13).
const KNOWN_OTHER = new Set(["tx=commit", "tx=rollback", "params=single-object"]);

export function parsePreferences(headers: Headers): Preferences {
  const all = (headers.get("prefer") ?? "").split(",").map((p) => p.trim()).filter((p) => p !== "");
  const first = <K extends keyof typeof PREFS>(k: K): (typeof PREFS)[K][number] | null => {
    for (const p of all) {
      const [name, value] = p.split("=", 2);
      if (name === PREF_NAME[k] && (PREFS[k] as readonly string[]).includes(value)) {
        return value as (typeof PREFS)[K][number];
      }
    }
    return null;
  };
  const maxAffectedPref = all.find((p) => p.startsWith("max-affected="))?.slice("max-affected=".length);
  const maxAffected = maxAffectedPref !== undefined && /^-?[0-9]+$/.test(maxAffectedPref)
    ? Number(maxAffectedPref)
    : null;
  const known = (p: string) => {
    const [name, value] = p.split("=", 2);
    const k = (Object.keys(PREF_NAME) as (keyof typeof PREFS)[]).find((key) => PREF_NAME[key] === name);
    return (k !== undefined && (PREFS[k] as readonly string[]).includes(value)) || KNOWN_OTHER.has(p) ||
      p.startsWith("max-affected=");
  };
  return {
    resolution: first("resolution"),
    representation: first("representation"),
    count: first("count"),
    missing: first("missing"),
    handling: first("handling"),
    maxAffected,
    paramsSingleObject: all.includes("params=single-object"),
    timezone: all.find((p) => p.startsWith("timezone="))?.slice("timezone=".length) ?? null,
    invalid: all.filter((p) => !known(p) && !p.startsWith("timezone=")),
  };
}

/** The Preference-Applied header PostgREST sends (only the preferences it applied, in its order). */
export function preferenceApplied(p: Partial<Preferences>): string | null {
  const vals = [
    p.resolution && `resolution=${p.resolution}`,
    p.missing && `missing=${p.missing}`,
    p.representation && `return=${p.representation}`,
    p.count && `count=${p.count}`,
    p.handling && `handling=${p.handling}`,
    p.timezone && `timezone=${p.timezone}`,
    p.handling === "strict" && p.maxAffected !== null && p.maxAffected !== undefined &&
    `max-affected=${p.maxAffected}`,
  ].filter((v): v is string => typeof v === "string");
  return vals.length ? vals.join(", ") : null;
}

// -------------------------------------------------------------------------------------------- range
/** A `Range: a-b` header (GET only): [offset, limit]; anything else asks for everything. */
function headerRange(method: string, header: string | null): RowRange {
  if (method !== "GET" || !header) return { offset: 0, limit: null };
  const m = header.trim().match(/^([0-9]+)-([0-9]*)$/);
  if (!m) return { offset: 0, limit: null };
  const lower = Number(m[1]);
  if (m[2] === "") return { offset: lower, limit: null };
  const upper = Number(m[2]);
  if (upper < lower) throw invalidRange("lower-gt-upper");
  return { offset: lower, limit: upper - lower + 1 };
}

/** PostgREST's intersection of the Range header with ?limit/?offset (limit=0 allowed, a negative one not). */
function topLevelRange(method: string, rangeHeader: string | null, query: QueryParams): RowRange {
  const h = headerRange(method, rangeHeader);
  const q = query.ranges.get("") ?? { offset: 0, limit: null };
  if (q.limit !== null && q.limit < 0) throw invalidRange("negative-limit");
  if (q.limit === 0) return { offset: q.offset, limit: 0 };
  const lower = Math.max(h.offset, q.offset);
  const uppers = [
    h.limit === null ? Infinity : h.offset + h.limit - 1,
    q.limit === null ? Infinity : q.offset + q.limit - 1,
  ];
  const upper = Math.min(...uppers);
  if (upper === Infinity) return { offset: lower, limit: null };
  if (upper < lower) throw invalidRange("negative-limit");
  return { offset: lower, limit: upper - lower + 1 };
}

// -------------------------------------------------------------------------------------------- body
function uniformKeys(value: unknown): { keys: string[]; isArray: boolean } | null {
  if (Array.isArray(value)) {
    if (value.length === 0) return { keys: [], isArray: true };
    const [head] = value;
    if (head === null || typeof head !== "object" || Array.isArray(head)) return null;
    const keys = Object.keys(head);
    const canonical = [...keys].sort().join("\u0000");
    const same = value.every((v) =>
      v !== null && typeof v === "object" && !Array.isArray(v) &&
      Object.keys(v).sort().join("\u0000") === canonical
    );
    return same ? { keys, isArray: true } : null;
  }
  if (value !== null && typeof value === "object") return { keys: Object.keys(value), isArray: false };
  return { keys: [], isArray: true }; // PostgREST reads any other JSON value as an empty array
}

function readPayload(
  raw: string,
  contentType: MediaType,
  action: Action,
  columnsParam: string[] | null,
): { payload: Payload | null; columns: string[] } {
  const isCall = action.kind === "call";
  const needsBody = (action.kind === "mutate" && action.mutation !== "delete") ||
    (isCall && action.method === "POST");
  if (!needsBody) return { payload: null, columns: [] };
  const usesColumns =
    action.kind === "mutate" && (action.mutation === "create" || action.mutation === "update") ||
    isCall;
  if (contentType.kind === "json") {
    if (usesColumns && columnsParam !== null) {
      return {
        payload: { kind: "json", raw, keys: columnsParam, isArray: raw.trimStart().startsWith("[") },
        columns: columnsParam,
      };
    }
    const text = raw === "" && isCall ? "{}" : raw;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw invalidBody("Empty or invalid json");
    }
    const shape = uniformKeys(value);
    if (!shape) throw invalidBody("All object keys must match");
    const normalised = typeof value === "object" && value !== null ? text : "[]";
    return { payload: { kind: "json", raw: normalised, ...shape }, columns: shape.keys };
  }
  if (contentType.kind === "form") {
    const params = new URLSearchParams(raw);
    const obj: Record<string, string> = {};
    for (const [k, v] of params) obj[k] ??= v;
    const keys = Object.keys(obj);
    return { payload: { kind: "json", raw: JSON.stringify(obj), keys, isArray: false }, columns: keys };
  }
  if (isCall && (contentType.kind === "text" || contentType.kind === "xml" || contentType.kind === "octet")) {
    return { payload: { kind: "raw", raw }, columns: [] };
  }
  throw invalidBody(`Content-Type not acceptable: ${mimeOf(contentType)}`);
}

// ------------------------------------------------------------------------------------------ request
function actionOf(method: string, segments: string[]): Action {
  if (segments.length === 0) {
    throw openApiDisabled(); // the platform serves the OpenAPI description elsewhere; PostgREST's root is off
  }
  if (segments.length === 2 && segments[0] === "rpc") {
    const routine = segments[1];
    if (method === "GET" || method === "HEAD" || method === "POST") return { kind: "call", routine, method };
    throw invalidRpcMethod(method);
  }
  if (segments.length !== 1) throw invalidResourcePath();
  const relation = segments[0];
  switch (method) {
    case "GET":
      return { kind: "read", relation, headersOnly: false };
    case "HEAD":
      return { kind: "read", relation, headersOnly: true };
    case "POST":
      return { kind: "mutate", relation, mutation: "create" };
    case "PUT":
      return { kind: "mutate", relation, mutation: "upsert" };
    case "PATCH":
      return { kind: "mutate", relation, mutation: "update" };
    case "DELETE":
      return { kind: "mutate", relation, mutation: "delete" };
    default:
      throw unsupportedMethod(method);
  }
}

function schemaOf(
  method: string,
  headers: Headers,
  schemas: string[],
): { schema: string; byProfile: boolean } {
  const writes = ["DELETE", "PATCH", "POST", "PUT"].includes(method);
  const profile = headers.get(writes ? "content-profile" : "accept-profile");
  if (profile === null) return { schema: schemas[0], byProfile: schemas.length !== 1 };
  if (!schemas.includes(profile)) throw unacceptableSchema(profile, schemas);
  return { schema: profile, byProfile: true };
}

function cookiesOf(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

/** Prefer: timezone= counts only with a name PostgreSQL knows; another is an unknown preference. */
export function withKnownTimezone(prefs: Preferences, timezones: Set<string>): Preferences {
  if (prefs.timezone === null || timezones.has(prefs.timezone)) return prefs;
  return { ...prefs, timezone: null, invalid: [...prefs.invalid, `timezone=${prefs.timezone}`] };
}

/** Reads everything PostgREST takes from the request; throws ApiError for what it refuses. */
export async function readApiRequest(req: Request, schemas: string[]): Promise<ApiRequest> {
  const url = new URL(req.url);
  const method = req.method.toUpperCase();
  const segments = url.pathname.split("/").filter((s) => s !== "").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const action = actionOf(method, segments);
  const { schema, byProfile } = schemaOf(method, req.headers, schemas);
  const query = parseQueryParams(url.search, action.kind === "call" && action.method !== "POST");
  const range = topLevelRange(method, req.headers.get("range"), query);
  if (method === "PUT" && (range.offset !== 0 || range.limit !== null)) {
    throw new ApiError(400, "PGRST114", "limit/offset querystring parameters are not allowed for PUT");
  }
  const contentTypeHeader = req.headers.get("content-type");
  const contentType = contentTypeHeader ? decodeMediaType(contentTypeHeader) : { kind: "json" as const };
  const raw = await req.text();
  const { payload, columns } = readPayload(raw, contentType, action, query.columns);
  const headers: Record<string, string> = {};
  req.headers.forEach((v, k) => {
    if (k !== "cookie") headers[k.toLowerCase()] = v;
  });
  return {
    method,
    path: url.pathname,
    action,
    schema,
    negotiatedByProfile: byProfile,
    prefs: parsePreferences(req.headers),
    accept: parseAccept(req.headers.get("accept")),
    contentType,
    query,
    range,
    payload,
    columns,
    headers,
    cookies: cookiesOf(req.headers.get("cookie")),
  };
}
