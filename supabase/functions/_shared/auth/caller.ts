// The signed-in caller of a user function, in one call: authenticate (401; user.ts), then, when the function
// has a per-user limit, count the call against `<scope>:<user id>` (429 with Retry-After). Returns the user, a
// logger tagged with user_id, and the X-RateLimit headers for the answer (none without a limit).
//
//   const rule = { scope: "my-fn", limit: 10, windowSeconds: 60 };
//   const { user, log, headers } = await caller(req, ctx, { limit: rule });
//   …
//   return json(body, { headers });
//
// Every user function calls it where its handler authenticates (after reading the body, if 400s come first).
import type { RequestContext } from "../http/with-http.ts";
import { limit, rateLimited, rateLimitHeaders, type RateLimitRule } from "../limits/ratelimit.ts";
import type { Logger } from "../platform/log.ts";
import { authenticate, type AuthOptions, type AuthUser } from "./user.ts";

/** A per-user rate limit: the rule, counted under `<scope>:<user id>` (scope: usually the function's name). */
export type PerUserLimit = RateLimitRule & { scope: string };

export type CallerOptions = Omit<AuthOptions, "log"> & { limit?: PerUserLimit };

export type Caller = { user: AuthUser; log: Logger; headers: Record<string, string> };

export async function caller(
  req: Request,
  ctx: RequestContext,
  options: CallerOptions = {},
): Promise<Caller> {
  const { limit: perUser, ...auth } = options;
  const user = await authenticate(req, { ...auth, log: ctx.log });
  let headers: Record<string, string> = {};
  if (perUser) {
    const { scope, ...rule } = perUser;
    const rate = await limit(`${scope}:${user.id}`, rule);
    if (!rate.allowed) throw rateLimited(rate);
    headers = rateLimitHeaders(rate);
  }
  return { user, log: ctx.log.child({ user_id: user.id }), headers };
}
