// Perplexity: POST /chat/completions (OpenAI-shaped, stream and not), as the openai SDK sends it with
// baseURL = <functions>/perplexity-proxy. Perplexity reports usage in its stream chunks by itself.
import type { ProviderAdapter } from "../adapter.ts";
import {
  type ChatCompletionBody,
  chatCompletionSchema,
  chatStreamMeter,
  describeChat,
  requestedOutput,
  usageFromChatJson,
} from "./openai-compatible.ts";

export const perplexity: ProviderAdapter<ChatCompletionBody> = {
  provider: "perplexity",
  label: "Perplexity",
  functionName: "perplexity-proxy",
  keyEnv: "PERPLEXITY_API_KEY",
  baseUrlEnv: "PERPLEXITY_BASE_URL",
  defaultBaseUrl: "https://api.perplexity.ai",
  schema: chatCompletionSchema,
  route: (
    path,
  ) => (path === "/chat/completions" || path === "/v1/chat/completions"
    ? { upstreamPath: "/chat/completions" }
    : null),
  describe: (body) => describeChat(body),
  prepare: (body, _route, maxOutput) => {
    const { max_completion_tokens: _ignored, ...rest } = body;
    return {
      body: { ...rest, max_tokens: Math.min(requestedOutput(body) ?? maxOutput, maxOutput) },
      clientWantsUsage: true, // Perplexity sends usage unasked; nothing to hide
    };
  },
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: usageFromChatJson,
  createStreamMeter: () => chatStreamMeter(false),
};
