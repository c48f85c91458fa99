// Google Gemini: POST /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse, as
// @google/genai sends them with httpOptions.baseUrl = <functions>/google-proxy and the user's Supabase
// access token as its API key (x-goog-api-key). usageMetadata is cumulative in every stream chunk. Its route also
// hands :embedContent and :batchEmbedContents to the embeddings endpoint (google-embeddings.ts) and :countTokens
// to the token count (google-count-tokens.ts).
//
// The allow-list, in both spellings the REST API accepts (camelCase and snake_case): contents, system
// instruction, function tools, tool and safety settings, cached content, and a generation config of text
// output. Refused: every tool billed beyond tokens or fetching what we cannot bound (Google Search and its
// retrieval, Maps, code execution, URL context, file search, computer use, enterprise web search), audio and
// image output (speech config, response modalities other than text). A file by URI and cached content are
// input the gateway cannot measure: the call is held as the plan's max input.
import { z } from "../../http/validation.ts";
import {
  type ProviderAdapter,
  type Route,
  type SseEvent,
  type StreamMeter,
  type Usage,
  usageOf,
  utf8Bytes,
} from "./adapter.ts";
import { allowList, BILLED_BEYOND_TOKENS, refused } from "./fields.ts";
import { both, GEMINI_API, MODEL_METHOD, oneSpelling } from "./google-api.ts";
import { geminiCountTokens } from "./google-count-tokens.ts";
import { geminiBatchEmbedContents, geminiEmbedContent } from "./google-embeddings.ts";
import { int, MAX_OUTPUT_FIELD } from "./openai-compatible.ts";

/** A Gemini tool, field by field (both spellings). */
export const toolFields = {
  ...both(
    "functionDeclarations",
    "function_declarations",
    z.array(z.object({}).passthrough()).max(512).optional(),
  ),
  ...both("googleSearch", "google_search", refused(`googleSearch ${BILLED_BEYOND_TOKENS}`)),
  ...both(
    "googleSearchRetrieval",
    "google_search_retrieval",
    refused(`googleSearchRetrieval ${BILLED_BEYOND_TOKENS}`),
  ),
  ...both("googleMaps", "google_maps", refused(`googleMaps ${BILLED_BEYOND_TOKENS}`)),
  ...both("codeExecution", "code_execution", refused(`codeExecution ${BILLED_BEYOND_TOKENS}`)),
  ...both("urlContext", "url_context", refused(`urlContext fetches URLs and ${BILLED_BEYOND_TOKENS}`)),
  ...both("fileSearch", "file_search", refused(`fileSearch ${BILLED_BEYOND_TOKENS}`)),
  ...both("computerUse", "computer_use", refused(`computerUse ${BILLED_BEYOND_TOKENS}`)),
  ...both(
    "enterpriseWebSearch",
    "enterprise_web_search",
    refused(`enterpriseWebSearch ${BILLED_BEYOND_TOKENS}`),
  ),
  retrieval: refused(`retrieval ${BILLED_BEYOND_TOKENS}`),
};
const tool = allowList(toolFields, "a Gemini tool").superRefine(oneSpelling);

const textModalities = z.array(
  z.enum(["TEXT", "text"], { error: `output other than text ${BILLED_BEYOND_TOKENS}` }),
).max(1);

/** Gemini's generationConfig, field by field (both spellings). */
export const generationConfigFields = {
  ...both("stopSequences", "stop_sequences", z.array(z.string().max(1024)).max(5).optional()),
  ...both("responseMimeType", "response_mime_type", z.string().max(128).optional()),
  ...both("responseSchema", "response_schema", z.object({}).passthrough().optional()),
  ...both("responseJsonSchema", "response_json_schema", z.unknown().optional()),
  ...both("responseModalities", "response_modalities", textModalities.optional()),
  ...both("candidateCount", "candidate_count", int(1, 8).optional()),
  ...both("maxOutputTokens", "max_output_tokens", int(1, MAX_OUTPUT_FIELD).optional()),
  temperature: z.number().min(0).max(2).optional(),
  ...both("topP", "top_p", z.number().min(0).max(1).optional()),
  ...both("topK", "top_k", int(1, 2048).optional()),
  seed: int(-(2 ** 31), 2 ** 31 - 1).optional(),
  ...both("presencePenalty", "presence_penalty", z.number().min(-2).max(2).optional()),
  ...both("frequencyPenalty", "frequency_penalty", z.number().min(-2).max(2).optional()),
  ...both("responseLogprobs", "response_logprobs", z.boolean().optional()),
  logprobs: int(0, 20).optional(),
  ...both("enableEnhancedCivicAnswers", "enable_enhanced_civic_answers", z.boolean().optional()),
  ...both("thinkingConfig", "thinking_config", z.object({}).passthrough().optional()),
  ...both("mediaResolution", "media_resolution", z.string().max(64).optional()),
  ...both("speechConfig", "speech_config", refused(`speechConfig (audio output) ${BILLED_BEYOND_TOKENS}`)),
  ...both("imageConfig", "image_config", refused(`imageConfig (image output) ${BILLED_BEYOND_TOKENS}`)),
};
const generationConfig = allowList(generationConfigFields, "a Gemini generationConfig").superRefine(
  oneSpelling,
);

/** The allow-list: each field the gateway forwards for Gemini generateContent (both spellings). */
export const generateContentFields = {
  contents: z.array(z.object({}).passthrough()).min(1).max(2000),
  tools: z.array(tool).max(128).optional(),
  ...both("toolConfig", "tool_config", z.object({}).passthrough().optional()),
  ...both("safetySettings", "safety_settings", z.array(z.object({}).passthrough()).max(32).optional()),
  ...both("systemInstruction", "system_instruction", z.object({}).passthrough().optional()),
  ...both("generationConfig", "generation_config", generationConfig.optional()),
  ...both("cachedContent", "cached_content", z.string().max(512).optional()),
};
export const generateContentSchema = allowList(generateContentFields, "Gemini generateContent").superRefine(
  oneSpelling,
);

