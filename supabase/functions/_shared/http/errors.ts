// One error shape for every function: `{ "error": { "code", "message" } }`, and one table from error
// code to HTTP status. Handlers throw HttpError (or return errorResponse); nothing else reaches a client.
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

export class HttpError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
    this.status = ERROR_STATUS[code];
  }
}

export type ErrorBody = { error: { code: ErrorCode; message: string } };

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
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
 * Renders any thrown value as the client may see it: HttpErrors as they are, our SQLSTATEs with their status, a
 * database that cannot be reached as a 503, anything else as a bare 500.
 */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
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
