// OpenAI's Responses API: POST /v1/responses (stream and not), as the openai SDK sends it with
// `client.responses.create` / `.stream` and baseURL = <functions>/openai-proxy/v1.
//
// The allow-list: the fields of ResponseCreateParams billed by tokens alone. Refused, because they are billed per
// use or read input the gateway cannot see: the built-in tools (web search, file search, code interpreter,
// computer use, image generation, MCP, shells: only `function` and `custom` tools pass), `background: true`,
// service_tier priority/scale, and `previous_response_id`, `conversation` and a stored `prompt` (the provider
// would add input kept on its side, unbounded and unmeasured: the client sends the whole input instead). An
// image or file by URL or by file id, and an `item_reference` input item, are input the gateway cannot measure:
// the call is held as the plan's max input. Usage comes from the final response (the `response.completed`,
// `.incomplete` or `.failed` event of a stream), cached input and reasoning tokens included.
import { z } from "../../http/validation.ts";
import type { Described, ProviderAdapter, SseEvent, StreamMeter, Usage } from "./adapter.ts";
import { usageOf, utf8Bytes } from "./adapter.ts";
import { allowList, BILLED_BEYOND_TOKENS, refused } from "./fields.ts";
import { int, MAX_OUTPUT_FIELD } from "./openai-compatible.ts";

const UNMEASURED = "adds input the provider keeps on its side, which the gateway cannot measure or bill in " +
  "advance; send the whole input instead";

const item = z.object({}).passthrough();

/** The tools billed by tokens alone: functions and custom (free-form) tools, defined by the client. */
const tool = z.object({
  type: z.enum(["function", "custom"], {
    error:
      `built-in tools (web search, file search, code interpreter, computer use, image generation, MCP, ` +
      `shell) ${BILLED_BEYOND_TOKENS}`,
  }),
}).passthrough();

