// One error shape for every function: `{ "error": { "code", "message" } }` (with `details` and `hint` when a
// client RPC's refusal carries them), and one table from error code to HTTP status. Handlers throw HttpError (or
// return errorResponse); nothing else reaches a client.
import { errorCode, isDbUnreachable } from "../platform/db-errors.ts";

export const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  payment_required: 402,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal_error: 500,
  upstream_error: 502,
  service_unavailable: 503,
  upstream_timeout: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/**
 * A refusal that carries its own status and code: what a client RPC raises through private.raise_api_error
 * (docs/error_codes.md, "Client RPCs"), e.g. `{ status: 403, code: "hire_limit_reached" }`.
 */
export type ApiRefusal = { status: number; code: string; details?: string | null; hint?: string | null };

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details?: string;
  readonly hint?: string;
  constructor(
    code: ErrorCode | ApiRefusal,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
    if (typeof code === "string") {
      this.code = code;
      this.status = ERROR_STATUS[code];
    } else {
      this.code = code.code;
      this.status = code.status;
      if (code.details != null) this.details = code.details;
      if (code.hint != null) this.hint = code.hint;
    }
  }
}

export type ErrorBody = { error: { code: string; message: string; details?: string; hint?: string } };

export function errorBody(
  code: string,
  message: string,
  extra: { details?: string; hint?: string } = {},
): ErrorBody {
  const error: ErrorBody["error"] = { code, message };
  if (extra.details !== undefined) error.details = extra.details;
  if (extra.hint !== undefined) error.hint = extra.hint;
  return { error };
}

/**
 * SQLSTATEs our SQL functions raise on purpose (docs/error_codes.md), with the status they mean. Their
 * messages are written for clients; any other database error is a bare 500.
 */
export const SQLSTATE_STATUS: Readonly<Record<string, ErrorCode>> = {
  PB402: "payment_required",
  PB404: "not_found",
  PB409: "conflict",
  PB422: "invalid_request",
  "22023": "invalid_request",
};

/**
 * SQLSTATE `PGRST`: a refusal in PostgREST's own format (private.raise_api_error), whose MESSAGE is the JSON body
 * `{code, message, details, hint}` and whose DETAIL is `{status, headers}`. Over a direct connection a function
 * answers it as the Data API would: that status, that code, message, details and hint, those headers. Anything
 * that does not parse as that form (a status outside 400-599, no code or message) is null: a bare 500.
 */
export function pgrstRefusal(e: unknown): HttpError | null {
  if (errorCode(e) !== "PGRST" || !(e instanceof Error)) return null;
  try {
    const body = JSON.parse(e.message) as Record<string, unknown>;
    const meta = JSON.parse(String((e as { detail?: unknown }).detail)) as Record<string, unknown>;
    const { status, headers } = meta;
    const { code, message, details, hint } = body;
    if (
      typeof status !== "number" || !Number.isInteger(status) || status < 400 || status > 599 ||
      typeof code !== "string" || !/^[A-Za-z0-9_]{1,64}$/.test(code) || typeof message !== "string"
    ) return null;
    const text = (v: unknown) => (typeof v === "string" ? v : null);
    const extra: Record<string, string> = {};
    if (headers && typeof headers === "object" && !Array.isArray(headers)) {
      for (const [k, v] of Object.entries(headers)) if (typeof v === "string") extra[k] = v;
    }
    return new HttpError({ status, code, details: text(details), hint: text(hint) }, message, extra);
  } catch {
    return null;
  }
}

/**
 * Renders any thrown value as the client may see it: HttpErrors as they are, a client RPC's PGRST refusal with its
 * own status and code, our SQLSTATEs with their status, a database that cannot be reached as a 503, anything else
 * as a bare 500.
 */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  const refusal = pgrstRefusal(e);
  if (refusal) return refusal;
  const sqlstate = errorCode(e);
  if (sqlstate !== undefined && sqlstate in SQLSTATE_STATUS && e instanceof Error) {
    return new HttpError(SQLSTATE_STATUS[sqlstate], e.message);
  }
  if (isDbUnreachable(e)) {
    return new HttpError(
      "service_unavailable",
      "A service this request needs is unavailable; try again shortly",
    );
  }
  return new HttpError("internal_error", "Internal error");
}
