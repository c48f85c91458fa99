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
// What may be stale, and for how long: the plan (limits, models) and the prices of the models called are re-read
// at least every PLAN_TTL_MS (1 s; in the background after half of it), so a user deleted or moved to a smaller
// plan is served at most that long from an instance's memory (a background read that finds the user gone
// forgets them at once). Limiter headroom belongs to the current fixed window and ends with it.
// A lease is given back (gateway_release, in the settlement batches) when its last call ends if it held one
// call, else after IDLE_MS without calls, and when the instance shuts down; one left by an instance that died
// expires with its hold (the call timeout + 2 min) and the hold sweep releases it.
import { HttpError } from "../errors.ts";
import { namedRateLimitHeaders, rateLimited, type RateLimitResult } from "../ratelimit.ts";

/** The plan as the last lease call read it. */
export type PlanInfo = {
  plan: string;
  allowedModels: string[];
  maxOutput: number;
  maxInput: number;
  rpm: number;
  tpm: number;
};

/** A model's prices and the platform rate as the last lease call read them (micro-dollars per million tokens). */
export type PriceInfo = {
  input: number;
  cacheWrite: number | null;
  output: number;
  reasoning: number | null;
  rate: number;
  requestFee: number;
  at: number;
};

/** What a call asks for, as the proxy describes it before admission. */
export type CallShape = {
  model: string;
  inputEstimate: number;
  requestedOutput: number | null;
  choices: number;
  inputUnbounded: boolean;
  searchContextSize: string | null;
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
  inputUnbounded: boolean;
  searchContextSize: string | null;
  calls: number;
  haveTokens: number;
  haveRequests: number;
  haveRateTokens: number;
  ahead: boolean;
  checkLimits: boolean;
};