export const openAiResponsesFields = {
  model: z.string().min(1).max(128).refine((m) => !/search/i.test(m), {
    error: `the search models ${BILLED_BEYOND_TOKENS} (they bill a search per call)`,
  }),
  input: z.union([z.string(), z.array(item).min(1).max(2000)]),
  instructions: z.string().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_obfuscation: z.boolean().optional() }).strict().nullish(),
  max_output_tokens: int(1, MAX_OUTPUT_FIELD).nullish(),
  max_tool_calls: int(1, 1000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_logprobs: int(0, 20).nullish(),
  tools: z.array(tool).max(128).optional(),
  tool_choice: z.union([z.string().max(64), z.object({}).passthrough()]).optional(),
  parallel_tool_calls: z.boolean().nullish(),
  text: z.object({}).passthrough().optional(),
  reasoning: z.object({}).passthrough().nullish(),
  include: z.array(z.string().max(128)).max(16).nullish(),
  truncation: z.enum(["auto", "disabled"]).nullish(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
  store: z.boolean().nullish(),
  user: z.string().max(256).optional(),
  safety_identifier: z.string().max(256).optional(),
  prompt_cache_key: z.string().max(256).optional(),
  prompt_cache_retention: z.enum(["in-memory", "24h"]).nullish(),
  service_tier: z.enum(["auto", "default", "flex"], {
    error: `service_tier other than auto/default/flex ${BILLED_BEYOND_TOKENS}`,
  }).nullish(),
  background: z.literal(false, { error: "background responses are not available through the gateway" })
    .nullish(),
  previous_response_id: refused(`previous_response_id ${UNMEASURED}`),
  conversation: refused(`conversation ${UNMEASURED}`),
  prompt: refused(`a stored prompt ${UNMEASURED}`),
};

export type ResponsesBody = {
  model: string;
  input: string | Record<string, unknown>[];
  stream?: boolean | null;
  max_output_tokens?: number | null;
  [key: string]: unknown;
};

export const openAiResponsesSchema = allowList(
  openAiResponsesFields,
  "OpenAI responses",
) as unknown as z.ZodType<ResponsesBody>;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Whether a URL points outside the body (a data: URI is in it, and measured with it). */
const remote = (url: unknown) => typeof url === "string" && !url.startsWith("data:");

/**
 * Whether the input holds what the gateway cannot measure: an item_reference (an item kept by the provider), an
 * image or file by URL or by file id.
 */
export function responsesInputUnbounded(body: ResponsesBody): boolean {
  if (typeof body.input === "string") return false;
  return body.input.some((it) => {
    if (it.type === "item_reference") return true;
    const parts = Array.isArray(it.content) ? it.content.filter(isRecord) : [];
    return parts.some((p) => remote(p.image_url) || remote(p.file_url) || typeof p.file_id === "string");
  });
}

export function describeResponses(body: ResponsesBody): Described {
  return {
    model: body.model,
    stream: body.stream === true,
    requestedMaxOutput: body.max_output_tokens ?? null,
    choices: 1,
    inputUnbounded: responsesInputUnbounded(body),
  };
}

/** The max output capped at the plan's (always sent, so the provider never runs past what was held). */
export function prepareResponses(body: ResponsesBody, maxOutput: number) {
  return {
    body: { ...body, max_output_tokens: Math.min(body.max_output_tokens ?? maxOutput, maxOutput) },
    clientWantsUsage: true,
  };
}

type ResponsesUsage = {
  input_tokens?: unknown;
  input_tokens_details?: { cached_tokens?: unknown } | null;
  output_tokens?: unknown;
  output_tokens_details?: { reasoning_tokens?: unknown } | null;
};

/** The Responses API counts cached tokens within input_tokens and reasoning tokens within output_tokens, as we do. */
export function usageFromResponses(u: ResponsesUsage | null | undefined): Usage | null {
  if (!isRecord(u)) return null;
  return usageOf({
    input: u.input_tokens,
    cached: u.input_tokens_details?.cached_tokens,
    output: u.output_tokens,
    reasoning: u.output_tokens_details?.reasoning_tokens,
  });
}

/** The generated text of a response's output items: message text and refusals, function calls, summaries. */
export function responsesOutputTextOf(json: unknown): string {
  const output = isRecord(json) && Array.isArray(json.output) ? json.output.filter(isRecord) : [];
  const parts: unknown[] = [];
  for (const it of output) {
    parts.push(it.name, it.arguments, it.input);
    for (const c of [it.content, it.summary].flatMap((x) => Array.isArray(x) ? x.filter(isRecord) : [])) {
      parts.push(c.text, c.refusal);
    }
  }
  return parts.filter((x): x is string => typeof x === "string").join("");
}

/** The events that end a response; each carries the response with its usage. */
const FINAL_EVENTS = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** Meters a Responses stream: generated text from the delta events, usage from the final response event. */
export function responsesStreamMeter(): StreamMeter {
  let usage: Usage | null = null;
  let bytes = 0;
  let final = false;
  return {
    onEvent(event: SseEvent): SseEvent | null {
      let data: Record<string, unknown>;
      try {
        const parsed = JSON.parse(event.data);
        if (!isRecord(parsed)) return event;
        data = parsed;
      } catch {
        return event;
      }
      const type = typeof data.type === "string" ? data.type : event.event ?? "";
      if (type.endsWith(".delta") && typeof data.delta === "string") bytes += utf8Bytes(data.delta);
      if (FINAL_EVENTS.has(type) && isRecord(data.response)) {
        usage = usageFromResponses(data.response.usage as ResponsesUsage | undefined) ?? usage;
        final = usage !== null;
      }
      return event;
    },
    usage: () => usage,
    final: () => final,
    outputBytes: () => bytes,
  };
}

/** The Responses endpoint of openai-proxy (its route picks it: ./openai.ts). */
export const openaiResponses: ProviderAdapter<ResponsesBody> = {
  provider: "openai",
  label: "OpenAI",
  functionName: "openai-proxy",
  keyEnv: "OPENAI_API_KEY",
  baseUrlEnv: "OPENAI_BASE_URL",
  defaultBaseUrl: "https://api.openai.com/v1",
  requestIdHeader: "x-request-id",
  schema: openAiResponsesSchema,
  route: (path) => (path === "/v1/responses" ? { upstreamPath: "/responses" } : null),
  describe: (body) => describeResponses(body),
  prepare: (body, _route, maxOutput) => prepareResponses(body, maxOutput),
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: (json) => usageFromResponses(isRecord(json) ? json.usage as ResponsesUsage : undefined),
  outputTextOf: responsesOutputTextOf,
  createStreamMeter: () => responsesStreamMeter(),
};
