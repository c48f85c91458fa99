// The plan and prices an instance admits with: what the last lease call read for a user, trusted for
// settings.planTtlMs (1 s by default) and then read again. A reply that says the user is gone forgets them at
// once; a model found unpriced, or not on the plan, forgets its price. Which models a plan may call is decided by
// private.gateway_lease alone: a model's prices are kept only from a lease call that admitted it, so a model is
// admitted from memory only within the TTL of a lease answer that said ok for it.
import type { CallShape, PriceInfo } from "./hold.ts";
import type { UserState } from "./state.ts";
import { type LeaseReply, toNumber } from "./store.ts";

/** Prices are kept by model and search context size (Perplexity's request fee depends on it). */
const priceKey = (call: CallShape) => `${call.model}|${call.searchContextSize ?? ""}`;

/** The plan, if read within the TTL. */
export const freshPlan = (u: UserState, now: number, ttlMs: number) =>
  u.plan !== null && now - u.planAt < ttlMs ? u.plan : null;

/** The model's prices, if read within the TTL. */
export function freshPrice(u: UserState, call: CallShape, now: number, ttlMs: number): PriceInfo | null {
  const price = u.prices.get(priceKey(call));
  return price && now - price.at < ttlMs ? price : null;
}

/** Keeps what a lease call read: the plan, and the prices of the call's model (or forgets them). */
export function rememberPlan(u: UserState, reply: LeaseReply, call: CallShape | null) {
  if (reply.outcome === "unauthorized") {
    // The user is gone: nothing of theirs is admitted from memory any more.
    u.plan = null;
    u.prices.clear();
    return;
  }
  if (reply.plan === null) return;
  u.plan = {
    plan: reply.plan,
    maxOutput: reply.plan_max_output!,
    maxInput: reply.plan_max_input!,
    rpm: reply.requests_per_minute!,
    tpm: reply.tokens_per_minute!,
  };
  u.planAt = Date.now();
  if (call && reply.pricing_id !== null && reply.rate_micro_usd_per_mtok !== null) {
    const optional = (v: string | number | null) => (v === null ? null : Number(v));
    u.prices.set(priceKey(call), {
      input: toNumber(reply.input_micro_usd_per_mtok),
      cacheWrite: optional(reply.cache_write_micro_usd_per_mtok),
      output: toNumber(reply.output_micro_usd_per_mtok),
      reasoning: optional(reply.reasoning_micro_usd_per_mtok),
      rate: toNumber(reply.rate_micro_usd_per_mtok),
      requestFee: toNumber(reply.request_fee_micro_usd),
      at: Date.now(),
    });
  } else if (call && (reply.outcome === "unpriced" || reply.outcome === "forbidden")) {
    u.prices.delete(priceKey(call));
  }
}
