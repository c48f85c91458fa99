// Admission from memory: budget leases.
//
// A function instance reserves tokens for several calls of one user at once (private.gateway_lease: an
// ordinary hold, under the lease's id, so no other instance can spend them and a balance never goes below
// zero), takes the limiter headroom for those calls from Upstash (or, without Upstash, in the same SQL call),
// and then admits that user's next calls here, without a round trip, until the lease runs short. Each call
// settles on its own (usage.ts) and takes what it used off the lease.
//
// How big a lease is: one call at first. A user who comes back within GROW_WINDOW_MS of the last renewal gets
// twice as many calls' worth the next time (up to MAX_CALLS), and one who does not starts again at one. It is
// never more than an eighth of the plan's per-minute limits, and never more than a quarter of the
// unreserved balance beyond the call that asked (gateway_lease), so a user with a small plan or balance is
// admitted call by call, exactly as without leases.
//
// What may be stale, and for how long: the plan (limits, models) is re-read at least every PLAN_TTL_MS (in
// the background after half of it). Limiter headroom belongs to the current fixed window and ends with it.
// A lease is given back (gateway_release, in the settlement batches) when its last call ends if it held one
// call, else after IDLE_MS without calls, and when the instance shuts down; one left by an instance that died
// expires with its hold (the call timeout + 2 min) and the hold sweep releases it.
import { HttpError } from "../errors.ts";
import { rateLimited, type RateLimitResult } from "../ratelimit.ts";

/** The plan as the last lease call read it. */
export type PlanInfo = {
  plan: string;
  allowedModels: string[];
  maxOutput: number;
  rpm: number;
  tpm: number;
};

/** What a call asks for, as the proxy describes it before admission. */
export type CallShape = {
  model: string;
  inputEstimate: number;
  requestedOutput: number | null;
  choices: number;
};

/** The arguments of private.gateway_lease. */
export type LeaseRequest = {
  userId: string;
  leaseId: string;
  /** null when topping up ahead of need (no call to check the model of). */
  model: string | null;
  inputEstimate: number;
  requestedOutput: number | null;
  choices: number;
  calls: number;
  haveTokens: number;
  haveRequests: number;
  haveRateTokens: number;
  ahead: boolean;
  checkLimits: boolean;
};

/** The row private.gateway_lease returns. */
export type LeaseReply = {
  outcome: "ok" | "unauthorized" | "forbidden" | "rate_limited" | "payment_required";
  message: string | null;
  plan: string | null;
  allowed_models: string[] | null;
  plan_max_output: number | null;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
  granted_tokens: string | number | null;
  granted_requests: number | null;
  granted_rate_tokens: string | number | null;
  requests_remaining: number | null;
  rate_tokens_remaining: number | null;
  limit_value: number | null;
  limit_reset_at: Date | null;
};

export type LeaseStore = {
  /** private.gateway_lease. */
  lease(request: LeaseRequest): Promise<LeaseReply>;
  /**
   * Takes `cost` from one Upstash window (`gw:rpm:<user>` or `gw:tpm:<user>`); null when the limits are counted
   * in Postgres (by `lease`).
   */
  take: ((key: string, limit: number, cost: number) => Promise<RateLimitResult>) | null;
  /** Gives a lease back: queued with the settlements, after the calls it admitted. */
  close(leaseId: string, userId: string): void;
};

export type LeaseSettings = {
  planTtlMs: number;
  idleMs: number;
  growWindowMs: number;
  maxCalls: number;
  /** Set on every hold (the call timeout + 2 min): only an instance that died leaves a lease to the sweep. */
  holdSeconds: number;
};

export const DEFAULT_LEASE_SETTINGS: Omit<LeaseSettings, "holdSeconds"> = {
  planTtlMs: 2_000,
  idleMs: 1_000,
  growWindowMs: 1_000,
  maxCalls: 512,
};

/** A call admitted under a lease. `end` is called once, with the tokens it used, when the call is over. */
export type Ticket = {
  leaseId: string;
  admittedAt: Date;
  /** The call's max output tokens, capped by the plan. */
  maxOutput: number;
  hold: number;
  limitHeaders: Record<string, string>;
  end(usedTokens: number): void;
};

const WINDOW_SECONDS = 60;

