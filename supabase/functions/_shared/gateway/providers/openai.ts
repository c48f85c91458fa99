// OpenAI: POST /v1/chat/completions (stream and not), as the openai SDK sends it with
// baseURL = <functions>/openai-proxy/v1 and the user's Supabase access token as its API key.
import { z } from "../../validation.ts";
import type { ProviderAdapter } from "../adapter.ts";
import {
  type ChatCompletionBody,
  chatCompletionSchema,
  chatStreamMeter,
  describeChat,
  prepareChat,
  usageFromChatJson,
} from "./openai-compatible.ts";

/**
 * Features OpenAI bills beyond tokens are refused rather than passed through unmetered: the priority and
 * scale tiers, and the per-call fees of web search.
 */
const NOT_METERED = "is billed beyond tokens and not available through the gateway";
export const openAiChatSchema = chatCompletionSchema.extend({
  service_tier: z.enum(["auto", "default", "flex"], {
    error: `service_tier other than auto/default/flex ${NOT_METERED}`,
  })
    .nullish(),
  web_search_options: z.never({ error: `web_search_options ${NOT_METERED}` }).optional(),
});

export const openai: ProviderAdapter<ChatCompletionBody> = {
  provider: "openai",
  label: "OpenAI",
  functionName: "openai-proxy",
  keyEnv: "OPENAI_API_KEY",
  baseUrlEnv: "OPENAI_BASE_URL",
  defaultBaseUrl: "https://api.openai.com/v1",
  requestIdHeader: "x-request-id",
  schema: openAiChatSchema,
  route: (path) => (path === "/v1/chat/completions" ? { upstreamPath: "/chat/completions" } : null),
  describe: (body) => describeChat(body),
  prepare: (body, _route, maxOutput) => prepareChat(body, maxOutput),
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: usageFromChatJson,
  createStreamMeter: (clientWantsUsage) => chatStreamMeter(!clientWantsUsage),
};
