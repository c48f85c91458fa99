// CORS from an allow-list: CORS_ALLOWED_ORIGINS="https://app.example.com,http://localhost:3000"
// ("*" allows any origin, without credentials). Origins not on the list get no CORS headers, and their
// preflights a 403.
import { env } from "../platform/env.ts";

export const CORS_ALLOWED_HEADERS = [
  "authorization, x-client-info, apikey, content-type, x-request-id, idempotency-key",
  // What the provider SDKs send from a browser to the LLM proxies.
  "x-api-key, x-goog-api-key, x-goog-api-client, anthropic-version, anthropic-beta",
  "anthropic-dangerous-direct-browser-access, x-stainless-os, x-stainless-lang, x-stainless-package-version",
  "x-stainless-runtime, x-stainless-runtime-version, x-stainless-arch, x-stainless-retry-count, x-stainless-timeout",
].join(", ");
export const CORS_EXPOSED_HEADERS =
  "x-request-id, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, etag, x-cache";

export function allowedOrigin(
  origin: string | null,
  allowList = env.list("CORS_ALLOWED_ORIGINS"),
): string | null {
  if (!origin) return null;
  if (allowList.includes("*")) return "*";
  return allowList.includes(origin) ? origin : null;
}

/** Headers to add to an actual (non-preflight) response. */
export function corsHeaders(origin: string | null): Record<string, string> {
  const allowed = allowedOrigin(origin);
  const headers: Record<string, string> = { vary: "Origin" };
  if (allowed) {
    headers["access-control-allow-origin"] = allowed;
    headers["access-control-expose-headers"] = CORS_EXPOSED_HEADERS;
  }
  return headers;
}

export function isPreflight(req: Request): boolean {
  return req.method === "OPTIONS" && req.headers.has("origin") &&
    req.headers.has("access-control-request-method");
}

/** The preflight answer, or null when the origin is not allowed. */
export function preflightHeaders(req: Request, methods: readonly string[]): Record<string, string> | null {
  const allowed = allowedOrigin(req.headers.get("origin"));
  if (!allowed) return null;
  return {
    vary: "Origin",
    "access-control-allow-origin": allowed,
    "access-control-allow-methods": [...methods, "OPTIONS"].join(", "),
    "access-control-allow-headers": CORS_ALLOWED_HEADERS,
    "access-control-max-age": "600",
  };
}
