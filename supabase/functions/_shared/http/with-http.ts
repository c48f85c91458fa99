// The HTTP layer every function is built on. `withHttp` wraps a handler with, in order:
//   request id (x-request-id in, or a new one) → CORS preflight → method check (405) → the handler →
//   one JSON error shape for anything thrown → security + CORS headers → one structured access-log line.
// Handlers read top to bottom: validate → authenticate → limit → act → respond.
// Answers are built with respond.ts (json, errorResponse).
import { createLogger, type Logger } from "../platform/log.ts";
import { corsHeaders, isPreflight, preflightHeaders } from "./cors.ts";
import { HttpError, toHttpError } from "./errors.ts";
import { errorResponse } from "./respond.ts";

export type RequestContext = {
  readonly requestId: string;
  readonly log: Logger;
  readonly url: URL;
};

export type Handler<C extends RequestContext = RequestContext> = (
  req: Request,
  ctx: C,
) => Response | Promise<Response>;

export type HttpOptions = {
  /** The function's name, as deployed (used in logs). */
  name: string;
  /** The methods the function answers; anything else is a 405. HEAD is allowed wherever GET is. */
  methods: readonly string[];
  /**
   * Whether a well-formed incoming x-request-id becomes the request id (default true). Off where the id is a
   * key of its own (the gateway meters each call under it): there it is always new.
   */
  acceptRequestId?: boolean;
  /**
   * Called with every refusal (a 4xx) rendered from a thrown error, the method check and the preflight
   * included, before the answer goes out: where a function audits what it refused. A failure of the hook is
   * logged and never changes the answer.
   */
  onRefused?: (refusal: { req: Request; ctx: RequestContext; error: HttpError }) => Promise<void>;
};

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "strict-transport-security": "max-age=63072000; includeSubDomains",
  "cross-origin-resource-policy": "same-site",
};

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,128}$/;

function finish(res: Response, requestId: string, origin: string | null): Response {
  // Responses from fetch() have immutable headers; copy into a fresh Response only when needed.
  let out = res;
  try {
    out.headers.set("x-request-id", requestId);
  } catch {
    out = new Response(res.body, { status: res.status, statusText: res.statusText, headers: res.headers });
    out.headers.set("x-request-id", requestId);
  }
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!out.headers.has(k)) out.headers.set(k, v);
  if (!out.headers.has("cache-control")) out.headers.set("cache-control", "no-store");
  for (const [k, v] of Object.entries(corsHeaders(origin))) out.headers.set(k, v);
  return out;
}

export function withHttp(options: HttpOptions, handler: Handler): (req: Request) => Promise<Response> {
  const methods = options.methods.includes("GET") && !options.methods.includes("HEAD")
    ? [...options.methods, "HEAD"]
    : [...options.methods];
  const baseLog = createLogger({ fn: options.name });

  return async (req: Request): Promise<Response> => {
    const started = performance.now();
    const incoming = req.headers.get("x-request-id");
    const requestId = options.acceptRequestId !== false && incoming && REQUEST_ID.test(incoming)
      ? incoming
      : crypto.randomUUID();
    const url = new URL(req.url);
    const log = baseLog.child({ request_id: requestId });
    const origin = req.headers.get("origin");

    const ctx: RequestContext = { requestId, log, url };
    let res: Response;
    try {
      if (isPreflight(req)) {
        const headers = preflightHeaders(req, methods);
        if (!headers) throw new HttpError("forbidden", "Origin not allowed");
        res = new Response(null, { status: 204, headers });
      } else if (!methods.includes(req.method)) {
        throw new HttpError("method_not_allowed", `Method ${req.method} not allowed`, {
          allow: methods.join(", "),
        });
      } else {
        res = await handler(req, ctx);
      }
    } catch (e) {
      const error = toHttpError(e);
      if (error.status >= 500) log.error("request failed", { error: e instanceof Error ? e : String(e) });
      if (error.status < 500 && options.onRefused) {
        try {
          await options.onRefused({ req, ctx, error });
        } catch (hookError) {
          log.error("refusal hook failed", {
            error: hookError instanceof Error ? hookError : String(hookError),
          });
        }
      }
      res = errorResponse(error);
    }

    const out = finish(res, requestId, origin);
    log.info("request", {
      method: req.method,
      path: url.pathname,
      status: out.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    });
    return out;
  };
}
