// Google Gemini: POST /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse, as
// @google/genai sends them with httpOptions.baseUrl = <functions>/google-proxy and the user's Supabase
// access token as its API key (x-goog-api-key). usageMetadata is cumulative in every stream chunk.
import { z } from "../../validation.ts";
import type { ProviderAdapter, Route, SseEvent, StreamMeter, Usage } from "../adapter.ts";

// Grounding with Google Search or Maps is billed per request beyond tokens: refused, not passed unmetered.
const grounding = (name: string) =>
  z.never({ error: `${name} is billed beyond tokens and not available through the gateway` }).optional();

export const generateContentSchema = z.object({
  contents: z.array(z.object({}).passthrough()).min(1).max(2000),
  tools: z.array(
    z.object({
      googleSearch: grounding("googleSearch"),
      googleSearchRetrieval: grounding("googleSearchRetrieval"),
      googleMaps: grounding("googleMaps"),
    }).passthrough(),
  ).optional(),
  generationConfig: z.object({
    maxOutputTokens: z.number().int().positive().optional(),
    candidateCount: z.number().int().min(1).max(8).optional(),
  }).passthrough().optional(),
}).passthrough();

export type GenerateContentBody = z.infer<typeof generateContentSchema>;

type UsageMetadata = {
  promptTokenCount?: number;
  candidatesTokenCount?: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  toolUsePromptTokenCount?: number;
};

/** Thinking tokens are billed as output; tool-use prompt tokens as input. */
function toUsage(u: UsageMetadata): Usage {
  return {
    inputTokens: (u.promptTokenCount ?? 0) + (u.toolUsePromptTokenCount ?? 0),
    cachedInputTokens: u.cachedContentTokenCount ?? 0,
    outputTokens: (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0),
  };
}

const ROUTE = /^\/(v1beta|v1)\/models\/([A-Za-z0-9._-]{1,128}):(generateContent|streamGenerateContent)$/;

function meter(): StreamMeter {
  let usage: Usage | null = null;
  let chars = 0;
  return {
    onEvent(event: SseEvent) {
      try {
        const data = JSON.parse(event.data);
        if (data.usageMetadata) usage = toUsage(data.usageMetadata);
        for (const part of data.candidates?.[0]?.content?.parts ?? []) chars += part.text?.length ?? 0;
      } catch { /* forward it unchanged */ }
      return event;
    },
    usage: () => usage,
    outputChars: () => chars,
  };
}

export const gemini: ProviderAdapter<GenerateContentBody> = {
  provider: "google",
  label: "Gemini",
  functionName: "google-proxy",
  keyEnv: "GEMINI_API_KEY",
  baseUrlEnv: "GEMINI_BASE_URL",
  defaultBaseUrl: "https://generativelanguage.googleapis.com",
  schema: generateContentSchema,
  route(path, search): Route | null {
    const m = ROUTE.exec(path);
    if (!m) return null;
    const stream = m[3] === "streamGenerateContent";
    if (stream && search.get("alt") !== "sse") return null; // only the SSE form streams through the gateway
    return {
      upstreamPath: `/${m[1]}/models/${m[2]}:${m[3]}${stream ? "?alt=sse" : ""}`,
      model: m[2],
      stream,
    };
  },
  describe: (body, route) => ({
    model: route.model!,
    stream: route.stream === true,
    requestedMaxOutput: body.generationConfig?.maxOutputTokens ?? null,
    choices: body.generationConfig?.candidateCount ?? 1,
  }),
  prepare: (body, _route, maxOutput) => ({
    body: {
      ...body,
      generationConfig: {
        ...(body.generationConfig ?? {}),
        maxOutputTokens: Math.min(body.generationConfig?.maxOutputTokens ?? maxOutput, maxOutput),
      },
    },
    clientWantsUsage: true,
  }),
  upstreamHeaders: (key) => ({ "x-goog-api-key": key }),
  usageFromJson: (json) => {
    const u = (json as { usageMetadata?: UsageMetadata } | null)?.usageMetadata;
    return u ? toUsage(u) : null;
  },
  createStreamMeter: () => meter(),
};
