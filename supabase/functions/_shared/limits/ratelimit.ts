// Rate limiting that is never switched off: fixed windows, counted in Upstash Redis when it is configured
// and answering, else in Postgres (private.rate_limit_hit). If neither store answers, the request is
// refused with 503 — a store failure is never a free pass.
//
//   const result = await limit(`chat:${user.id}`, { limit: 60, windowSeconds: 60 });
//   if (!result.allowed) throw rateLimited(result);          // 429 + Retry-After + X-RateLimit-*
//   return json(body, { headers: rateLimitHeaders(result) });
//
// Upstash: @upstash/ratelimit's fixedWindow, keys `aie:rl:<key>:<window>`, one instance per (limit,
// window). Its own timeout would *allow* the request, so it is off (timeout: 0) and ours (default 1 s)
// rejects instead, sending the hit to Postgres. After an Upstash failure, Postgres alone is used for a short
// cool-down (default 5 s), so an outage does not add the timeout to every request.
// Both stores align windows to the epoch, so resetAt is the same instant whichever store counted.
// X-RateLimit-Reset is in seconds until the window resets (as Retry-After), not an epoch.
// `createLimiter({ redis, sql })` is the core (tests pass their own clients); `limit()` uses the env's.
import { Ratelimit } from "npm:@upstash/ratelimit@2.2.0";
import type { Redis } from "npm:@upstash/redis@1.39.0";
import type { Database } from "../database.types.ts";
import { HttpError } from "../http/errors.ts";
import { db, type Sql } from "../platform/db.ts";
import { Timeout, withTimeout } from "../platform/deadline.ts";
import { createLogger, type Logger } from "../platform/log.ts";
import { redis } from "../platform/redis.ts";

export type RateLimitRule = {
  /** Hits allowed per window (>= 1). */
  limit: number;
  /** Window length in seconds (>= 1); windows are aligned to the epoch. */
  windowSeconds: number;
  /** Hits this request counts for (>= 1, default 1). */
  cost?: number;
};

export type RateLimitBackend = "upstash" | "postgres";

export type RateLimitResult = {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the current window ends, in ms since the epoch. */
  resetAt: number;
  backend: RateLimitBackend;
};

export type LimiterOptions = {
  /** Upstash client; null uses Postgres only. */
  redis: Redis | null;
  /** Postgres client with private.rate_limit_hit (the fallback, and the only store without Redis). */
  sql: Sql;
  /** Deadline for Upstash before falling back (default 1000 ms). */
  upstashTimeoutMs?: number;
  /** Deadline for Postgres before answering 503 (default 3000 ms). */
  postgresTimeoutMs?: number;
  /** After an Upstash failure, use Postgres only for this long (default 5000 ms; 0 = retry every time). */
  upstashCooldownMs?: number;
  log?: Logger;
};

export type Limiter = {
  limit(key: string, rule: RateLimitRule): Promise<RateLimitResult>;
};

export const KEY_PREFIX = "aie:rl";

/** The row private.rate_limit_hit returns; postgres.js hands its timestamptz `reset_at` over as a Date. */
type RateLimitHitRow =
  & Omit<Database["private"]["Functions"]["rate_limit_hit"]["Returns"][number], "reset_at">
  & { reset_at: Date };

function checkRule(key: string, rule: RateLimitRule): number {
  const cost = rule.cost ?? 1;
  const positive = (n: number) => Number.isSafeInteger(n) && n >= 1;
  if (!positive(rule.limit) || !positive(rule.windowSeconds) || !positive(cost)) {
    throw new RangeError("Rate limit rule: limit, windowSeconds and cost must be positive integers");
  }
  if (key.length === 0 || key.length > 256) throw new RangeError("Rate limit key must be 1-256 characters");
  return cost;
}

const errorText = (e: unknown) => e instanceof Error ? `${e.name}: ${e.message}` : String(e);

