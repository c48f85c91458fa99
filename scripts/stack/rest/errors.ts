// PostgREST's error shape ({ code, details, hint, message }), its PGRST codes and its table from SQLSTATE
// to HTTP status (PostgREST 13, src/PostgREST/Error.hs and docs/references/errors.rst), including the two
// ways SQL sets a status itself: SQLSTATE 'PTxyz' answers HTTP xyz, and SQLSTATE 'PGRST' carries the whole
// error as JSON in MESSAGE and { status, status_text?, headers } in DETAIL.

export type ErrorBody = { code: string; message: string; details: unknown; hint: unknown };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
    readonly hint: unknown = null,
    readonly headers: Record<string, string> = {},
    readonly statusText?: string,
  ) {
    super(message);
  }

  body(): ErrorBody {
    return { code: this.code, details: this.details, hint: this.hint, message: this.message };
  }
}

const JSON_TYPE = "application/json; charset=utf-8";

/** The HTTP answer for an error, as PostgREST sends it (with its Proxy-Status header). */
export function errorResponse(err: ApiError, { head = false } = {}): Response {
  const body = JSON.stringify(err.body());
  const headers = new Headers({
    "content-type": JSON_TYPE,
    "proxy-status": `PostgREST; error=${err.code}`,
    ...err.headers,
  });
  // A reason phrase must be visible ASCII; anything else is left to the default.
  const statusText = err.statusText && /^[\x20-\x7e]+$/.test(err.statusText) ? err.statusText : undefined;
  const status = err.status >= 200 && err.status <= 599 ? err.status : 500;
  return new Response(head ? null : body, { status, statusText, headers });
}

// ------------------------------------------------------------------------------------ request errors
export const invalidRpcMethod = (method: string) =>
  new ApiError(405, "PGRST101", `Cannot use the ${method} method on RPC`);

export const invalidBody = (message: string) => new ApiError(400, "PGRST102", message);

export type RangeProblem = "negative-limit" | "lower-gt-upper" | { offset: number; total: number };
export function invalidRange(problem: RangeProblem): ApiError {
  const details = problem === "negative-limit"
    ? "Limit should be greater than or equal to zero."
    : problem === "lower-gt-upper"
    ? "The lower boundary must be lower than or equal to the upper boundary in the Range header."
    : `An offset of ${problem.offset} was requested, but there are only ${problem.total} rows.`;
  return new ApiError(416, "PGRST103", "Requested range not satisfiable", details);
}

export const unacceptableSchema = (schema: string, schemas: string[]) =>
  new ApiError(
    406,
    "PGRST106",
    `Invalid schema: ${schema}`,
    null,
    `Only the following schemas are exposed: ${schemas.join(", ")}`,
  );

export const mediaTypeError = (types: string[]) =>
  new ApiError(406, "PGRST107", `None of these media types are available: ${types.join(", ")}`);

export const notEmbedded = (resource: string) =>
  new ApiError(
    400,
    "PGRST108",
    `'${resource}' is not an embedded resource in this request`,
    null,
    `Verify that '${resource}' is included in the 'select' query parameter.`,
  );

export const singularityError = (rows: number) =>
  new ApiError(
    406,
    "PGRST116",
    "Cannot coerce the result to a single JSON object",
    `The result contains ${rows} rows`,
  );

export const unsupportedMethod = (method: string) =>
  new ApiError(405, "PGRST117", `Unsupported HTTP method: ${method}`);

export const relatedOrderNotToOne = (origin: string, target: string) =>
  new ApiError(
    400,
    "PGRST118",
    `A related order on '${target}' is not possible`,
    `'${origin}' and '${target}' do not form a many-to-one or one-to-one relationship`,
  );

export const invalidPreferences = (prefs: string[]) =>
  new ApiError(
    400,
    "PGRST122",
    "Invalid preferences given with handling=strict",
    `Invalid preferences: ${prefs.join(", ")}`,
  );

export const aggregatesNotAllowed = () =>
  new ApiError(400, "PGRST123", "Use of aggregate functions is not allowed");

