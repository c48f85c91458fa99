// What a settlement is about: one call's usage record (the payload of private.gateway_settle and of the outboxes),
// where it ended up, and how long each database step may take before the record moves down the chain.
import type { Database } from "../../database.types.ts";
import type { Provider } from "../providers/adapter.ts";

/** The generated private.usage_record: every field nullable, as composite type attributes are. */
type UsageRecordRow = Database["private"]["CompositeTypes"]["usage_record"];
/** Fields the gateway always fills. */
type Filled =
  | "request_id"
  | "user_id"
  | "model"
  | "input_tokens"
  | "cached_input_tokens"
  | "cache_write_tokens"
  | "output_tokens"
  | "reasoning_tokens"
  | "latency_ms"
  | "tokens_estimated";

/**
 * One call's usage record as the gateway sends it (JSON) to private.gateway_settle, gateway_batch_settle and the
 * outboxes: private.usage_record (its attribute comments say what each field is), narrowed to what the gateway
 * always fills and to the literals it sends.
 */
export type UsageRecord =
  & { [K in Filled]: NonNullable<UsageRecordRow[K]> }
  & Pick<
    UsageRecordRow,
    | "search_context_size"
    | "http_status"
    | "upstream_request_id"
    | "lease_id"
    | "admitted_at"
    | "session_id"
    | "run_id"
  >
  & {
    provider: Provider;
    status: "ok" | "upstream_error" | "cancelled" | "timeout";
  };

/** Where a record ended up, and (when settled) what it cost in platform tokens and the balance after. */
export type Recorded =
  | { outcome: "settled"; costTokens: number; balance: number }
  | { outcome: "outbox" | "redis" | "log" };

/** How long a settlement (or an outbox write) may take to commit before the record moves down the chain. */
export const SETTLE_DEADLINE_MS = 3_000;

/** An error's message, for a log field. */
export const errorMessage = (e: unknown) => (e instanceof Error ? e.message : String(e));
