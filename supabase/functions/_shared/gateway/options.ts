// The gateway's settings, from env: upstream timeouts (UPSTREAM_HEADERS_TIMEOUT_MS, default 30 s;
// UPSTREAM_TIMEOUT_MS, default 10 min), lease tuning (GATEWAY_LEASE_MAX_CALLS, GATEWAY_LEASE_IDLE_MS,
// GATEWAY_PLAN_TTL_MS; the book's defaults when unset), and whether Upstash counts the limits (when it is
// configured). A setting that is not a whole number in its bounds stops the boot.
import { env } from "../platform/env.ts";
import { redis } from "../platform/redis.ts";
import type { LeaseSettings } from "./admission/state.ts";

export type GatewayOptions = {
  /** Count limits in Upstash (true when UPSTASH_* are set) or in Postgres inside the admission call. */
  upstashLimits: boolean;
  /** Time allowed until the provider's response headers arrive. */
  headersTimeoutMs: number;
  /** Time allowed for the whole call, stream included. */
  totalTimeoutMs: number;
  /** Lease tuning (admission/); the defaults otherwise. */
  leases?: Partial<Omit<LeaseSettings, "holdSeconds">>;
};

export function gatewayOptionsFromEnv(): GatewayOptions {
  const leases: Partial<Omit<LeaseSettings, "holdSeconds">> = {};
  const maxCalls = env.integer("GATEWAY_LEASE_MAX_CALLS", { min: 1 });
  const idleMs = env.integer("GATEWAY_LEASE_IDLE_MS", { min: 0 });
  const planTtlMs = env.integer("GATEWAY_PLAN_TTL_MS", { min: 0 });
  if (maxCalls !== undefined) leases.maxCalls = maxCalls;
  if (idleMs !== undefined) leases.idleMs = idleMs;
  if (planTtlMs !== undefined) leases.planTtlMs = planTtlMs;
  return {
    upstashLimits: redis() !== null,
    headersTimeoutMs: env.integer("UPSTREAM_HEADERS_TIMEOUT_MS", { min: 1, default: 30_000 }),
    totalTimeoutMs: env.integer("UPSTREAM_TIMEOUT_MS", { min: 1, default: 600_000 }),
    leases,
  };
}
