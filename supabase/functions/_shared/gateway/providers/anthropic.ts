// Anthropic: POST /v1/messages (stream and not), as @anthropic-ai/sdk sends it with
// baseURL = <functions>/anthropic-proxy and the user's Supabase access token as its API key (x-api-key).
// Usage: message_start carries input (and cache) tokens, message_delta the cumulative output tokens.
import { z } from "../../validation.ts";
import type { ProviderAdapter, SseEvent, StreamMeter, Usage } from "../adapter.ts";

export const messagesSchema = z.object({
  model: z.string().min(1).max(128),
  messages: z.array(z.object({ role: z.enum(["user", "assistant"]) }).passthrough()).min(1).max(2000),
  max_tokens: z.number().int().positive(),
  stream: z.boolean().optional(),
  // Server tools (web search, code execution, …) are billed per use beyond tokens: only the client's own
  // tools pass.
  tools: z.array(
    z.object({
      type: z.enum(["custom"], {
        error: "server tools are billed beyond tokens and not available through the gateway",
      })
        .optional(),
    }).passthrough(),
  ).optional(),
}).passthrough();

export type MessagesBody = z.infer<typeof messagesSchema>;

type AnthropicUsage = {
  input_tokens?: number;
  output_tokens?: number;
  cache_read_input_tokens?: number | null;
  cache_creation_input_tokens?: number | null;
};

/** Anthropic counts cached reads and cache writes apart from input_tokens; ours includes them. */
function toUsage(u: AnthropicUsage): Usage {
  const cached = u.cache_read_input_tokens ?? 0;
  return {
    inputTokens: (u.input_tokens ?? 0) + cached + (u.cache_creation_input_tokens ?? 0),
    cachedInputTokens: cached,
    outputTokens: u.output_tokens ?? 0,
  };
}

function meter(): StreamMeter {
  let start: AnthropicUsage | null = null;
  let output: number | null = null;
  let chars = 0;
  return {
    onEvent(event: SseEvent) {
      if (
        event.event === "message_start" || event.event === "message_delta" ||
        event.event === "content_block_delta"
      ) {
        try {
          const data = JSON.parse(event.data);
          if (event.event === "message_start") {
            start = data.message?.usage ?? null;
            output = start?.output_tokens ?? null;
          } else if (event.event === "message_delta") {
            if (typeof data.usage?.output_tokens === "number") output = data.usage.output_tokens;
            if (data.usage?.input_tokens != null && start) start = { ...start, ...data.usage };
          } else {
            chars += (data.delta?.text?.length ?? 0) + (data.delta?.thinking?.length ?? 0) +
              (data.delta?.partial_json?.length ?? 0);
          }
        } catch { /* forward it unchanged */ }
      }
      return event;
    },
    usage: () => (start ? toUsage({ ...start, output_tokens: output ?? 0 }) : null),
    outputChars: () => chars,
  };
}

export const anthropic: ProviderAdapter<MessagesBody> = {
  provider: "anthropic",
  label: "Anthropic",
  functionName: "anthropic-proxy",
  keyEnv: "ANTHROPIC_API_KEY",
  baseUrlEnv: "ANTHROPIC_BASE_URL",
  defaultBaseUrl: "https://api.anthropic.com",
  requestIdHeader: "request-id",
  schema: messagesSchema,
  route: (path) => (path === "/v1/messages" ? { upstreamPath: "/v1/messages" } : null),
  describe: (body) => ({
    model: body.model,
    stream: body.stream === true,
    requestedMaxOutput: body.max_tokens,
    choices: 1,
  }),
  prepare: (body, _route, maxOutput) => ({
    body: { ...body, max_tokens: Math.min(body.max_tokens, maxOutput) },
    clientWantsUsage: true,
  }),
  // The client's API version passes through (the SDK's 1.x line speaks 2026-10-21); beta flags do not,
  // since some change the price (long context) in ways the token prices here do not know.
  upstreamHeaders: (key, req) => ({
    "x-api-key": key,
    "anthropic-version": req.headers.get("anthropic-version") ?? "2023-06-01",
  }),
  usageFromJson: (json) => {
    const u = (json as { usage?: AnthropicUsage } | null)?.usage;
    return u ? toUsage(u) : null;
  },
  createStreamMeter: () => meter(),
};
