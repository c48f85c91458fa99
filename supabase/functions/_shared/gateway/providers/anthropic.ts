// Anthropic: POST /v1/messages (stream and not), as @anthropic-ai/sdk sends it with
// baseURL = <functions>/anthropic-proxy and the user's Supabase access token as its API key (x-api-key); its route
// also hands POST /v1/messages/count_tokens to the token count (anthropic-count-tokens.ts).
// Usage: message_start carries input (and cache) tokens and a placeholder output count, message_delta the
// cumulative output tokens.
//
// The allow-list: the SDK's MessageCreateParams fields that are billed by tokens alone. Refused: server tools
// (web search, code execution, … billed per use), container (code execution time), speed "fast" (fast mode's
// prices), inference_geo (regional inference at other prices), and the header params (user_profile_id,
// workspace_id) in the body. service_tier is always sent as standard_only: priority capacity is billed
// otherwise. An image or document by URL or by file id is input the gateway cannot measure: the call is held as
// the plan's max input.
import { z } from "../../http/validation.ts";
import {
  type ProviderAdapter,
  type SseEvent,
  type StreamMeter,
  type Usage,
  usageOf,
  utf8Bytes,
} from "./adapter.ts";
import { ANTHROPIC_API, conversationFields } from "./anthropic-api.ts";
import { anthropicCountTokens } from "./anthropic-count-tokens.ts";
import { allowList, BILLED_BEYOND_TOKENS, refused } from "./fields.ts";
import { int, MAX_OUTPUT_FIELD } from "./openai-compatible.ts";

/** The allow-list: each field the gateway forwards for Anthropic messages (refused ones say why). */
export const messagesFields = {
  ...conversationFields,
  max_tokens: int(1, MAX_OUTPUT_FIELD),
  stream: z.boolean().optional(),
  stop_sequences: z.array(z.string().max(1024)).max(16).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_k: int(0, 2048).optional(),
  top_p: z.number().min(0).max(1).optional(),
  metadata: z.object({ user_id: z.string().max(256).nullish() }).strict().optional(),
  thinking: z.union([
    z.object({ type: z.literal("enabled"), budget_tokens: int(1, MAX_OUTPUT_FIELD) }).passthrough(),
    z.object({ type: z.enum(["disabled", "adaptive"]) }).passthrough(),
  ]).optional(),
  tool_choice: z.object({ type: z.string().max(32) }).passthrough().optional(),
  // Server tools (web search, code execution, …) are billed per use beyond tokens: only the client's own
  // tools pass.
  tools: z.array(
    z.object({
      type: z.enum(["custom"], { error: `server tools ${BILLED_BEYOND_TOKENS}` }).optional(),
    }).passthrough(),
  ).max(128).optional(),
  cache_control: z.object({ type: z.literal("ephemeral") }).passthrough().nullish(),
  output_config: z.object({}).passthrough().optional(),
  diagnostics: z.object({}).passthrough().nullish(),
  service_tier: z.enum(["auto", "standard_only"]).optional(),
  speed: z.enum(["standard"], { error: `speed "fast" ${BILLED_BEYOND_TOKENS}` }).nullish(),
  container: refused(`container (code execution) ${BILLED_BEYOND_TOKENS}`),
  inference_geo: refused(`inference_geo ${BILLED_BEYOND_TOKENS}`),
  mcp_servers: refused(`mcp_servers ${BILLED_BEYOND_TOKENS}`),
};

export const messagesSchema = allowList(messagesFields, "Anthropic messages");

export type MessagesBody = z.infer<typeof messagesSchema>;

type AnthropicUsage = {
  input_tokens?: unknown;
  output_tokens?: unknown;
  cache_read_input_tokens?: unknown;
  cache_creation_input_tokens?: unknown;
};