/** The row private.gateway_lease returns. */
export type LeaseReply = {
  outcome: "ok" | "unauthorized" | "forbidden" | "unpriced" | "rate_limited" | "payment_required";
  message: string | null;
  plan: string | null;
  allowed_models: string[] | null;
  plan_max_output: number | null;
  plan_max_input: number | null;
  pricing_id: string | number | null;
  input_micro_usd_per_mtok: string | number | null;
  cache_write_micro_usd_per_mtok: string | number | null;
  output_micro_usd_per_mtok: string | number | null;
  reasoning_micro_usd_per_mtok: string | number | null;
  rate_micro_usd_per_mtok: string | number | null;
  request_fee_micro_usd: string | number | null;
  requests_per_minute: number | null;
  tokens_per_minute: number | null;
  granted_tokens: string | number | null;
  granted_requests: number | null;
  granted_rate_tokens: string | number | null;
  requests_remaining: number | null;
  rate_tokens_remaining: number | null;
  limit_value: number | null;
  limit_reset_at: Date | null;
  /** The user's balance (not the unreserved part): at or below zero, nothing more is admitted from memory. */
  total_balance?: string | number | null;
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
  planTtlMs: 1_000,
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
  /** The most the call can cost, in platform tokens (what it holds of the lease). */
  hold: number;
  limitHeaders: Record<string, string>;
  /** Called once when the call is over: its hold, the most it can have cost, comes off the lease. */
  end(): void;
  /**
   * Called when the settlement says what the call did cost (platform tokens) and the user's balance after it: the
   * lease gets back what the hold did not need, or gives up an overrun; a balance at or below zero ends
   * admission from memory (the next call renews, and is refused).
   */
  settled(costTokens: number, balance: number): void;
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
  /** Prices by model and search context size (`model|size`). */
  prices: Map<string, PriceInfo>;
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

/** The call's output cap: what it asks for, at most the plan's. */
export const maxOutputOf = (plan: PlanInfo, call: CallShape) =>
  Math.min(call.requestedOutput || plan.maxOutput, plan.maxOutput);

/** The input a call is held for: its estimate, or the plan's max input when it cannot be measured. */
const inputOf = (plan: PlanInfo, call: CallShape) =>
  call.inputUnbounded ? Math.max(call.inputEstimate, plan.maxInput) : Math.max(call.inputEstimate, 0);

/** The raw tokens a call can use (what the tokens-per-minute limit counts). */
export const callTokens = (plan: PlanInfo, call: CallShape) =>
  inputOf(plan, call) + maxOutputOf(plan, call) * Math.max(call.choices, 1);

/**
 * The most a call can cost, in platform tokens: SQL's private._hold_tokens, computed here for calls admitted from
 * memory (exact integers; a table-driven test holds the two together): the input at the dearer of the input and
 * cache-write prices, every choice's max output at the dearer of the output and reasoning prices, the request
 * fee, all divided by the rate and rounded up.
 */
export function holdTokens(plan: PlanInfo, price: Omit<PriceInfo, "at">, call: CallShape): number {
  const inputPrice = BigInt(Math.max(price.input, price.cacheWrite ?? price.input));
  const outputPrice = BigInt(Math.max(price.output, price.reasoning ?? price.output));
  const numerator = BigInt(inputOf(plan, call)) * inputPrice +
    BigInt(maxOutputOf(plan, call)) * BigInt(Math.max(call.choices, 1)) * outputPrice +
    BigInt(price.requestFee) * 1_000_000n;
  const rate = BigInt(price.rate);
  return Number((numerator + rate - 1n) / rate);
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
        prices: new Map(),
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
  const priceKey = (call: CallShape) => `${call.model}|${call.searchContextSize ?? ""}`;
  /** The model's prices, if read within the plan's TTL. */
  const priceOf = (u: UserState, call: CallShape, now: number) => {
    const price = u.prices.get(priceKey(call));
    return price && now - price.at < settings.planTtlMs ? price : null;
  };

  /** The headroom of the current window (a past window's is gone). */
  function headroom(u: UserState, now: number): Headroom {
    if (now >= u.headroom.windowEnd) u.headroom = { ...EMPTY_HEADROOM };
    return u.headroom;
  }

  /** How many calls' worth to ask for: grown for a user who keeps coming back, within the plan's limits. */
  function callsToLease(u: UserState, plan: PlanInfo | null, tokens: number): number {
    if (!plan) return 1;
    const byRequests = Math.max(1, Math.floor(plan.rpm / 8));
    const byTokens = Math.max(1, Math.floor(plan.tpm / 8 / Math.max(tokens, 1)));
    return Math.max(1, Math.min(u.calls, byRequests, byTokens));
  }

  function rememberPlan(u: UserState, reply: LeaseReply, call: CallShape | null) {
    if (reply.outcome === "unauthorized") {
      // The user is gone: nothing of theirs is admitted from memory any more.
      u.plan = null;
      u.prices.clear();
      return;
    }
    if (reply.plan === null) return;
    u.plan = {
      plan: reply.plan,
      allowedModels: reply.allowed_models ?? [],
      maxOutput: reply.plan_max_output!,
      maxInput: reply.plan_max_input!,
      rpm: reply.requests_per_minute!,
      tpm: reply.tokens_per_minute!,
    };
    u.planAt = Date.now();
    if (call && reply.pricing_id !== null && reply.rate_micro_usd_per_mtok !== null) {
      const optional = (v: string | number | null) => (v === null ? null : Number(v));
      u.prices.set(priceKey(call), {
        input: n(reply.input_micro_usd_per_mtok),
        cacheWrite: optional(reply.cache_write_micro_usd_per_mtok),
        output: n(reply.output_micro_usd_per_mtok),
        reasoning: optional(reply.reasoning_micro_usd_per_mtok),
        rate: n(reply.rate_micro_usd_per_mtok),
        requestFee: n(reply.request_fee_micro_usd),
        at: Date.now(),
      });
    } else if (call && reply.outcome === "unpriced") {
      u.prices.delete(priceKey(call));
    }
  }

  function applyLease(u: UserState, lease: Lease, reply: LeaseReply, call: CallShape | null) {
    rememberPlan(u, reply, call);
    lease.budget += n(reply.granted_tokens);
    // Another instance's call may have taken the balance to zero or below: this lease admits nothing more (its
    // hold goes back when it closes). Read at every renewal and every background refresh, so within a second.
    if (reply.total_balance !== undefined && reply.total_balance !== null && n(reply.total_balance) <= 0) {
      lease.budget = 0;
    }
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
      inputUnbounded: call?.inputUnbounded ?? false,
      searchContextSize: call?.searchContextSize ?? null,
      calls,
      haveTokens: Math.max(0, lease.budget - lease.reserved),
      haveRequests: store.take ? 0 : h.requests,
      haveRateTokens: store.take ? 0 : h.tokens,
      ahead: call === null,
      checkLimits: store.take === null,
    };
  }

  /** Takes requests and tokens from Upstash for `calls` calls of `tokens` tokens; throws the 429 if refused. */
  async function takeFromUpstash(
    u: UserState,
    userId: string,
    plan: PlanInfo,
    tokens: number,
    calls: number,
  ) {
    const take = store.take!;
    let h = headroom(u, Date.now());
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
    const price = fresh ? priceOf(u, call, now) : null;
    const calls = callsToLease(u, fresh, fresh ? callTokens(fresh, call) : 0);
    const userId = lease.userId;
    const work = (async () => {
      if (fresh && price && store.take) {
        // Limits first: a call the limiter refuses never holds tokens.
        await takeFromUpstash(u, userId, fresh, callTokens(fresh, call), calls);
        if (lease.budget - lease.reserved >= holdTokens(fresh, price, call)) return;
      }
      lease.granted = true; // from now on the database may hold tokens under this id (even if the reply is lost)
      const reply = await store.lease(leaseRequest(u, lease, call, calls));
      applyLease(u, lease, reply, call);
      lease.calls = calls;
      if (reply.outcome !== "ok") throw refusal(reply);
      if (store.take && !(fresh && price)) {
        await takeFromUpstash(u, userId, u.plan!, callTokens(u.plan!, call), 1);
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
  function refreshAhead(u: UserState, lease: Lease, call: CallShape, hold: number) {
    if (u.refreshing || lease.renewing || lease.closed) return;
    const stale = Date.now() - u.planAt >= settings.planTtlMs / 2;
    const low = lease.calls > 1 && lease.budget - lease.reserved < (hold * lease.calls) / 2;
    if (!stale && !low) return;
    u.refreshing = true;
    lease.active++;
    lease.granted = true;
    const topUp = low ? lease.calls : 0;
    store.lease({ ...leaseRequest(u, lease, { ...call }, topUp), ahead: true })
      .then((reply) => applyLease(u, lease, reply, call))
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

  /** Both limits a call answers to, each named (X-RateLimit-*-Requests, X-RateLimit-*-Tokens). */
  function limitHeaders(u: UserState, plan: PlanInfo): Record<string, string> {
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
          const price = plan && allows(plan, call.model) ? priceOf(u, call, now) : null;
          if (plan && price) {
            const hold = holdTokens(plan, price, call);
            const h = headroom(u, now);
            const rateHold = Math.min(callTokens(plan, call), plan.tpm);
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
                maxOutput: maxOutputOf(plan, call),
                hold,
                limitHeaders: limitHeaders(u, plan),
                end() {
                  if (ended) return;
                  ended = true;
                  lease.reserved -= hold;
                  lease.budget -= hold;
                  release(u, lease);
                },
                settled(cost: number, balance: number) {
                  if (lease.closed) return;
                  // As the database's lease row: what was leased minus what settled calls cost, never below zero.
                  lease.budget = Math.max(0, lease.budget + hold - Math.max(0, cost));
                  if (balance <= 0) lease.budget = 0;
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
