// Perplexity: POST /chat/completions (OpenAI-shaped, stream and not), as the openai SDK sends it with
// baseURL = <functions>/perplexity-proxy. Perplexity reports usage in its stream chunks by itself.
//
// The allow-list: the chat fields and Perplexity's search controls. Every Sonar request pays a search fee by
// web_search_options.search_context_size (low, the default, medium, high): it is priced
// (public.model_request_fees) and held. Refused: search_type pro/auto (Pro Search, other fees), and the deep
// research models' per-query search fees (they are not priced, so admission refuses them).
import { z } from "../../http/validation.ts";
import type { ProviderAdapter } from "./adapter.ts";
import { allowList, BILLED_BEYOND_TOKENS } from "./fields.ts";
import {
  type ChatCompletionBody,
  chatFields,
  chatOutputTextOf,
  chatStreamMeter,
  describeChat,
  int,
  MAX_OUTPUT_FIELD,
  requestedOutput,
  usageFromChatJson,
} from "./openai-compatible.ts";

const dateFilter = z.string().max(32).nullish();

/** Perplexity's web_search_options, field by field. */
export const webSearchOptionsFields = {
  search_context_size: z.enum(["low", "medium", "high"]).optional(),
  search_type: z.enum(["fast"], { error: `search_type pro/auto (Pro Search) ${BILLED_BEYOND_TOKENS}` })
    .optional(),
  user_location: z.object({}).passthrough().nullish(),
  image_search_relevance_enhanced: z.boolean().optional(),
};

/** The allow-list: each field the gateway forwards for Perplexity chat completions. */
export const perplexityChatFields = {
  ...chatFields,
  max_completion_tokens: int(1, MAX_OUTPUT_FIELD).nullish(),
  top_k: int(0, 2048).nullish(),
  web_search_options: allowList(webSearchOptionsFields, "Perplexity web_search_options").optional(),
  search_mode: z.enum(["web", "academic", "sec"]).nullish(),
  search_domain_filter: z.array(z.string().max(256)).max(20).nullish(),
  search_recency_filter: z.enum(["hour", "day", "week", "month", "year"]).nullish(),
  search_after_date_filter: dateFilter,
  search_before_date_filter: dateFilter,
  last_updated_after_filter: dateFilter,
  last_updated_before_filter: dateFilter,
  return_images: z.boolean().nullish(),
  return_related_questions: z.boolean().nullish(),
  enable_search_classifier: z.boolean().nullish(),
  disable_search: z.boolean().nullish(),
  language_preference: z.string().max(64).nullish(),
};

export const perplexityChatSchema = allowList(
  perplexityChatFields,
  "Perplexity chat completions",
) as unknown as z.ZodType<
  ChatCompletionBody
>;

type SearchOptions = { search_context_size?: "low" | "medium" | "high" };

export const perplexity: ProviderAdapter<ChatCompletionBody> = {
  provider: "perplexity",
  label: "Perplexity",
  functionName: "perplexity-proxy",
  keyEnv: "PERPLEXITY_API_KEY",
  baseUrlEnv: "PERPLEXITY_BASE_URL",
  defaultBaseUrl: "https://api.perplexity.ai",
  schema: perplexityChatSchema,
  route: (
    path,
  ) => (path === "/chat/completions" || path === "/v1/chat/completions"
    ? { upstreamPath: "/chat/completions" }
    : null),
  describe: (body) => ({
    ...describeChat(body),
    searchContextSize: (body.web_search_options as SearchOptions | undefined)?.search_context_size ?? "low",
  }),
  prepare: (body, _route, maxOutput) => {
    const { max_completion_tokens: _ignored, ...rest } = body;
    return {
      body: { ...rest, max_tokens: Math.min(requestedOutput(body) ?? maxOutput, maxOutput) },
      clientWantsUsage: true, // Perplexity sends usage unasked; nothing to hide
    };
  },
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: usageFromChatJson,
  outputTextOf: chatOutputTextOf,
  createStreamMeter: () => chatStreamMeter(false),
};