export const maxAffectedViolation = (rows: number) =>
  new ApiError(
    400,
    "PGRST124",
    "Query result exceeds max-affected preference constraint",
    `The query affects ${rows} rows`,
  );

export const invalidResourcePath = () =>
  new ApiError(404, "PGRST125", "Invalid path specified in request URL");

export const openApiDisabled = () => new ApiError(404, "PGRST126", "Root endpoint metadata is disabled");

export const maxAffectedRpcViolation = () =>
  new ApiError(
    400,
    "PGRST128",
    "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
  );

// ------------------------------------------------------------------------------- schema cache errors
export const noRelationship = (
  parent: string,
  child: string,
  hint: string | null,
  schema: string,
  suggestion: string | null,
) =>
  new ApiError(
    400,
    "PGRST200",
    `Could not find a relationship between '${parent}' and '${child}' in the schema cache`,
    `Searched for a foreign key relationship between '${parent}' and '${child}${
      hint ? `' using the hint '${hint}` : ""
    }' in the schema '${schema}', but no matches were found.`,
    suggestion,
  );

export type RelationshipSummary = {
  cardinality: string;
  embedding: string;
  relationship: string;
  hint: string;
};
export const ambiguousRelationship = (parent: string, child: string, rels: RelationshipSummary[]) =>
  new ApiError(
    300,
    "PGRST201",
    `Could not embed because more than one relationship was found for '${parent}' and '${child}'`,
    rels.map(({ cardinality, embedding, relationship }) => ({ cardinality, embedding, relationship })),
    `Try changing '${child}' to one of the following: ${
      rels.map((r) => r.hint).join(", ")
    }. Find the desired relationship in the 'details' key.`,
  );

export const noFunction = (message: string, details: string, hint: string | null) =>
  new ApiError(404, "PGRST202", message, details, hint);

export const ambiguousFunction = (candidates: string[]) =>
  new ApiError(
    300,
    "PGRST203",
    `Could not choose the best candidate function between: ${candidates.join(", ")}`,
    null,
    "Try renaming the parameters or the function itself in the database so function overloading can be resolved",
  );

export const columnNotFound = (relation: string, column: string) =>
  new ApiError(400, "PGRST204", `Could not find the '${column}' column of '${relation}' in the schema cache`);

export const tableNotFound = (schema: string, table: string, suggestion: string | null) =>
  new ApiError(
    404,
    "PGRST205",
    `Could not find the table '${schema}.${table}' in the schema cache`,
    null,
    suggestion ? `Perhaps you meant the table '${schema}.${suggestion}'` : null,
  );

export const noSchemaCache = () =>
  new ApiError(503, "PGRST002", "Could not query the database for the schema cache. Retrying.");

// Errors PostgreSQL itself would raise for the SQL PostgREST builds: answered without a round trip when the
// schema cache already shows them (an unknown column, an unknown cast type), with PostgreSQL's own words.
export const undefinedColumn = (relation: string, column: string) =>
  new ApiError(400, "42703", `column ${relation}.${column} does not exist`);

export const undefinedType = (type: string) => new ApiError(400, "42704", `type "${type}" does not exist`);

// ---------------------------------------------------------------------------------------- JWT errors
const invalidTokenHeader = (message: string) => ({
  "www-authenticate": `Bearer error="invalid_token", error_description=${JSON.stringify(message)}`,
});

/** PGRST301: the token could not be decoded or verified. */
export const jwtDecodeError = (message: string, details: string | null = null) =>
  new ApiError(401, "PGRST301", message, details, null, invalidTokenHeader(message));

/** PGRST303: a claim is invalid (expired, not yet valid, malformed). */
export const jwtClaimsError = (message: string) =>
  new ApiError(401, "PGRST303", message, null, null, invalidTokenHeader(message));

// ----------------------------------------------------------------------------------- database errors
export type PgErrorFields = {
  code?: string;
  message?: string;
  detail?: string;
  hint?: string;
};

