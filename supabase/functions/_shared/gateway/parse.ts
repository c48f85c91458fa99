// A gateway request, read before anything is admitted: the route (the path after /<function-name>; 404), the
// user's Supabase token where the provider's SDK sends its API key (401), the body against the provider's
// allow-list of fields with every number bounded (415/413/400), and the provider's key on the server (503).
import { API_KEY_TOKEN_HEADERS, bearerOrApiKey } from "../auth/token.ts";
import { type UserClaims, verifyUserTokenCached } from "../auth/verify.ts";
import { HttpError } from "../http/errors.ts";
import { parseWith, readRawBody, requireJson } from "../http/validation.ts";
import { env } from "../platform/env.ts";
import type { Logger } from "../platform/log.ts";
import { type Described, type ProviderAdapter, type Route, tokensForBytes } from "./providers/adapter.ts";

export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Rough upper bound of a request's input tokens, from its body's UTF-8 bytes (see tokensForBytes). */
export const estimateInputTokens = (bodyBytes: number) => tokensForBytes(bodyBytes);

/** The provider call the path names; 404 when it names none. */
export function routeOf(adapter: ProviderAdapter, url: URL): Route {
  const path = url.pathname.replace(new RegExp(`^/${adapter.functionName}`), "") || "/";
  const route = adapter.route(path, url.searchParams);
  if (!route) throw new HttpError("not_found", `No such endpoint: POST ${path}`);
  return route;
}

/** The caller's verified claims (cached until the token expires); the user row is the lease call's to check. */
export function callerClaims(req: Request, log: Logger): Promise<UserClaims> {
  return verifyUserTokenCached(bearerOrApiKey(req, API_KEY_TOKEN_HEADERS), log);
}

export type ParsedCall = {
  /** The body as it came (its size is the input estimate). */
  raw: string;
  body: Record<string, unknown>;
  described: Described;
};

/** The body, validated against the provider's allow-list, and what it asks for. */
export async function readCall(req: Request, adapter: ProviderAdapter, route: Route): Promise<ParsedCall> {
  requireJson(req);
  const raw = await readRawBody(req, MAX_BODY_BYTES, "text");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HttpError("invalid_request", "Body is not valid JSON");
  }
  const body = parseWith(adapter.schema, parsed);
  return { raw, body, described: adapter.describe(body, route) };
}

/** The server's key for the provider; 503 when none is set. */
export function providerKey(adapter: ProviderAdapter): string {
  const key = env.string(adapter.keyEnv);
  if (!key) {
    throw new HttpError(
      "service_unavailable",
      `${adapter.label} is not configured on the server`,
    );
  }
  return key;
}