/** Anthropic counts cached reads and cache writes apart from input_tokens; ours includes them. */
function toUsage(u: AnthropicUsage): Usage {
  return usageOf({
    input: u.input_tokens,
    inputParts: [u.cache_read_input_tokens, u.cache_creation_input_tokens],
    cached: u.cache_read_input_tokens,
    cacheWrite: u.cache_creation_input_tokens,
    output: u.output_tokens,
  });
}

type Block = { type?: string; source?: { type?: string }; content?: unknown };

/** Whether a message holds an image or document by URL or by file id (content blocks, nested in tool results). */
function blocksUnbounded(blocks: unknown): boolean {
  if (!Array.isArray(blocks)) return false;
  return (blocks as Block[]).some((b) =>
    b?.source?.type === "url" || b?.source?.type === "file" || blocksUnbounded(b?.content)
  );
}

function meter(): StreamMeter {
  let start: AnthropicUsage | null = null;
  let output: unknown = null;
  let bytes = 0;
  let final = false;
  return {
    onEvent(event: SseEvent) {
      if (
        event.event === "message_start" || event.event === "message_delta" ||
        event.event === "content_block_delta" || event.event === "content_block_start"
      ) {
        try {
          const data = JSON.parse(event.data);
          if (event.event === "message_start") {
            start = data.message?.usage ?? null;
            output = (start as AnthropicUsage | null)?.output_tokens ?? null;
          } else if (event.event === "message_delta") {
            if (data.usage?.output_tokens !== undefined) {
              output = data.usage.output_tokens;
              final = true; // message_delta carries the final output count
            }
            if (data.usage?.input_tokens != null && start) start = { ...start, ...data.usage };
          } else if (event.event === "content_block_start") {
            const block = data.content_block ?? {};
            for (const x of [block.text, block.thinking, block.name]) {
              if (typeof x === "string") bytes += utf8Bytes(x);
            }
          } else {
            for (const x of [data.delta?.text, data.delta?.thinking, data.delta?.partial_json]) {
              if (typeof x === "string") bytes += utf8Bytes(x);
            }
          }
        } catch { /* forward it unchanged */ }
      }
      return event;
    },
    usage: () => (start ? toUsage({ ...(start as AnthropicUsage), output_tokens: output ?? 0 }) : null),
    final: () => final,
    outputBytes: () => bytes,
  };
}

type ContentBlock = { text?: unknown; thinking?: unknown; name?: unknown; input?: unknown };

export const anthropic: ProviderAdapter<MessagesBody> = {
  ...ANTHROPIC_API,
  schema: messagesSchema,
  // The token count is an endpoint of its own, with its allow-list.
  route: (path, search) =>
    path === "/v1/messages" ? { upstreamPath: "/v1/messages" } : path === "/v1/messages/count_tokens"
      ? {
        ...anthropicCountTokens.route(path, search)!,
        endpoint: anthropicCountTokens as unknown as ProviderAdapter,
      }
      : null,
  describe: (body) => ({
    model: body.model,
    stream: body.stream === true,
    requestedMaxOutput: body.max_tokens,
    choices: 1,
    inputUnbounded: body.messages.some((m) => blocksUnbounded(m.content)) || blocksUnbounded(body.system),
  }),
  prepare: (body, _route, maxOutput) => ({
    body: {
      ...body,
      max_tokens: Math.min(body.max_tokens, maxOutput),
      service_tier: "standard_only" as const,
    },
    clientWantsUsage: true,
  }),
  usageFromJson: (json) => {
    const u = (json as { usage?: AnthropicUsage } | null)?.usage;
    return u ? toUsage(u) : null;
  },
  outputTextOf: (json) => {
    const content = (json as { content?: ContentBlock[] } | null)?.content;
    if (!Array.isArray(content)) return "";
    return content.map((b) =>
      [b?.text, b?.thinking, b?.name, b?.input === undefined ? undefined : JSON.stringify(b.input)]
        .filter((x): x is string => typeof x === "string").join("")
    ).join("");
  },
  createStreamMeter: () => meter(),
};