/** PostgREST's status for a SQLSTATE (authed: the request's role is not the anonymous role). */
export function sqlstateStatus(code: string, message: string, authed: boolean): number {
  const c2 = code.slice(0, 2);
  if (c2 === "08") return 503;
  if (c2 === "09") return 500;
  if (c2 === "0L" || c2 === "0P") return 403;
  if (code === "23503" || code === "23505") return 409;
  if (code === "25006") return 405;
  if (code === "21000") return message.endsWith("requires a WHERE clause") ? 400 : 500;
  if (code === "22023") return message.startsWith("role") && message.endsWith("does not exist") ? 401 : 400;
  if (c2 === "25") return 500;
  if (c2 === "28") return 403;
  if (c2 === "2D" || c2 === "38" || c2 === "39" || c2 === "3B" || c2 === "40") return 500;
  if (code === "53400") return 500;
  if (c2 === "53") return 503;
  if (c2 === "54" || c2 === "55") return 500;
  if (code === "57P01") return 503;
  if (c2 === "57" || c2 === "58" || c2 === "F0" || c2 === "HV") return 500;
  if (code === "P0001") return 400;
  if (c2 === "P0" || c2 === "XX") return 500;
  if (code === "42883") return message.startsWith("function xmlagg(") ? 406 : 404;
  if (code === "42P01") return 404;
  if (code === "42P17") return 500;
  if (code === "42501") return authed ? 403 : 401;
  if (c2 === "PT") {
    const n = Number(code.slice(2));
    return Number.isInteger(n) && n >= 200 && n <= 599 ? n : 500; // what an HTTP response can carry
  }
  return 400;
}

const raiseParseError = (details: string, hint: string) =>
  new ApiError(500, "PGRST121", `Could not parse JSON in the "RAISE SQLSTATE 'PGRST'" error`, details, hint);

const MESSAGE_HINT =
  "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
const DETAIL_HINT =
  "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";

function parseJsonObject(text: string | undefined): Record<string, unknown> | null {
  if (text === undefined) return null;
  try {
    const v = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

/** `raise sqlstate 'PGRST' using message = '{…}', detail = '{…}'`: the error and the response it asks for. */
function fromRaisePgrst(e: PgErrorFields): ApiError {
  const msg = parseJsonObject(e.message);
  if (!msg || typeof msg.code !== "string" || typeof msg.message !== "string") {
    return raiseParseError(`Invalid JSON value for MESSAGE: '${e.message ?? ""}'`, MESSAGE_HINT);
  }
  if (e.detail === undefined) return raiseParseError("DETAIL is missing in the RAISE statement", DETAIL_HINT);
  const det = parseJsonObject(e.detail);
  const headers = det?.headers;
  if (
    !det || typeof det.status !== "number" || !Number.isInteger(det.status) || headers === null ||
    typeof headers !== "object" || Array.isArray(headers) ||
    !Object.values(headers as Record<string, unknown>).every((v) => typeof v === "string") ||
    (det.status_text !== undefined && typeof det.status_text !== "string")
  ) {
    return raiseParseError(`Invalid JSON value for DETAIL: '${e.detail}'`, DETAIL_HINT);
  }
  return new ApiError(
    det.status >= 200 && det.status <= 599 ? det.status : 500,
    msg.code,
    msg.message,
    typeof msg.details === "string" ? msg.details : null,
    typeof msg.hint === "string" ? msg.hint : null,
    Object.fromEntries(
      Object.entries(headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]),
    ),
    det.status_text as string | undefined,
  );
}

/** A PostgreSQL error as PostgREST answers it. */
export function fromPgError(e: PgErrorFields, authed: boolean): ApiError {
  const code = e.code ?? "XX000";
  const message = e.message ?? "";
  if (code === "PGRST") return fromRaisePgrst(e);
  const status = sqlstateStatus(code, message, authed);
  const headers: Record<string, string> = status === 401 ? { "www-authenticate": "Bearer" } : {};
  const statusText = code.startsWith("PT") && status !== 500 ? message : undefined;
  return new ApiError(status, code, message, e.detail ?? null, e.hint ?? null, headers, statusText);
}

/** The connection to the database failed (PostgREST: PGRST000, "Retrying the connection"). */
export const connectionError = (details: string | null) =>
  new ApiError(503, "PGRST000", "Database connection error. Retrying the connection.", details);

export const acquisitionTimeout = () =>
  new ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.");
