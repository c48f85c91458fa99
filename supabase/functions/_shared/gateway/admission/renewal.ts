// Renewing a lease: one private.gateway_lease call (and, with Upstash, its limiter takes) when the lease runs
// short, sized to how often the user comes back; and a background refresh that re-reads the plan and tops the
// lease up before it runs out, without making a call wait.
//
// How big a lease is: one call at first. A user who comes back within settings.growWindowMs of the last renewal
// gets twice as many calls' worth the next time (up to settings.maxCalls), and one who does not starts again at
// one; a caller that knows its next calls (an agent run: its remaining steps) gets at least that many. It is never more than an eighth of the plan's per-minute limits, and never more than a quarter of the
// unreserved balance beyond the call that asked (gateway_lease).
import { HttpError } from "../../http/errors.ts";
import { rateLimited } from "../../limits/ratelimit.ts";
import { unauthorized } from "../../auth/token.ts";
import { addGrantedHeadroom, currentHeadroom, takeFromUpstash, WINDOW_SECONDS } from "./headroom.ts";
import { type CallShape, callTokens, holdTokens, type PlanInfo } from "./hold.ts";
import { freshPlan, freshPrice, rememberPlan } from "./plan-cache.ts";
import { release } from "./release.ts";
import type { Book, Lease, UserState } from "./state.ts";
import { type LeaseReply, type LeaseRequest, toNumber } from "./store.ts";

/** The 4xx of a lease call that refused. */
function refusal(reply: LeaseReply): HttpError {
  const message = reply.message ?? "Refused";
  switch (reply.outcome) {
    case "unauthorized":
      return unauthorized("Unknown user");
    case "forbidden":
      return new HttpError("forbidden", message);
    case "unpriced":
      return new HttpError("invalid_request", message);
    case "payment_required":
      return new HttpError("payment_required", message);
    default:
      return rateLimited({
        allowed: false,
        limit: reply.limit_value ?? 0,
        remaining: 0,
        resetAt: reply.limit_reset_at?.getTime() ?? Date.now() + WINDOW_SECONDS * 1000,
        backend: "postgres",
      }, /tokens/i.test(reply.message ?? "") ? "tokens" : "requests");
  }
}

/**
 * How many calls' worth to ask for: grown for a user who keeps coming back (or the calls the caller says are
 * coming), within the plan's limits; before the plan is known, the calls the caller says are coming (else one).
 */
function callsToLease(u: UserState, plan: PlanInfo | null, tokens: number, callsAhead: number): number {
  if (!plan) return callsAhead;
  const byRequests = Math.max(1, Math.floor(plan.rpm / 8));
  const byTokens = Math.max(1, Math.floor(plan.tpm / 8 / Math.max(tokens, 1)));
  return Math.max(1, Math.min(u.calls, byRequests, byTokens));
}

/** The arguments of the lease call: what the lease still has, and what it asks for. */
function leaseRequest(
  book: Book,
  u: UserState,
  lease: Lease,
  call: CallShape | null,
  calls: number,
): LeaseRequest {
  const h = currentHeadroom(u, Date.now());
  const take = book.store.take;
  return {
    userId: lease.userId,
    leaseId: lease.id,
    model: call?.model ?? null,
    inputEstimate: call?.inputEstimate ?? 0,
    requestedOutput: call?.requestedOutput ?? null,
    choices: call?.choices ?? 1,
    inputUnbounded: call?.inputUnbounded ?? false,
    searchContextSize: call?.searchContextSize ?? null,
    calls,
    haveTokens: Math.max(0, lease.budget - lease.reserved),
    haveRequests: take ? 0 : h.requests,
    haveRateTokens: take ? 0 : h.tokens,
    ahead: call === null,
    checkLimits: take === null,
  };
}

/** What a lease call granted: the plan and prices it read, the tokens, and (without Upstash) the headroom. */
function applyLease(book: Book, u: UserState, lease: Lease, reply: LeaseReply, call: CallShape | null) {
  rememberPlan(u, reply, call);
  lease.budget += toNumber(reply.granted_tokens);
  // Another instance's call may have taken the balance to zero or below: this lease admits nothing more (its
  // hold goes back when it closes). Read at every renewal and every background refresh, so within a second.
  if (
    reply.total_balance !== undefined && reply.total_balance !== null && toNumber(reply.total_balance) <= 0
  ) {
    lease.budget = 0;
  }
  if (!book.store.take) addGrantedHeadroom(u, reply);
}

