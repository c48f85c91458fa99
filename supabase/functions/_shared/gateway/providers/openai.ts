// OpenAI: POST /v1/chat/completions (stream and not), as the openai SDK sends it with
// baseURL = <functions>/openai-proxy/v1 and the user's Supabase access token as its API key.
import type { ProviderAdapter } from "../adapter.ts";
import {
  type ChatCompletionBody,
  chatCompletionSchema,
  chatStreamMeter,
  describeChat,
  prepareChat,
  usageFromChatJson,
} from "./openai-compatible.ts";

export const openai: ProviderAdapter<ChatCompletionBody> = {
  provider: "openai",
  label: "OpenAI",
  functionName: "openai-proxy",
  keyEnv: "OPENAI_API_KEY",
  baseUrlEnv: "OPENAI_BASE_URL",
  defaultBaseUrl: "https://api.openai.com/v1",
  requestIdHeader: "x-request-id",
  schema: chatCompletionSchema,
  route: (path) => (path === "/v1/chat/completions" ? { upstreamPath: "/chat/completions" } : null),
  describe: (body) => describeChat(body),
  prepare: (body, _route, maxOutput) => prepareChat(body, maxOutput),
  upstreamHeaders: (key) => ({ authorization: `Bearer ${key}` }),
  usageFromJson: usageFromChatJson,
  createStreamMeter: (clientWantsUsage) => chatStreamMeter(!clientWantsUsage),
};
