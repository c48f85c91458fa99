// What every Anthropic endpoint of anthropic-proxy shares (messages: anthropic.ts; token counts:
// anthropic-count-tokens.ts): who the provider is, its auth and version headers, and the model and messages fields.
import { z } from "../../http/validation.ts";
import type { ProviderAdapter } from "./adapter.ts";

/** The provider's identity and auth, the same for every endpoint. */
export const ANTHROPIC_API = {
  provider: "anthropic",
  label: "Anthropic",
  functionName: "anthropic-proxy",
  keyEnv: "ANTHROPIC_API_KEY",
  baseUrlEnv: "ANTHROPIC_BASE_URL",
  defaultBaseUrl: "https://api.anthropic.com",
  requestIdHeader: "request-id",
  // The client's API version passes through (the SDK's 1.x line speaks 2026-10-21); beta flags do not,
  // since some change the price (long context) in ways the token prices here do not know.
  upstreamHeaders: (key: string, req: Request) => ({
    "x-api-key": key,
    "anthropic-version": req.headers.get("anthropic-version") ?? "2023-06-01",
  }),
} as const satisfies Partial<ProviderAdapter>;

/** The model and the conversation, as every endpoint takes them. */
export const conversationFields = {
  model: z.string().min(1).max(128),
  messages: z.array(z.object({ role: z.enum(["user", "assistant"]) }).passthrough()).min(1).max(2000),
  system: z.union([z.string(), z.array(z.object({}).passthrough())]).optional(),
};