export function createLimiter(options: LimiterOptions): Limiter {
  const {
    sql,
    upstashTimeoutMs = 1000,
    postgresTimeoutMs = 3000,
    upstashCooldownMs = 5000,
    log = createLogger({ module: "ratelimit" }),
  } = options;
  const instances = new Map<string, Ratelimit>();
  let upstashDownUntil = 0;

  function ratelimiter(client: Redis, rule: RateLimitRule): Ratelimit {
    const id = `${rule.limit}/${rule.windowSeconds}`;
    let instance = instances.get(id);
    if (!instance) {
      instance = new Ratelimit({
        redis: client,
        limiter: Ratelimit.fixedWindow(rule.limit, `${rule.windowSeconds} s`),
        prefix: KEY_PREFIX,
        timeout: 0, // its timeout allows the request; ours below rejects
        analytics: false,
        // No in-process block cache: Redis stays the one source of truth, so a key an operator resets
        // (or a window that a test clears) is not still blocked by one function instance's memory.
        ephemeralCache: false,
      });
      instances.set(id, instance);
    }
    return instance;
  }

  async function viaUpstash(client: Redis, key: string, rule: RateLimitRule, cost: number) {
    const res = await withTimeout(
      ratelimiter(client, rule).limit(key, { rate: cost }),
      upstashTimeoutMs,
      "Upstash",
    );
    if (res.reason === "timeout") throw new Timeout("Upstash timed out");
    const result: RateLimitResult = {
      allowed: res.success,
      limit: rule.limit,
      remaining: Math.max(0, res.remaining),
      resetAt: res.reset,
      backend: "upstash",
    };
    return result;
  }

  async function viaPostgres(key: string, rule: RateLimitRule, cost: number): Promise<RateLimitResult> {
    const rows = await withTimeout(
      sql<RateLimitHitRow[]>`
        select * from private.rate_limit_hit(
          p_key => ${key}, p_limit => ${rule.limit}, p_window_seconds => ${rule.windowSeconds}, p_cost => ${cost}
        )`,
      postgresTimeoutMs,
      "Postgres",
    );
    const row = rows[0];
    if (!row) throw new Error("private.rate_limit_hit returned no row");
    return {
      allowed: row.allowed,
      limit: rule.limit,
      remaining: row.remaining,
      resetAt: new Date(row.reset_at).getTime(),
      backend: "postgres",
    };
  }

  return {
    async limit(key, rule) {
      const cost = checkRule(key, rule);
      let upstashError: unknown;
      if (options.redis && Date.now() >= upstashDownUntil) {
        try {
          return await viaUpstash(options.redis, key, rule, cost);
        } catch (e) {
          upstashError = e;
          upstashDownUntil = Date.now() + upstashCooldownMs;
          log.warn("rate limiter: Upstash failed, counting in Postgres", { error: errorText(e) });
        }
      }
      try {
        return await viaPostgres(key, rule, cost);
      } catch (e) {
        log.error("rate limiter unavailable", {
          upstash: options.redis
            ? (upstashError ? errorText(upstashError) : "cooling down")
            : "not configured",
          postgres: errorText(e),
        });
        throw new HttpError("service_unavailable", "Rate limiter unavailable");
      }
    },
  };
}

let defaultLimiter: Limiter | undefined;

/** Counts one request (or `cost`) against `key` with the env's stores: Upstash if configured, Postgres. */
export function limit(key: string, rule: RateLimitRule): Promise<RateLimitResult> {
  defaultLimiter ??= createLimiter({ redis: redis(), sql: db() });
  return defaultLimiter.limit(key, rule);
}

/** Whole seconds until the window resets (0 once it has). */
export function secondsUntilReset(result: RateLimitResult, now = Date.now()): number {
  return Math.max(0, Math.ceil((result.resetAt - now) / 1000));
}

/** X-RateLimit-Limit, -Remaining and -Reset (seconds until the window resets), for any response. */
export function rateLimitHeaders(result: RateLimitResult): Record<string, string> {
  return {
    "x-ratelimit-limit": String(result.limit),
    "x-ratelimit-remaining": String(result.remaining),
    "x-ratelimit-reset": String(secondsUntilReset(result)),
  };
}

/**
 * The same three headers for one of several limits a response answers to, named for it as OpenAI names its own:
 * X-RateLimit-Limit-Requests, X-RateLimit-Remaining-Tokens, …
 */
export function namedRateLimitHeaders(
  name: "requests" | "tokens",
  result: Pick<RateLimitResult, "limit" | "remaining" | "resetAt">,
): Record<string, string> {
  return {
    [`x-ratelimit-limit-${name}`]: String(result.limit),
    [`x-ratelimit-remaining-${name}`]: String(Math.max(0, result.remaining)),
    [`x-ratelimit-reset-${name}`]: String(secondsUntilReset(result as RateLimitResult)),
  };
}

/**
 * The 429 to throw when `result.allowed` is false, with Retry-After (>= 1 s) and the X-RateLimit headers (named for
 * the limit when `name` says which of several it is).
 */
export function rateLimited(result: RateLimitResult, name?: "requests" | "tokens"): HttpError {
  const retryAfter = Math.max(1, secondsUntilReset(result));
  const what = name === "requests"
    ? "Requests-per-minute limit"
    : name === "tokens"
    ? "Tokens-per-minute limit"
    : "Rate limit";
  return new HttpError("rate_limited", `${what} exceeded; retry in ${retryAfter} s`, {
    ...(name ? namedRateLimitHeaders(name, result) : rateLimitHeaders(result)),
    "retry-after": String(retryAfter),
  });
}
