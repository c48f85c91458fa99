// Errors as Supabase Auth answers them, and the one place they are rendered. A request that says
// `X-Supabase-Api-Version: 2024-01-01` (or later; supabase-js always does) gets `{ code, message }` with the
// error code, and the header echoed back; any other gets the initial shape `{ code: <status>, error_code, msg }`.
// Both carry `x-sb-error-code`. A weak password adds `weak_password: { reasons }`. Anything unexpected is a 500
// `unexpected_failure` whose details go to the log, never to the client.

export const API_VERSION_HEADER = "X-Supabase-Api-Version";
const API_VERSION_2024 = "2024-01-01";

export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly weakPasswordReasons?: readonly string[],
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string) => new AuthError(400, code, message);
export const unauthorized = (code: string, message: string) => new AuthError(401, code, message);
export const forbidden = (code: string, message: string) => new AuthError(403, code, message);
export const notFound = (code: string, message: string) => new AuthError(404, code, message);
export const unprocessable = (code: string, message: string) => new AuthError(422, code, message);
export const emailExists = () =>
  new AuthError(422, "email_exists", "A user with this email address has already been registered");
export const tooManyRequests = () =>
  new AuthError(429, "over_request_rate_limit", "Request rate limit reached");
export const weakPassword = (message: string, reasons: readonly string[]) =>
  new AuthError(422, "weak_password", message, reasons);

/** The version of the error format the client asked for: 2024-01-01 or the initial one (null). */
export function requestedApiVersion(req: Request): string | null {
  const value = req.headers.get(API_VERSION_HEADER);
  if (!value || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return null;
  return value >= API_VERSION_2024 ? API_VERSION_2024 : null;
}

/** The response for an error; `onUnexpected` receives what is not an AuthError (to log it). */
export function errorResponse(
  error: unknown,
  apiVersion: string | null,
  onUnexpected: (error: unknown) => void,
): Response {
  const known = error instanceof AuthError ? error : new AuthError(
    500,
    "unexpected_failure",
    "Unexpected failure, please check server logs for more information",
  );
  if (!(error instanceof AuthError)) onUnexpected(error);

  const headers = new Headers({ "content-type": "application/json", "x-sb-error-code": known.code });
  const weak = known.weakPasswordReasons ? { weak_password: { reasons: known.weakPasswordReasons } } : {};
  let body: Record<string, unknown>;
  if (apiVersion) {
    headers.set(API_VERSION_HEADER, apiVersion);
    body = { code: known.code, message: known.message, ...weak };
  } else {
    body = { code: known.status, error_code: known.code, msg: known.message, ...weak };
  }
  return new Response(JSON.stringify(body), { status: known.status, headers });
}