class Lease {
  readonly id: string;
  readonly userId: string;
  /** Whether any top-up granted tokens (the database then holds a row to give back). */
  granted = false;
  /** Tokens granted and not yet used: the holds of calls in flight included. */
  budget = 0;
  /** The holds of calls in flight. */
  reserved = 0;
  /** Calls admitted and not ended, and admissions waiting on this lease. */
  active = 0;
  /** Calls' worth the last top-up asked for (1: this lease is given back as soon as its calls end). */
  calls = 1;
  renewing: Promise<void> | null = null;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  closed = false;

  constructor(instance: string, userId: string, seq: number) {
    this.id = `lease:${instance}:${userId}:${seq}`;
    this.userId = userId;
  }
}

/** Limiter headroom taken for this instance in the current window, and what the store had left after. */
type Headroom = {
  windowEnd: number;
  requests: number;
  tokens: number;
  storeRequests: number | null;
  storeTokens: number | null;
  /** When the store's counts were read (other instances take from the same windows meanwhile). */
  storeSeenAt: number;
};

const EMPTY_HEADROOM: Headroom = {
  windowEnd: 0,
  requests: 0,
  tokens: 0,
  storeRequests: null,
  storeTokens: null,
  storeSeenAt: 0,
};
/** How long what the store had left is trusted to size a take beyond the need. */
const STORE_COUNT_TTL_MS = 1_000;

type UserState = {
  plan: PlanInfo | null;
  planAt: number;
  refreshing: boolean;
  lease: Lease;
  headroom: Headroom;
  lastRenewalAt: number;
  calls: number;
};

const n = (v: string | number | null | undefined) => Number(v ?? 0);

/** The 4xx of a lease call that refused. */
function refusal(reply: LeaseReply): HttpError {
  const message = reply.message ?? "Refused";
  switch (reply.outcome) {
    case "unauthorized":
      return new HttpError("unauthorized", "Unknown user", { "www-authenticate": "Bearer" });
    case "forbidden":
      return new HttpError("forbidden", message);
    case "payment_required":
      return new HttpError("payment_required", message);
    default:
      return rateLimited({
        allowed: false,
        limit: reply.limit_value ?? 0,
        remaining: 0,
        resetAt: reply.limit_reset_at?.getTime() ?? Date.now() + WINDOW_SECONDS * 1000,
        backend: "postgres",
      });
  }
}