export type GenerateContentBody = Record<string, unknown> & { contents: Record<string, unknown>[] };

type GenerationConfig = Record<string, unknown>;

/** The generation config under whichever spelling the client used (both is a 400 from the API itself). */
function configOf(body: GenerateContentBody): { key: string; config: GenerationConfig } {
  const key = body.generation_config !== undefined && body.generationConfig === undefined
    ? "generation_config"
    : "generationConfig";
  return { key, config: (body[key] as GenerationConfig | undefined) ?? {} };
}
const field = (config: GenerationConfig, camel: string, snake: string) => config[camel] ?? config[snake];

type UsageMetadata = {
  promptTokenCount?: unknown;
  candidatesTokenCount?: unknown;
  cachedContentTokenCount?: unknown;
  thoughtsTokenCount?: unknown;
  toolUsePromptTokenCount?: unknown;
};

/** Thinking tokens are billed as output (and counted as reasoning); tool-use prompt tokens as input. */
function toUsage(u: UsageMetadata): Usage {
  return usageOf({
    input: u.promptTokenCount,
    inputParts: [u.toolUsePromptTokenCount],
    cached: u.cachedContentTokenCount,
    output: u.candidatesTokenCount,
    outputParts: [u.thoughtsTokenCount],
    reasoning: u.thoughtsTokenCount,
  });
}

type Part = { text?: unknown; fileData?: unknown; file_data?: unknown; functionCall?: unknown };

/** The generated text of a response chunk or answer (every candidate, function calls included). */
function textOf(data: { candidates?: { content?: { parts?: Part[] } }[] } | null): string {
  const out: string[] = [];
  for (const candidate of data?.candidates ?? []) {
    for (const part of candidate?.content?.parts ?? []) {
      if (typeof part?.text === "string") out.push(part.text);
      if (part?.functionCall !== undefined) out.push(JSON.stringify(part.functionCall));
    }
  }
  return out.join("");
}

/** The other endpoints, each with its allow-list and usage, by the method the path names. */
const ENDPOINTS: Record<string, ProviderAdapter> = {
  embedContent: geminiEmbedContent as unknown as ProviderAdapter,
  batchEmbedContents: geminiBatchEmbedContents as unknown as ProviderAdapter,
  countTokens: geminiCountTokens as unknown as ProviderAdapter,
};

function meter(): StreamMeter {
  let usage: Usage | null = null;
  let bytes = 0;
  let final = false;
  return {
    onEvent(event: SseEvent) {
      try {
        const data = JSON.parse(event.data);
        if (data.usageMetadata) {
          usage = toUsage(data.usageMetadata);
          // The chunk that finishes a candidate carries the final counts.
          if ((data.candidates ?? []).some((c: { finishReason?: unknown }) => c?.finishReason != null)) {
            final = true;
          }
        }
        bytes += utf8Bytes(textOf(data));
      } catch { /* forward it unchanged */ }
      return event;
    },
    usage: () => usage,
    final: () => final,
    outputBytes: () => bytes,
  };
}

export const google: ProviderAdapter<GenerateContentBody> = {
  ...GEMINI_API,
  schema: generateContentSchema as unknown as z.ZodType<GenerateContentBody>,
  route(path, search): Route | null {
    const m = MODEL_METHOD.exec(path);
    if (!m) return null;
    const endpoint = Object.hasOwn(ENDPOINTS, m[3]) ? ENDPOINTS[m[3]] : undefined;
    if (endpoint) return { ...endpoint.route(path, search)!, endpoint };
    if (m[3] !== "generateContent" && m[3] !== "streamGenerateContent") return null;
    const stream = m[3] === "streamGenerateContent";
    if (stream && search.get("alt") !== "sse") return null; // only the SSE form streams through the gateway
    return {
      upstreamPath: `/${m[1]}/models/${m[2]}:${m[3]}${stream ? "?alt=sse" : ""}`,
      model: m[2],
      stream,
    };
  },
  describe: (body, route) => {
    const { config } = configOf(body);
    const parts = body.contents.flatMap((c) => Array.isArray(c.parts) ? c.parts as Part[] : []);
    return {
      model: route.model!,
      stream: route.stream === true,
      requestedMaxOutput: (field(config, "maxOutputTokens", "max_output_tokens") as number | undefined) ??
        null,
      choices: (field(config, "candidateCount", "candidate_count") as number | undefined) ?? 1,
      inputUnbounded: parts.some((p) => p?.fileData !== undefined || p?.file_data !== undefined) ||
        body.cachedContent !== undefined || body.cached_content !== undefined,
    };
  },
  prepare: (body, _route, maxOutput) => {
    const { key, config } = configOf(body);
    const asked = field(config, "maxOutputTokens", "max_output_tokens") as number | undefined;
    const { max_output_tokens: _snake, ...rest } = config;
    return {
      body: { ...body, [key]: { ...rest, maxOutputTokens: Math.min(asked ?? maxOutput, maxOutput) } },
      clientWantsUsage: true,
    };
  },
  usageFromJson: (json) => {
    const u = (json as { usageMetadata?: UsageMetadata } | null)?.usageMetadata;
    return u ? toUsage(u) : null;
  },
  outputTextOf: (json) => textOf(json as { candidates?: { content?: { parts?: Part[] } }[] } | null),
  createStreamMeter: () => meter(),
};
