// The billing functions' per-user rate limit: Checkout and portal sessions are cheap for us but not for Stripe's
// rate limits.
import type { PerUserLimit } from "../auth/caller.ts";
import type { RateLimitRule } from "../limits/ratelimit.ts";

/** Per user and function. */
export const BILLING_RATE_LIMIT: RateLimitRule = { limit: 10, windowSeconds: 60 };

/** The limit of one billing function, counted under `<function>:<user id>`: `caller(req, ctx, { limit })`. */
export function billingLimit(functionName: string): PerUserLimit {
  return { scope: functionName, ...BILLING_RATE_LIMIT };
}
