// OpenAI: POST /v1/chat/completions (stream and not), as the openai SDK sends it with
// baseURL = <functions>/openai-proxy/v1 and the user's Supabase access token as its API key; its route also
// hands POST /v1/responses to the Responses endpoint (openai-responses.ts) and POST /v1/embeddings to the
// embeddings endpoint (openai-embeddings.ts).
//
// The allow-list: every field of the SDK's ChatCompletionCreateParams that is billed by tokens alone. Refused:
// web_search_options (per-search fees), service_tier priority/scale/fast (billed at other rates), audio output
// (audio tokens), moderation (billed on its own), and the *-search-* models (they search on every call). An
// image or file by URL, or a file id, is input the gateway cannot measure: the call is held as the plan's max
// input (describeChat).
import { z } from "../../http/validation.ts";
import type { ProviderAdapter } from "./adapter.ts";
import { allowList, BILLED_BEYOND_TOKENS, refused } from "./fields.ts";
import {
  type ChatCompletionBody,
  chatFields,
  chatOutputTextOf,
  chatStreamMeter,
  describeChat,
  int,
  MAX_OUTPUT_FIELD,
  prepareChat,
  usageFromChatJson,
} from "./openai-compatible.ts";
import { openaiEmbeddings } from "./openai-embeddings.ts";
import { openaiResponses } from "./openai-responses.ts";

/** The allow-list: each field the gateway forwards for OpenAI chat completions (refused ones say why). */
export const openAiChatFields = {
  ...chatFields,
  model: chatFields.model.refine((m) => !/search/i.test(m), {
    error: `the search models ${BILLED_BEYOND_TOKENS} (they bill a search per call)`,
  }),
  max_completion_tokens: int(1, MAX_OUTPUT_FIELD).nullish(),
  n: int(1, 8).nullish(),
  seed: int(-(2 ** 53) + 1, 2 ** 53 - 1).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: int(0, 20).nullish(),
  logit_bias: z.record(z.string().max(16), z.number().min(-100).max(100)).nullish(),
  stop: z.union([z.string().max(1024), z.array(z.string().max(1024)).max(4)]).nullish(),
  tools: z.array(z.object({ type: z.enum(["function", "custom"]) }).passthrough()).max(128).optional(),
  tool_choice: z.union([z.string().max(64), z.object({}).passthrough()]).nullish(),
  parallel_tool_calls: z.boolean().optional(),
  functions: z.array(z.object({}).passthrough()).max(128).optional(),
  function_call: z.union([z.string().max(64), z.object({}).passthrough()]).optional(),
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high", "xhigh"]).nullish(),
  verbosity: z.enum(["low", "medium", "high"]).nullish(),
  modalities: z.array(z.enum(["text"], { error: `audio output ${BILLED_BEYOND_TOKENS}` })).max(1).nullish(),
  prediction: z.object({ type: z.literal("content") }).passthrough().nullish(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
  store: z.boolean().nullish(),
  user: z.string().max(256).optional(),
  safety_identifier: z.string().max(256).optional(),
  prompt_cache_key: z.string().max(256).optional(),
  prompt_cache_retention: z.enum(["in-memory", "24h"]).nullish(),
  prompt_cache_options: z.object({}).passthrough().nullish(),
  service_tier: z.enum(["auto", "default", "flex"], {
    error: `service_tier other than auto/default/flex ${BILLED_BEYOND_TOKENS}`,
  }).nullish(),
  audio: refused(`audio ${BILLED_BEYOND_TOKENS}`),
  moderation: refused(`moderation ${BILLED_BEYOND_TOKENS}`),
  web_search_options: refused(`web_search_options ${BILLED_BEYOND_TOKENS}`),
};

export const openAiChatSchema = allowList(
  openAiChatFields,
  "OpenAI chat completions",
) as unknown as z.ZodType<
  ChatCompletionBody
>;

export const openai: ProviderAdapter<ChatCompletionBody> = {
  provider: "openai",
  label: "OpenAI",
  functionName: "openai-proxy",
  keyEnv: "OPENAI_API_KEY",
  baseUrlEnv: "OPENAI_BASE_URL",
  defaultBaseUrl: "https://api.openai.com/v1",
  requestIdHeader: "x-request-id",
  schema: openAiChatSchema,
  // The Responses API and embeddings are endpoints of their own, each with its allow-list and usage.
  route: (path, search) =>
    path === "/v1/chat/completions"
      ? { upstreamPath: "/chat/completions" }
      : path === "/v1/responses"
      ? { ...openaiResponses.route(path, search)!, endpoint: openaiResponses }
      : path === "/v1/embeddings"
      ? { ...openaiEmbeddings.route(path, search)!, endpoint: openaiEmbeddings }
      : null,
  describe: (body) => describeChat(body),
  prepare: (body, _route, maxOutput) => prepareChat(body, maxOutput),
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: usageFromChatJson,
  outputTextOf: chatOutputTextOf,
  createStreamMeter: (clientWantsUsage) => chatStreamMeter(!clientWantsUsage),
};