/** One renewal at a time per lease; waiting admissions retry after it. Throws the refusal, if any. */
export async function renew(book: Book, u: UserState, lease: Lease, call: CallShape, callsAhead = 1) {
  const { settings, store } = book;
  const now = Date.now();
  const grown = now - u.lastRenewalAt < settings.growWindowMs ? u.calls * 2 : 1;
  const ahead = Math.max(1, Math.min(Math.floor(callsAhead), settings.maxCalls));
  u.calls = Math.min(Math.max(grown, ahead), settings.maxCalls);
  u.lastRenewalAt = now;
  const plan = freshPlan(u, now, settings.planTtlMs);
  // A fresh price: a lease call said ok for this model within the TTL (which models a plan may call is decided
  // there only); without one, the lease call decides.
  const price = plan ? freshPrice(u, call, now, settings.planTtlMs) : null;
  const calls = callsToLease(u, plan, plan ? callTokens(plan, call) : 0, ahead);
  const userId = lease.userId;
  const work = (async () => {
    if (plan && price && store.take) {
      // Limits first: a call the limiter refuses never holds tokens.
      await takeFromUpstash(store.take, u, userId, plan, callTokens(plan, call), calls);
      if (lease.budget - lease.reserved >= holdTokens(plan, price, call)) return;
    }
    lease.granted = true; // from now on the database may hold tokens under this id (even if the reply is lost)
    const reply = await store.lease(leaseRequest(book, u, lease, call, calls));
    applyLease(book, u, lease, reply, call);
    lease.calls = calls;
    if (reply.outcome !== "ok") throw refusal(reply);
    if (store.take && !(plan && price)) {
      await takeFromUpstash(store.take, u, userId, u.plan!, callTokens(u.plan!, call), 1);
    }
  })();
  lease.renewing = work;
  try {
    await work;
  } finally {
    lease.renewing = null;
  }
}

/** Refreshes the plan and tops the lease up before they run out, without making a call wait. */
export function refreshAhead(book: Book, u: UserState, lease: Lease, call: CallShape, hold: number) {
  if (u.refreshing || lease.renewing || lease.closed) return;
  const stale = Date.now() - u.planAt >= book.settings.planTtlMs / 2;
  const low = lease.calls > 1 && lease.budget - lease.reserved < (hold * lease.calls) / 2;
  if (!stale && !low) return;
  u.refreshing = true;
  lease.active++;
  lease.granted = true;
  const topUp = low ? lease.calls : 0;
  book.store.lease({ ...leaseRequest(book, u, lease, { ...call }, topUp), ahead: true })
    .then((reply) => applyLease(book, u, lease, reply, call))
    .catch(() => {/* the next call that needs it renews in the foreground */})
    .finally(() => {
      u.refreshing = false;
      release(book, u, lease);
    });
}

/**
 * When the caller said more calls are coming (an agent run's next steps) and the limiter headroom is spent: takes
 * the headroom for them from Upstash now, while this call runs, as a renewal of the lease (the next call waits for
 * it instead of taking its own). Within the usual bounds (takeFromUpstash: never more than half of what the
 * window had left); a refusal is left to the next call's own renewal.
 */
export function takeHeadroomAhead(
  book: Book,
  u: UserState,
  lease: Lease,
  plan: PlanInfo,
  call: CallShape,
  callsComing: number,
) {
  const take = book.store.take;
  if (!take || lease.renewing || lease.closed || currentHeadroom(u, Date.now()).requests >= 1) return;
  const work = takeFromUpstash(take, u, lease.userId, plan, callTokens(plan, call), callsComing).catch(
    () => {},
  );
  lease.renewing = work;
  lease.active++;
  work.finally(() => {
    lease.renewing = null;
    release(book, u, lease);
  });
}
