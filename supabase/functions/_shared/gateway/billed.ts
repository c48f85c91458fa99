// What a call is billed: from what the provider is known to have done (nothing, answered, cut off) to the usage
// record settlement writes. A cut-off call (a stream that ended before the provider's final usage, whoever ended
// it), or one whose provider reported no usage or counts that had to be mended, is billed the larger of what the
// provider reported and what was delivered (the input estimate; the generated text forwarded, at about 3 bytes a
// token), and flagged as estimated.
import type { Ticket } from "./admission/book.ts";
import { NO_USAGE, type ProviderAdapter, tokensForBytes, type Usage } from "./providers/adapter.ts";
import type { UsageRecord } from "./settlement/record.ts";

/** One admitted call, as its usage record needs it. */
export type CallState = {
  requestId: string;
  userId: string;
  model: string;
  searchContextSize: string | null;
  started: number;
  inputEstimate: number;
  upstreamRequestId: string | null;
  ticket: Ticket;
  /** The chat session and agent run of an agent call (in-process); null for a proxy call. */
  sessionId: string | null;
  runId: string | null;
};

/** What the provider is known to have done, to bill a call by. */
export type Billed =
  /** It read nothing (unreachable) or refused the call: nothing is billed. */
  | { kind: "nothing" }
  /** It answered in full: what it reported, or, without a usage report, the estimate from the answer. */
  | { kind: "answered"; usage: Usage | null; outputBytes: number }
  /** It was cut off (timeout, client gone, upstream failed, shutdown): at least what was delivered. */
  | { kind: "cut_off"; usage: Usage | null; outputBytes: number };

/** The tokens billed: what was reported, or at least what was delivered when the report cannot be trusted. */
function billedUsage(call: CallState, billed: Billed): Usage {
  if (billed.kind === "nothing") return NO_USAGE;
  const reported = billed.usage;
  // Never less than what was delivered: when cut off, without a report, or with a report that had to be mended.
  const estimate = billed.kind === "cut_off" || reported === null || reported.estimated;
  const usage = reported ?? NO_USAGE;
  if (!estimate) return usage;
  // The input a trustworthy report gave (Anthropic's message_start) stands; otherwise at least the estimate.
  const trusted = reported !== null && !reported.estimated && reported.inputTokens > 0;
  const input = trusted ? usage.inputTokens : Math.max(usage.inputTokens, call.inputEstimate);
  const output = Math.max(usage.outputTokens, tokensForBytes(billed.outputBytes));
  return { ...usage, inputTokens: input, outputTokens: output, estimated: true };
}

/** The usage record of a call. */
export function usageRecord(
  adapter: ProviderAdapter,
  call: CallState,
  billed: Billed,
  status: UsageRecord["status"],
  httpStatus: number | null,
): UsageRecord {
  const usage = billedUsage(call, billed);
  return {
    request_id: call.requestId,
    user_id: call.userId,
    provider: adapter.provider,
    model: call.model,
    input_tokens: usage.inputTokens,
    cached_input_tokens: usage.cachedInputTokens,
    cache_write_tokens: usage.cacheWriteTokens,
    output_tokens: usage.outputTokens,
    reasoning_tokens: usage.reasoningTokens,
    // The request fee is billed only for a call the provider served (one that refused or was never reached
    // searched nothing).
    search_context_size: billed.kind === "nothing" ? null : call.searchContextSize,
    status,
    http_status: httpStatus,
    latency_ms: Math.round(performance.now() - call.started),
    upstream_request_id: call.upstreamRequestId,
    tokens_estimated: usage.estimated,
    lease_id: call.ticket.leaseId,
    admitted_at: call.ticket.admittedAt.toISOString(),
    session_id: call.sessionId,
    run_id: call.runId,
  };
}