export function createLeaseBook(store: LeaseStore, settings: LeaseSettings) {
  const instance = crypto.randomUUID();
  const users = new Map<string, UserState>();
  const MAX_USERS = 10_000;
  let leaseSeq = 0; // lease ids are never reused in an instance
  let shuttingDown = false;

  function userState(userId: string): UserState {
    let u = users.get(userId);
    if (!u) {
      if (users.size >= MAX_USERS) forgetIdleUser();
      u = {
        plan: null,
        planAt: 0,
        refreshing: false,
        lease: new Lease(instance, userId, ++leaseSeq),
        headroom: { ...EMPTY_HEADROOM },
        lastRenewalAt: 0,
        calls: 1,
      };
      users.set(userId, u);
    }
    return u;
  }

  /** Forgets one user with nothing running and no lease to give back (the map is a cache, not a record). */
  function forgetIdleUser() {
    for (const [id, u] of users) {
      if (u.lease.active === 0 && !u.lease.renewing && (!u.lease.granted || u.lease.closed)) {
        users.delete(id);
        return;
      }
    }
  }

  const allows = (plan: PlanInfo, model: string) =>
    plan.allowedModels.length === 0 || plan.allowedModels.includes(model);
  const holdOf = (plan: PlanInfo, call: CallShape) =>
    call.inputEstimate + Math.min(call.requestedOutput || plan.maxOutput, plan.maxOutput) * call.choices;

  /** The headroom of the current window (a past window's is gone). */
  function headroom(u: UserState, now: number): Headroom {
    if (now >= u.headroom.windowEnd) u.headroom = { ...EMPTY_HEADROOM };
    return u.headroom;
  }

  /** How many calls' worth to ask for: grown for a user who keeps coming back, within the plan's limits. */
  function callsToLease(u: UserState, plan: PlanInfo | null, hold: number): number {
    if (!plan) return 1;
    const byRequests = Math.max(1, Math.floor(plan.rpm / 8));
    const byTokens = Math.max(1, Math.floor(plan.tpm / 8 / Math.max(hold, 1)));
    return Math.max(1, Math.min(u.calls, byRequests, byTokens));
  }

  function rememberPlan(u: UserState, reply: LeaseReply) {
    if (reply.plan === null) return;
    u.plan = {
      plan: reply.plan,
      allowedModels: reply.allowed_models ?? [],
      maxOutput: reply.plan_max_output!,
      rpm: reply.requests_per_minute!,
      tpm: reply.tokens_per_minute!,
    };
    u.planAt = Date.now();
  }

  function applyLease(u: UserState, lease: Lease, reply: LeaseReply) {
    rememberPlan(u, reply);
    lease.budget += n(reply.granted_tokens);
    if (!store.take && reply.limit_reset_at) {
      const reset = reply.limit_reset_at.getTime();
      // Headroom belongs to its window: what is left of another (clocks differ) is not carried over.
      if (u.headroom.windowEnd !== reset) u.headroom = { ...EMPTY_HEADROOM };
      const h = u.headroom;
      h.windowEnd = reset;
      h.storeSeenAt = Date.now();
      h.requests += n(reply.granted_requests);
      h.tokens += n(reply.granted_rate_tokens);
      if (reply.requests_remaining !== null) h.storeRequests = reply.requests_remaining;
      if (reply.rate_tokens_remaining !== null) h.storeTokens = reply.rate_tokens_remaining;
    }
  }

  function leaseRequest(u: UserState, lease: Lease, call: CallShape | null, calls: number): LeaseRequest {
    const h = headroom(u, Date.now());
    return {
      userId: lease.userId,
      leaseId: lease.id,
      model: call?.model ?? null,
      inputEstimate: call?.inputEstimate ?? 0,
      requestedOutput: call?.requestedOutput ?? null,
      choices: call?.choices ?? 1,
      calls,
      haveTokens: Math.max(0, lease.budget - lease.reserved),
      haveRequests: store.take ? 0 : h.requests,
      haveRateTokens: store.take ? 0 : h.tokens,
      ahead: call === null,
      checkLimits: store.take === null,
    };
  }

  /** Takes requests and tokens from Upstash for `calls` calls of `hold` tokens; throws the 429 if refused. */
  async function takeFromUpstash(u: UserState, userId: string, plan: PlanInfo, hold: number, calls: number) {
    const take = store.take!;
    let h = headroom(u, Date.now());
    const rateHold = Math.min(hold, plan.tpm);
    // Never ask for more than half of what the window had left at a recent look (Upstash counts a refused take
    // in full, which would refuse this user's next calls too); a window not seen lately: this call only.
    const upTo = (need: number, want: number, left: number | null) =>
      left === null || Date.now() - h.storeSeenAt > STORE_COUNT_TTL_MS
        ? need
        : Math.max(need, Math.min(want, Math.floor(left / 2)));
    /** Takes `cost` from one window; the headroom (of the window Upstash answered for) grows by it. */
    const takeWindow = async (window: "rpm" | "tpm", cost: number) => {
      const r = await take(`gw:${window}:${userId}`, window === "rpm" ? plan.rpm : plan.tpm, cost);
      if (!r.allowed) throw rateLimited(r);
      const now = headroom(u, Date.now());
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

  /** One renewal at a time per lease; waiting admissions retry after it. Throws the refusal, if any. */
  async function renew(u: UserState, lease: Lease, call: CallShape) {
    const now = Date.now();
    u.calls = now - u.lastRenewalAt < settings.growWindowMs ? Math.min(u.calls * 2, settings.maxCalls) : 1;
    u.lastRenewalAt = now;
    const fresh = u.plan !== null && now - u.planAt < settings.planTtlMs && allows(u.plan, call.model)
      ? u.plan
      : null;
    const calls = callsToLease(u, fresh, fresh ? holdOf(fresh, call) : 0);
    const userId = lease.userId;
    const work = (async () => {
      if (fresh && store.take) {
        // Limits first: a call the limiter refuses never holds tokens.
        const hold = holdOf(fresh, call);
        await takeFromUpstash(u, userId, fresh, hold, calls);
        if (lease.budget - lease.reserved >= hold) return;
      }
      lease.granted = true; // from now on the database may hold tokens under this id (even if the reply is lost)
      const reply = await store.lease(leaseRequest(u, lease, call, calls));
      applyLease(u, lease, reply);
      lease.calls = calls;
      if (reply.outcome !== "ok") throw refusal(reply);
      if (store.take && !fresh) await takeFromUpstash(u, userId, u.plan!, holdOf(u.plan!, call), 1);
    })();
    lease.renewing = work;
    try {
      await work;
    } finally {
      lease.renewing = null;
    }
  }

  /** Refreshes the plan and tops the lease up before they run out, without making a call wait. */
  function refreshAhead(u: UserState, lease: Lease, call: CallShape, hold: number) {
    if (u.refreshing || lease.renewing || lease.closed) return;
    const stale = Date.now() - u.planAt >= settings.planTtlMs / 2;
    const low = lease.calls > 1 && lease.budget - lease.reserved < (hold * lease.calls) / 2;
    if (!stale && !low) return;
    u.refreshing = true;
    lease.active++;
    lease.granted = true;
    const topUp = low ? lease.calls : 0;
    store.lease({ ...leaseRequest(u, lease, { ...call }, topUp), model: null, ahead: true })
      .then((reply) => applyLease(u, lease, reply))
      .catch(() => {/* the next call that needs it renews in the foreground */})
      .finally(() => {
        u.refreshing = false;
        release(u, lease);
      });
  }

  /** Gives a lease back if nothing runs on it; the user's next call opens a new one. */
  function close(u: UserState, lease: Lease) {
    if (lease.active > 0 || lease.renewing || lease.closed) return;
    clearTimeout(lease.idleTimer);
    lease.closed = true;
    if (u.lease === lease) u.lease = new Lease(instance, lease.userId, ++leaseSeq);
    if (lease.granted) store.close(lease.id, lease.userId);
  }

  /** Called when a lease's activity drops: gives it back once nothing runs on it any more. */
  function release(u: UserState, lease: Lease) {
    lease.active--;
    if (lease.active > 0 || lease.renewing || lease.closed) return;
    clearTimeout(lease.idleTimer);
    if (lease.calls <= 1 || shuttingDown) close(u, lease);
    else lease.idleTimer = setTimeout(() => close(u, lease), settings.idleMs);
  }

  function limitHeaders(u: UserState, plan: PlanInfo): Record<string, string> {
    const h = u.headroom;
    const remaining = Math.max(0, (h.storeRequests ?? 0) + h.requests);
    return {
      "x-ratelimit-limit": String(plan.rpm),
      "x-ratelimit-remaining": String(remaining),
      "x-ratelimit-reset": String(Math.max(0, Math.ceil((h.windowEnd - Date.now()) / 1000))),
    };
  }

  return {
    /** Admits a call of `userId`, from the lease if it can, else after a renewal; throws the refusal. */
    async admit(userId: string, call: CallShape): Promise<Ticket> {
      const u = userState(userId);
      // The lease this admission counts as active on while it waits (so it is not given back meanwhile).
      let waiting: Lease | null = null;
      try {
        for (;;) {
          const lease = u.lease;
          if (waiting !== lease) {
            if (waiting) release(u, waiting);
            lease.active++;
            waiting = lease;
          }
          const now = Date.now();
          const plan = u.plan !== null && now - u.planAt < settings.planTtlMs ? u.plan : null;
          if (plan && allows(plan, call.model)) {
            const hold = holdOf(plan, call);
            const h = headroom(u, now);
            const rateHold = Math.min(hold, plan.tpm);
            if (h.requests >= 1 && h.tokens >= rateHold && lease.budget - lease.reserved >= hold) {
              h.requests -= 1;
              h.tokens -= rateHold;
              lease.reserved += hold;
              clearTimeout(lease.idleTimer);
              waiting = null; // the ticket keeps the lease active until the call ends
              refreshAhead(u, lease, call, hold);
              let ended = false;
              return {
                leaseId: lease.id,
                admittedAt: new Date(now),
                maxOutput: Math.min(call.requestedOutput || plan.maxOutput, plan.maxOutput),
                hold,
                limitHeaders: limitHeaders(u, plan),
                end(used: number) {
                  if (ended) return;
                  ended = true;
                  lease.reserved -= hold;
                  lease.budget = Math.max(0, lease.budget - Math.max(0, used));
                  release(u, lease);
                },
              };
            }
          }
          if (lease.renewing) await lease.renewing.catch(() => {});
          else await renew(u, lease, call);
        }
      } finally {
        if (waiting) release(u, waiting);
      }
    },

    /**
     * The instance is shutting down: leases with nothing running go back now, the others as soon as their
     * last call ends.
     */
    closeAll() {
      shuttingDown = true;
      for (const u of users.values()) close(u, u.lease);
    },
  };
}

export type LeaseBook = ReturnType<typeof createLeaseBook>;
