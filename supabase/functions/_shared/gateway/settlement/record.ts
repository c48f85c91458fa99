// What a settlement is about: one call's usage record (the payload of private.gateway_settle and of the outboxes),
// where it ended up, and how long each database step may take before the record moves down the chain.
import type { Provider } from "../providers/adapter.ts";

export type UsageRecord = {
  request_id: string;
  user_id: string;
  provider: Provider;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  /** Perplexity's search context size (its request fee). */
  search_context_size: string | null;
  status: "ok" | "upstream_error" | "cancelled" | "timeout";
  http_status: number | null;
  latency_ms: number;
  upstream_request_id: string | null;
  tokens_estimated: boolean;
  /** The lease the call was admitted under (admission/), and when: its price is the one in force then. */
  lease_id: string | null;
  admitted_at: string | null;
};

/** Where a record ended up, and (when settled) what it cost in platform tokens and the balance after. */
export type Recorded =
  | { outcome: "settled"; costTokens: number; balance: number }
  | { outcome: "outbox" | "redis" | "log" };

/** How long a settlement (or an outbox write) may take to commit before the record moves down the chain. */
export const SETTLE_DEADLINE_MS = 3_000;

/** An error's message, for a log field. */
export const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
