// Limiter headroom: requests and tokens this instance has taken for a user from the current fixed window (from
// Upstash, or granted by the lease call when Postgres counts the limits), spent by calls admitted from memory.
// Headroom belongs to its window and ends with it. Also the X-RateLimit-* headers a call answers with.
import { namedRateLimitHeaders, rateLimited } from "../../limits/ratelimit.ts";
import type { PlanInfo } from "./hold.ts";
import type { UserState } from "./state.ts";
import { type LeaseReply, type LeaseStore, toNumber } from "./store.ts";

/** The limits' window, in seconds. */
export const WINDOW_SECONDS = 60;

/** Limiter headroom taken for this instance in the current window, and what the store had left after. */
export type Headroom = {
  windowEnd: number;
  requests: number;
  tokens: number;
  storeRequests: number | null;
  storeTokens: number | null;
  /** When the store's counts were read (other instances take from the same windows meanwhile). */
  storeSeenAt: number;
};

export const EMPTY_HEADROOM: Headroom = {
  windowEnd: 0,
  requests: 0,
  tokens: 0,
  storeRequests: null,
  storeTokens: null,
  storeSeenAt: 0,
};
/** How long what the store had left is trusted to size a take beyond the need. */
const STORE_COUNT_TTL_MS = 1_000;

/** The headroom of the current window (a past window's is gone). */
export function currentHeadroom(u: UserState, now: number): Headroom {
  if (now >= u.headroom.windowEnd) u.headroom = { ...EMPTY_HEADROOM };
  return u.headroom;
}

/** Adds what a lease call granted when Postgres counts the limits (no Upstash). */
export function addGrantedHeadroom(u: UserState, reply: LeaseReply) {
  if (!reply.limit_reset_at) return;
  const reset = reply.limit_reset_at.getTime();
  // Headroom belongs to its window: what is left of another (clocks differ) is not carried over.
  if (u.headroom.windowEnd !== reset) u.headroom = { ...EMPTY_HEADROOM };
  const h = u.headroom;
  h.windowEnd = reset;
  h.storeSeenAt = Date.now();
  h.requests += toNumber(reply.granted_requests);
  h.tokens += toNumber(reply.granted_rate_tokens);
  if (reply.requests_remaining !== null) h.storeRequests = reply.requests_remaining;
  if (reply.rate_tokens_remaining !== null) h.storeTokens = reply.rate_tokens_remaining;
}

/** Takes requests and tokens from Upstash for `calls` calls of `tokens` tokens; throws the 429 if refused. */
export async function takeFromUpstash(
  take: NonNullable<LeaseStore["take"]>,
  u: UserState,
  userId: string,
  plan: PlanInfo,
  tokens: number,
  calls: number,
) {
  let h = currentHeadroom(u, Date.now());
  const rateHold = Math.min(tokens, plan.tpm);
  // Never ask for more than half of what the window had left at a recent look (Upstash counts a refused take
  // in full, which would refuse this user's next calls too); a window not seen lately: this call only.
  const upTo = (need: number, want: number, left: number | null) =>
    left === null || Date.now() - h.storeSeenAt > STORE_COUNT_TTL_MS
      ? need
      : Math.max(need, Math.min(want, Math.floor(left / 2)));
  /** Takes `cost` from one window; the headroom (of the window Upstash answered for) grows by it. */
  const takeWindow = async (window: "rpm" | "tpm", cost: number) => {
    const r = await take(`gw:${window}:${userId}`, window === "rpm" ? plan.rpm : plan.tpm, cost);
    if (!r.allowed) throw rateLimited(r, window === "rpm" ? "requests" : "tokens");
    const now = currentHeadroom(u, Date.now());
    now.windowEnd = r.resetAt;
    if (window === "rpm") {
      now.requests += cost;
      now.storeRequests = r.remaining;
    } else {
      now.tokens += cost;
      now.storeTokens = r.remaining;
    }
    now.storeSeenAt = Date.now();
    return now;
  };
  if (h.requests < 1) h = await takeWindow("rpm", upTo(1, calls, h.storeRequests));
  if (h.tokens < rateHold) {
    const need = rateHold - h.tokens;
    await takeWindow(
      "tpm",
      upTo(need, Math.min(rateHold * Math.max(h.requests, 1), plan.tpm), h.storeTokens),
    );
  }
}

/** Both limits a call answers to, each named (X-RateLimit-*-Requests, X-RateLimit-*-Tokens). */
export function limitHeaders(u: UserState, plan: PlanInfo): Record<string, string> {
  const h = u.headroom;
  const resetAt = h.windowEnd || Date.now() + WINDOW_SECONDS * 1000;
  return {
    ...namedRateLimitHeaders("requests", {
      limit: plan.rpm,
      remaining: (h.storeRequests ?? 0) + h.requests,
      resetAt,
    }),
    ...namedRateLimitHeaders("tokens", {
      limit: plan.tpm,
      remaining: (h.storeTokens ?? 0) + h.tokens,
      resetAt,
    }),
  };
}
