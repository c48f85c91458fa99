// What the lease book asks of its store, and the store the gateway uses: leases kept in the database (one
// private.gateway_lease call per renewal, given up after ADMISSION_DEADLINE_MS with a 503), the limits counted in
// Upstash when it is configured (else by the same SQL call), and leases given back with the settlements.
import type { Database } from "../../database.types.ts";
import { HttpError, toHttpError } from "../../http/errors.ts";
import { limit, type RateLimitResult } from "../../limits/ratelimit.ts";
import { db } from "../../platform/db.ts";
import { Timeout, withTimeout } from "../../platform/deadline.ts";
import type { ProviderAdapter } from "../providers/adapter.ts";
import { closeLease } from "../settlement/batch.ts";

/** What the book asks a lease for (sent to private.gateway_lease as a private.lease_request). */
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

type LeaseGrant = Database["private"]["CompositeTypes"]["lease_grant"];
/** Its integer and text columns the book reads. */
type PlainColumn =
  | "message"
  | "plan"
  | "plan_max_output"
  | "plan_max_input"
  | "requests_per_minute"
  | "tokens_per_minute"
  | "granted_requests"
  | "requests_remaining"
  | "rate_tokens_remaining"
  | "limit_value";
/** Its bigint columns the book reads. */
type BigintColumn =
  | "pricing_id"
  | "input_micro_usd_per_mtok"
  | "cache_write_micro_usd_per_mtok"
  | "output_micro_usd_per_mtok"
  | "reasoning_micro_usd_per_mtok"
  | "rate_micro_usd_per_mtok"
  | "request_fee_micro_usd"
  | "granted_tokens"
  | "granted_rate_tokens"
  | "total_balance";

/**
 * private.gateway_lease's answer (a private.lease_grant), from the generated type, narrowed where postgres.js and
 * the function say more: `outcome` is one of these literals; every other column may be null (a refusal fills only
 * what it knows); bigints may arrive as strings (postgres.js returns int8 as text); `limit_reset_at` is parsed
 * into a Date. `total_balance` is the user's balance (not the unreserved part): at or below zero, nothing more is
 * admitted from memory.
 */
export type LeaseReply =
  & { outcome: "ok" | "unauthorized" | "forbidden" | "unpriced" | "rate_limited" | "payment_required" }
  & { [K in PlainColumn]: LeaseGrant[K] | null }
  & { [K in BigintColumn]: LeaseGrant[K] | string | null }
  & { limit_reset_at: Date | null };

/** A bigint (or integer) column of a reply as a number; null and missing are 0. */
export const toNumber = (v: string | number | null | undefined) => Number(v ?? 0);

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

/** How long admission may wait for a lease renewal (SQL, and Upstash) before answering 503. */
export const ADMISSION_DEADLINE_MS = 3_000;

/** Leases kept in the database (private.gateway_lease); the limits in Upstash when it is configured. */
export function leaseStore(
  adapter: ProviderAdapter,
  options: { upstashLimits: boolean },
  holdSeconds: number,
): LeaseStore {
  return {
    async lease(r) {
      // Fails fast when the database does not answer (503), instead of queueing in the driver for the outage.
      const request: Database["private"]["CompositeTypes"]["lease_request"] = {
        user_id: r.userId,
        provider: adapter.provider,
        lease_id: r.leaseId,
        model: r.model,
        input_estimate: r.inputEstimate,
        requested_output: r.requestedOutput,
        choices: r.choices,
        input_unbounded: r.inputUnbounded,
        search_context_size: r.searchContextSize,
        calls: r.calls,
        have_tokens: r.haveTokens,
        have_requests: r.haveRequests,
        have_rate_tokens: r.haveRateTokens,
        ahead: r.ahead,
        check_limits: r.checkLimits,
        hold_seconds: holdSeconds,
      };
      const [row] = await withTimeout(
        db()<LeaseReply[]>`
        select outcome, message, plan, plan_max_output, plan_max_input, requests_per_minute, tokens_per_minute,
               granted_tokens, granted_requests, granted_rate_tokens, requests_remaining, rate_tokens_remaining,
               limit_value, limit_reset_at, pricing_id, input_micro_usd_per_mtok, cache_write_micro_usd_per_mtok,
               output_micro_usd_per_mtok, reasoning_micro_usd_per_mtok, rate_micro_usd_per_mtok,
               request_fee_micro_usd, total_balance
          from private.gateway_lease(jsonb_populate_record(null::private.lease_request, ${
          JSON.stringify(request)
        }::text::jsonb))`,
        ADMISSION_DEADLINE_MS,
        "admission",
      ).catch((e) => {
        throw e instanceof HttpError
          ? e
          : toHttpError(e).status >= 500 || e instanceof Timeout
          ? new HttpError("service_unavailable", "The gateway cannot reach its database; try again shortly")
          : e;
      });
      return row;
    },
    take: options.upstashLimits
      ? (key, max, cost) => limit(key, { limit: max, windowSeconds: 60, cost: Math.min(cost, max) })
      : null,
    close: closeLease,
  };
}
