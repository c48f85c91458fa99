// Fake LLM upstreams on 127.0.0.1, one HTTP server for four providers, speaking each one's real wire format
// closely enough that the official SDKs work against it with only the base URL and API key changed:
//
//   OpenAI      POST /v1/chat/completions                        SDK baseURL = `${url}/v1`
//               POST /v1/responses                               (the Responses API; `client.responses.*`)
//               POST /v1/embeddings                              (vectors as floats or base64, as asked)
//   Perplexity  POST /chat/completions                           SDK (openai) baseURL = url
//   Anthropic   POST /v1/messages                                SDK baseURL = url
//               POST /v1/messages/count_tokens                   ({input_tokens: inputTokens})
//   Gemini      POST /{v1,v1beta}/models/{model}:generateContent SDK httpOptions.baseUrl = url (genai 3.x uses v1)
//               POST /{v1,v1beta}/models/{model}:streamGenerateContent?alt=sse   (without alt=sse: a JSON array)
//               POST /{v1,v1beta}/models/{model}:embedContent, :batchEmbedContents  (usageMetadata.promptTokenCount)
//               POST /{v1,v1beta}/models/{model}:countTokens     ({totalTokens: inputTokens})
//
// Auth as each provider does it: OpenAI and Perplexity `Authorization: Bearer <key>`; Anthropic `x-api-key` or,
// as SDKs send it since API version 2026-10-21, `Authorization: Bearer` (x-api-key wins), with `anthropic-version`
// required (on 2026-10-21 and later, temperature/top_p/top_k are a 400 as upstream); Gemini `x-goog-api-key` or
// `?key=`. A wrong or missing key is answered in the provider's own error shape (OpenAI/Perplexity 401,
// Anthropic 401 authentication_error, Gemini 400 API_KEY_INVALID, or 403 PERMISSION_DENIED when missing).
//
// Output is deterministic. The reply is `script.reply`, else "echo: " + the text of the last user message. A stream
// splits it into `chunks` content chunks (by code points: chunk i is [floor(i*len/n), floor((i+1)*len/n))).
//
// Tool calling: `toolCalls` makes the answer the script's `reply` (none unless given) followed by those calls, in
// each format (Perplexity has no tool calling and ignores them): OpenAI chat `message.tool_calls` with
// finish_reason "tool_calls" (streams: `delta.tool_calls`, first the id and name, then the arguments in two
// pieces); Responses `function_call` output items (streams: output_item.added, two
// function_call_arguments.delta, .done, output_item.done); Anthropic `tool_use` blocks with stop_reason
// "tool_use" (streams: content_block_start with input {}, two input_json_delta, content_block_stop); Gemini
// `functionCall` parts with finishReason STOP (streams: one chunk holding them all). In a stream each of those
// events (Gemini's one chunk) is a content chunk too, after the text's, for hangAfterChunks, errorAfterChunks and
// chunksSent. Ids are deterministic: `call_<seq>_<i>` (Anthropic `toolu_<seq>_<i>`, a Responses item
// `fc_<seq>_<i>`; Gemini sends an id only when the script gives one), `seq` being the request's `calls[].seq`.
// `toolResultsIn(call)` and `lastUserTextIn(call)` read a recorded request back, in its format. A script can also
// depend on the request: the `scriptFor` option is asked for each one (see FakeLlmOptions).
// Token counts are the script's, never counted from text (see `reportedUsage` for the exact per-provider objects):
//   inputTokens   total prompt tokens, cached ones included       (default 11)
//   outputTokens  total output tokens, reasoning ones included    (default 7)
//   cachedTokens  prompt tokens read from cache (<= input)        (default 0); "prefix": input, cached and
//                 (Anthropic) cache-creation tokens computed from the request itself, from what it re-sends of
//                 earlier prompts, by each provider's caching rule (fake-llm-cache.ts; `cacheMinTokens`, default
//                 1024, is the smallest cacheable prefix)
//   cacheCreationTokens  prompt tokens written to cache (Anthropic only; cached + creation <= input) (default 0)
//   reasoningTokens      output tokens spent thinking (<= output)  (default 0)
// A stream reports cumulative usage where the provider does (Perplexity chunks, Gemini chunks, Anthropic
// message_delta): after content chunk i (0-based) of n, output so far is floor(output * (i + 1) / n).
// `usage` bends that for clients that must cope with odd upstreams: "omit" reports no usage at all (no `usage` /
// `usageMetadata` key anywhere, no OpenAI usage chunk even when asked for, Anthropic message_start without usage
// and message_delta without `usage`); an object is merged (shallow, its fields win) into every usage object sent
// (non-stream usage, OpenAI's usage chunk, each Perplexity/Gemini chunk, Anthropic message_start and
// message_delta), its values sent as they are: `{ prompt_tokens: 12.5 }`, `{ output_tokens: -1 }`, `"12"` ….
//
// Framing, for clients' parsers: `byteChunks` writes a stream (and a non-stream answer's body) one byte per write,
// so events arrive split anywhere, even inside a UTF-8 character; `crlf` frames OpenAI, Perplexity and Anthropic
// SSE with CRLF line ends (Gemini always uses CRLF, as Google does).
//
// Fault injection through `setScript`: `status` (answer that status in the provider's error shape), `delayMs`
// before anything is answered, `chunkDelayMs` between stream events, `hangAfterChunks` (send that many content
// chunks, then nothing until the client goes away), `errorAfterChunks` (a mid-stream error event in the
// provider's format). Every request is recorded in `calls` (provider, path, lower-case headers, parsed body) and
// `calls[i].aborted` turns true, and `calls[i].settled` resolves "aborted", when the client goes away first. That
// is always seen once a stream's headers are out (chunkDelayMs, hangAfterChunks); while the answer is still held
// back (delayMs, a non-streaming hang) Deno's server notices a client leaving only for small requests, so there
// the exchange is only certain to end when `stop()` ends it (as aborted).
//
//   await using llm = await startFakeLlm();
//   llm.setScript({ inputTokens: 120, outputTokens: 45, cachedTokens: 20, chunks: 5 });
//   llm.setScript({ status: 503, times: 1, provider: "openai" });   // only the next OpenAI request fails
//
// Per request the server parses the body and serialises the answer once; a stream without delays (or byteChunks)
// is sent as one body. For a throughput benchmark start it with `recordCalls: false` (or run this file: `deno run
// --allow-net supabase/functions/tests/_lib/fake-llm.ts --port 12120`), so memory stays flat.

import { setImmediate } from "node:timers";
import { PromptCaches } from "./fake-llm-cache.ts";

export type LlmProvider = "openai" | "anthropic" | "google" | "perplexity";
export const LLM_PROVIDERS: readonly LlmProvider[] = ["openai", "anthropic", "google", "perplexity"];

/** The key every provider accepts unless `apiKey`/`apiKeys` says otherwise. */
export const FAKE_LLM_API_KEY = "fake-llm-test-key";

export type StopReason = "stop" | "length";

/**
 * Which of a provider's APIs a request spoke: OpenAI `chat` (/v1/chat/completions), `responses` (/v1/responses) or
 * `embeddings` (/v1/embeddings: one deterministic vector per input, usage {prompt_tokens: inputTokens}),
 * Perplexity `chat`, Anthropic `messages` or `countTokens` (/v1/messages/count_tokens), Gemini `generateContent`
 * (streaming or not), `embedContent` / `batchEmbedContents` (one deterministic vector per content, usageMetadata
 * {promptTokenCount: inputTokens}) or `countTokens`. A count answers the script's inputTokens and never a usage key.
 */
export type LlmApi =
  | "chat"
  | "responses"
  | "embeddings"
  | "messages"
  | "generateContent"
  | "embedContent"
  | "batchEmbedContents"
  | "countTokens";

/** A tool call the fake answers with (script.toolCalls). */
export type FakeToolCall = { name: string; arguments: Record<string, unknown>; id?: string };

/** A tool call as one answer sent it: its id (Gemini: only a scripted one), name and arguments. */
export type SentToolCall = { id: string | undefined; name: string; arguments: Record<string, unknown> };

/** A tool's result as a request carries it back (see toolResultsIn). */
export type ToolResult = { id?: string; name?: string; output: unknown };

export type FakeLlmScript = {
  /** The reply text; default "echo: " + the text of the last user message (no text when toolCalls is set). */
  reply?: string;
  /**
   * Answer with these tool calls (after the reply text, if one is given); ids default to `call_<seq>_<i>`
   * (Anthropic `toolu_<seq>_<i>`). Perplexity ignores them. Default none.
   */
  toolCalls?: readonly FakeToolCall[];
  /** Content chunks in a stream (default 5). */
  chunks?: number;
  inputTokens?: number;
  outputTokens?: number;
  /**
   * A number, or "prefix": the input tokens (~4 characters a token) and the cached ones computed from the request,
   * as the provider's prompt cache would report them given the earlier requests (fake-llm-cache.ts); the script's
   * inputTokens, cachedTokens and cacheCreationTokens are then ignored.
   */
  cachedTokens?: number | "prefix";
  /** With cachedTokens "prefix": the smallest prefix, in tokens, a provider caches (default 1024). */
  cacheMinTokens?: number;
  cacheCreationTokens?: number;
  reasoningTokens?: number;
  /** Why generation stopped: OpenAI/Perplexity stop|length, Anthropic end_turn|max_tokens, Gemini STOP|MAX_TOKENS. */
  stopReason?: StopReason;
  /** Answer this HTTP status (>= 400) in the provider's error shape, after auth. */
  status?: number;
  /** The error message for `status` / `errorAfterChunks` (default: what the provider says for that status). */
  errorMessage?: string;
  /** Seconds, sent as `retry-after` with an error status. */
  retryAfter?: number;
  /** Wait this long before answering anything (ends early if Deno reports that the client went away). */
  delayMs?: number;
  /** Wait this long between stream events. */
  chunkDelayMs?: number;
  /**
   * Streams: send the preamble and this many content chunks, then nothing, keeping the connection open until the
   * client goes away (or `stop()`). Non-streaming requests: send no answer at all until then.
   */
  hangAfterChunks?: number;
  /** Streams: after this many content chunks, send the provider's mid-stream error event and end the stream. */
  errorAfterChunks?: number;
  /** The status of that mid-stream error (default 500; Anthropic 529 is overloaded_error). */
  streamErrorStatus?: number;
  /**
   * "omit": report no usage at all (no `usage` / `usageMetadata` key in answers or stream events, no OpenAI usage
   * chunk even with stream_options.include_usage, Anthropic message_start without usage and message_delta without
   * `usage`). An object: merged (shallow, its fields win) into every usage object the provider sends for the
   * script (non-stream usage, OpenAI's usage chunk, each Perplexity and Gemini chunk, Anthropic message_start and
   * message_delta), values sent as given and never validated, e.g. `{ prompt_tokens: 12.5 }`,
   * `{ completion_tokens: "12" }`, `{ output_tokens: -1 }`, `{ candidatesTokenCount: 1e20 }`. Default: neither.
   */
  usage?: "omit" | Record<string, unknown>;
  /**
   * Non-stream requests: answer 200 with exactly this body as `text/plain` (not the provider's JSON), as a proxy
   * or load balancer in front of a provider sometimes does. Streams ignore it.
   */
  rawBody?: string;
  /**
   * Write a stream's body (and a non-stream answer's JSON, then sent chunked) one byte per write, each byte its own
   * HTTP chunk, so a client sees events split anywhere, even inside a multi-byte UTF-8 character (default false).
   * `chunkDelayMs` still applies between events, not between bytes.
   */
  byteChunks?: boolean;
  /**
   * Frame OpenAI, Perplexity and Anthropic SSE events with CRLF: `\r\n` line ends, `\r\n\r\n` between events
   * (default false; Gemini's SSE is always CRLF-framed, as Google's is).
   */
  crlf?: boolean;
  /** Only requests to these providers (default all). */
  provider?: LlmProvider | readonly LlmProvider[];
  /**
   * Without `times` the script is the standing one (for `provider`, or for all providers, replacing every other
   * script). With `times` it applies to the next `times` matching requests only, on top of the standing script.
   */
  times?: number;
};

/** A script with every default filled in. */
export type ResolvedScript = {
  reply: string | undefined;
  toolCalls: readonly FakeToolCall[] | undefined;
  chunks: number;
  inputTokens: number;
  outputTokens: number;
  cachedTokens: number;
  /** cachedTokens "prefix": computed per request (see FakeLlmScript.cachedTokens). */
  cachePrefix: boolean;
  cacheMinTokens: number;
  cacheCreationTokens: number;
  reasoningTokens: number;
  stopReason: StopReason;
  status: number;
  errorMessage: string | undefined;
  retryAfter: number | undefined;
  delayMs: number;
  chunkDelayMs: number;
  hangAfterChunks: number | undefined;
  errorAfterChunks: number | undefined;
  streamErrorStatus: number;
  usage: "omit" | Record<string, unknown> | undefined;
  rawBody: string | undefined;
  byteChunks: boolean;
  crlf: boolean;
};

export const DEFAULT_SCRIPT: Readonly<ResolvedScript> = Object.freeze({
  reply: undefined,
  toolCalls: undefined,
  chunks: 5,
  inputTokens: 11,
  outputTokens: 7,
  cachedTokens: 0,
  cachePrefix: false,
  cacheMinTokens: 1024,
  cacheCreationTokens: 0,
  reasoningTokens: 0,
  stopReason: "stop",
  status: 0,
  errorMessage: undefined,
  retryAfter: undefined,
  delayMs: 0,
  chunkDelayMs: 0,
  hangAfterChunks: undefined,
  errorAfterChunks: undefined,
  streamErrorStatus: 500,
  usage: undefined,
  rawBody: undefined,
  byteChunks: false,
  crlf: false,
});

export type FakeLlmCall = {
  /** 1, 2, … in arrival order. */
  readonly seq: number;
  readonly provider: LlmProvider;
  readonly api: LlmApi;
  readonly method: string;
  /** The path without the query, e.g. /v1beta/models/gemini-2.5-flash:streamGenerateContent. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed JSON body (null when empty or not JSON). */
  readonly body: unknown;
  /** body.model, or the model in a Gemini path. */
  readonly model: string;
  readonly stream: boolean;
  readonly receivedAt: number;
  /** The reply text (also for error answers: what it would have been). */
  readonly reply: string;
  /** The tool calls answered (or that would have been), ids filled in; [] for none (and always for Perplexity). */
  readonly toolCalls: readonly SentToolCall[];
  /** The HTTP status answered (0 until answered). */
  status: number;
  /** Content chunks written so far (streams; a non-stream answer counts as its `chunks`). */
  chunksSent: number;
  /** True once the client went away before the answer was complete. */
  aborted: boolean;
  /** True once the answer was sent in full. */
  completed: boolean;
  /** Settles when the exchange ends: "completed", or "aborted" (client gone, or the server stopped). */
  readonly settled: Promise<"completed" | "aborted">;
};

export type FakeLlmOptions = {
  /** Default 0 (an ephemeral port). */
  port?: number;
  hostname?: string;
  /** The key all providers accept (default FAKE_LLM_API_KEY). */
  apiKey?: string;
  /** Per-provider keys, over `apiKey`. */
  apiKeys?: Partial<Record<LlmProvider, string>>;
  /** The initial standing script. */
  script?: FakeLlmScript;
  /** Record requests in `calls` (default true); `counts` are kept either way. */
  recordCalls?: boolean;
  /**
   * Asked for every request (after its auth is known to be needed, before it is answered): a script for this one
   * request, over what setScript says (the standing script and any `times` one), or undefined for just that. For
   * answers that depend on the request (e.g. a tool loop of a length the prompt names) when requests interleave.
   */
  scriptFor?: (request: { provider: LlmProvider; api: LlmApi; body: unknown }) => FakeLlmScript | undefined;
};

// ------------------------------------------------------------------------------------ token rules

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** Perplexity's usage (sonar prices: $1/M input and output tokens, $0.005 per request at low context). */
function perplexityUsage(input: number, output: number) {
  const inputCost = round6(input / 1e6);
  const outputCost = round6(output / 1e6);
  return {
    prompt_tokens: input,
    completion_tokens: output,
    total_tokens: input + output,
    search_context_size: "low",
    cost: {
      input_tokens_cost: inputCost,
      output_tokens_cost: outputCost,
      request_cost: 0.005,
      total_cost: round6(inputCost + outputCost + 0.005),
    },
  };
}

function googleUsage(s: ResolvedScript, candidates: number) {
  return {
    promptTokenCount: s.inputTokens,
    candidatesTokenCount: candidates,
    totalTokenCount: s.inputTokens + candidates + s.reasoningTokens,
    ...(s.cachedTokens > 0 && { cachedContentTokenCount: s.cachedTokens }),
    promptTokensDetails: [{ modality: "TEXT", tokenCount: s.inputTokens }],
    ...(s.cachedTokens > 0 && { cacheTokensDetails: [{ modality: "TEXT", tokenCount: s.cachedTokens }] }),
    ...(s.reasoningTokens > 0 && { thoughtsTokenCount: s.reasoningTokens }),
  };
}

function anthropicUsage(s: ResolvedScript, output: number) {
  return {
    input_tokens: s.inputTokens - s.cachedTokens - s.cacheCreationTokens,
    cache_creation_input_tokens: s.cacheCreationTokens,
    cache_read_input_tokens: s.cachedTokens,
    cache_creation: { ephemeral_5m_input_tokens: s.cacheCreationTokens, ephemeral_1h_input_tokens: 0 },
    output_tokens: output,
    service_tier: "standard",
  };
}

function openaiUsage(s: ResolvedScript) {
  return {
    prompt_tokens: s.inputTokens,
    completion_tokens: s.outputTokens,
    total_tokens: s.inputTokens + s.outputTokens,
    prompt_tokens_details: { cached_tokens: s.cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: s.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** The Responses API's usage: input and output totals, with the cached and reasoning parts in their details. */
function responsesUsage(s: ResolvedScript) {
  return {
    input_tokens: s.inputTokens,
    input_tokens_details: { cached_tokens: s.cachedTokens },
    output_tokens: s.outputTokens,
    output_tokens_details: { reasoning_tokens: s.reasoningTokens },
    total_tokens: s.inputTokens + s.outputTokens,
  };
}

/** Whose usage object: a provider's, or "responses" for OpenAI's Responses API. */
export type UsageFormat = LlmProvider | "responses";

/** `own` as the script has it reported: null for usage "omit", else with the script's `usage` fields over it. */
function scripted(s: ResolvedScript, own: Record<string, unknown>): Record<string, unknown> | null {
  if (s.usage === "omit") return null;
  return s.usage ? { ...own, ...s.usage } : own;
}

/** The usage a non-stream answer (or the end of a stream) reports, before the script's `usage` is applied. */
function ownUsage(provider: UsageFormat, s: ResolvedScript): Record<string, unknown> {
  switch (provider) {
    case "responses":
      return responsesUsage(s);
    case "openai":
      return openaiUsage(s);
    case "perplexity":
      return perplexityUsage(s.inputTokens, s.outputTokens);
    case "anthropic":
      return anthropicUsage(s, s.outputTokens);
    case "google":
      return googleUsage(s, s.outputTokens - s.reasoningTokens);
  }
}

/**
 * The usage object a provider reports for a script (non-stream answer, or the final one of a stream):
 *   openai      usage {prompt_tokens: input, completion_tokens: output, total_tokens: input + output,
 *               prompt_tokens_details.cached_tokens: cached, completion_tokens_details.reasoning_tokens: reasoning}
 *   responses   usage {input_tokens: input, input_tokens_details.cached_tokens: cached, output_tokens: output,
 *               output_tokens_details.reasoning_tokens: reasoning, total_tokens: input + output}  (OpenAI Responses)
 *   perplexity  usage {prompt_tokens: input, completion_tokens: output, total_tokens, search_context_size, cost}
 *   anthropic   usage {input_tokens: input - cached - cacheCreation (uncached, as Anthropic counts),
 *               cache_read_input_tokens: cached, cache_creation_input_tokens: cacheCreation, output_tokens: output}
 *   google      usageMetadata {promptTokenCount: input, candidatesTokenCount: output - reasoning,
 *               totalTokenCount: input + output, cachedContentTokenCount: cached (only when > 0),
 *               thoughtsTokenCount: reasoning (only when > 0)}
 * with the script's `usage` object merged over it; null when the script's `usage` is "omit" (nothing reported).
 */
export function reportedUsage(
  provider: UsageFormat,
  script?: Omit<FakeLlmScript, "usage"> & { usage?: Record<string, unknown> },
): Record<string, unknown>;
export function reportedUsage(provider: UsageFormat, script?: FakeLlmScript): Record<string, unknown> | null;
export function reportedUsage(
  provider: UsageFormat,
  script: FakeLlmScript = {},
): Record<string, unknown> | null {
  const s = resolveScript(script);
  return scripted(s, ownUsage(provider, s));
}

/** Output tokens reported after content chunk `i` (0-based) of `n`. */
const cumulative = (total: number, i: number, n: number) => Math.floor(total * (i + 1) / n);

/** The reply split as a stream sends it: `n` pieces by code points (empty pieces when the text is shorter). */
export function splitReply(text: string, n: number): string[] {
  const points = Array.from(text);
  const pieces: string[] = [];
  for (let i = 0; i < n; i++) {
    pieces.push(
      points.slice(Math.floor(i * points.length / n), Math.floor((i + 1) * points.length / n)).join(""),
    );
  }
  return pieces;
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  let text = "";
  for (const part of content) {
    if (part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") {
      text += (part as { text: string }).text;
    }
  }
  return text;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

const listIn = (body: unknown, key: string): Record<string, unknown>[] => {
  const list = isRecord(body) ? body[key] : undefined;
  return Array.isArray(list) ? list.filter(isRecord) : [];
};

/** True for a message content that is a list of parts, every one of them a tool's result (no text to echo). */
const onlyToolResults = (parts: unknown, isResult: (part: Record<string, unknown>) => boolean) =>
  Array.isArray(parts) && parts.length > 0 && parts.every((p) => isRecord(p) && isResult(p));

/** The API each provider's main endpoint speaks. */
const MAIN_API: Record<LlmProvider, LlmApi> = {
  openai: "chat",
  perplexity: "chat",
  anthropic: "messages",
  google: "generateContent",
};

/**
 * The text of the last user message of a request body in `api`'s format (chat/messages `messages[].content`,
 * Gemini `contents[].parts`, Responses `input` as a string or its last user item); user turns that only carry tool
 * results (Anthropic tool_result blocks, Gemini functionResponse parts) are skipped.
 */
function userTextOf(api: LlmApi, body: unknown): string {
  if (api === "responses") {
    const input = isRecord(body) ? body.input : undefined;
    if (typeof input === "string") return input;
    const items = listIn(body, "input");
    for (let i = items.length - 1; i >= 0; i--) {
      if (items[i].role === "user") return textOf(items[i].content);
    }
    return "";
  }
  const google = api === "generateContent";
  const list = listIn(body, google ? "contents" : "messages");
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i];
    if (google) {
      if (m.role !== undefined && m.role !== "user") continue;
      if (onlyToolResults(m.parts, (p) => p.functionResponse !== undefined)) continue;
      return textOf(m.parts);
    }
    if (m.role !== "user") continue;
    if (onlyToolResults(m.content, (p) => p.type === "tool_result")) continue;
    return textOf(m.content);
  }
  return "";
}

/** The text of the last user message of a request body (messages[].content, or Gemini contents[].parts). */
export function lastUserText(provider: LlmProvider, body: unknown): string {
  return userTextOf(MAIN_API[provider], body);
}

/** The text of the last user message of a recorded request, in its API's format (see userTextOf). */
export function lastUserTextIn(call: Pick<FakeLlmCall, "api" | "body">): string {
  return userTextOf(call.api, call.body);
}

/**
 * The tool results a recorded request carries back, in order, each with the id of the call it answers and the
 * tool's name where the request names it (for chat, Responses and Anthropic: from the earlier assistant tool
 * call with that id): chat `role: "tool"` messages (output: their content), Responses `function_call_output`
 * items (output), Anthropic `tool_result` blocks (content), Gemini `functionResponse` parts (response).
 */
export function toolResultsIn(call: Pick<FakeLlmCall, "api" | "body">): ToolResult[] {
  const results: ToolResult[] = [];
  const names = new Map<unknown, string>();
  const named = (id: unknown, name: unknown) => {
    if (typeof name === "string") names.set(id, name);
  };
  const result = (id: unknown, output: unknown, name?: unknown) =>
    results.push({
      ...(typeof id === "string" && { id }),
      ...(typeof (name ?? names.get(id)) === "string" && { name: (name ?? names.get(id)) as string }),
      output,
    });
  switch (call.api) {
    case "chat":
      for (const m of listIn(call.body, "messages")) {
        if (m.role === "assistant" && Array.isArray(m.tool_calls)) {
          for (const c of m.tool_calls.filter(isRecord)) named(c.id, isRecord(c.function) && c.function.name);
        } else if (m.role === "tool") result(m.tool_call_id, m.content);
      }
      break;
    case "responses":
      for (const item of listIn(call.body, "input")) {
        if (item.type === "function_call") named(item.call_id, item.name);
        else if (item.type === "function_call_output") result(item.call_id, item.output);
      }
      break;
    case "messages":
      for (const m of listIn(call.body, "messages")) {
        if (!Array.isArray(m.content)) continue;
        for (const block of m.content.filter(isRecord)) {
          if (block.type === "tool_use") named(block.id, block.name);
          else if (block.type === "tool_result") result(block.tool_use_id, block.content);
        }
      }
      break;
    case "generateContent":
      for (const c of listIn(call.body, "contents")) {
        for (const part of listIn(c, "parts")) {
          const r = part.functionResponse;
          if (isRecord(r)) result(r.id, r.response, r.name);
        }
      }
      break;
  }
  return results;
}

function nonNegativeInt(name: string, v: unknown) {
  if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0)) {
    throw new TypeError(`fake-llm: ${name} must be a non-negative integer, got ${String(v)}`);
  }
}

function resolveScript(script: FakeLlmScript, base: ResolvedScript = DEFAULT_SCRIPT): ResolvedScript {
  const s: ResolvedScript = { ...base };
  for (const key of Object.keys(s) as (keyof ResolvedScript)[]) {
    const v = (script as Record<string, unknown>)[key];
    if (v !== undefined && key !== "cachedTokens" && key !== "cachePrefix") {
      (s as Record<string, unknown>)[key] = v;
    }
  }
  if (script.cachedTokens === "prefix") {
    s.cachePrefix = true;
    s.cachedTokens = 0;
    s.cacheCreationTokens = 0;
  } else if (script.cachedTokens !== undefined) {
    s.cachePrefix = false;
    s.cachedTokens = script.cachedTokens;
  }
  for (
    const k of [
      "chunks",
      "inputTokens",
      "outputTokens",
      "cachedTokens",
      "cacheMinTokens",
      "cacheCreationTokens",
      "reasoningTokens",
      "delayMs",
      "chunkDelayMs",
      "hangAfterChunks",
      "errorAfterChunks",
      "times",
    ] as const
  ) nonNegativeInt(k, k === "times" ? script.times : s[k]);
  if (s.chunks < 1) throw new TypeError("fake-llm: chunks must be at least 1");
  if (s.cachedTokens + s.cacheCreationTokens > s.inputTokens) {
    throw new TypeError("fake-llm: cachedTokens + cacheCreationTokens must not exceed inputTokens");
  }
  if (s.reasoningTokens > s.outputTokens) {
    throw new TypeError("fake-llm: reasoningTokens must not exceed outputTokens");
  }
  if (
    s.usage !== undefined && s.usage !== "omit" &&
    (s.usage === null || typeof s.usage !== "object" || Array.isArray(s.usage))
  ) {
    throw new TypeError(`fake-llm: usage must be "omit" or an object, got ${JSON.stringify(s.usage)}`);
  }
  if (s.toolCalls !== undefined) {
    if (!Array.isArray(s.toolCalls)) throw new TypeError("fake-llm: toolCalls must be an array");
    for (const c of s.toolCalls as unknown[]) {
      if (
        !isRecord(c) || typeof c.name !== "string" || c.name === "" || !isRecord(c.arguments) ||
        (c.id !== undefined && (typeof c.id !== "string" || c.id === ""))
      ) {
        throw new TypeError(
          `fake-llm: each tool call needs a name, an arguments object and, if any, a string id; got ${
            JSON.stringify(c)
          }`,
        );
      }
    }
  }
  if (s.rawBody !== undefined && typeof s.rawBody !== "string") {
    throw new TypeError(`fake-llm: rawBody must be a string, got ${typeof s.rawBody}`);
  }
  for (const k of ["byteChunks", "crlf"] as const) {
    if (typeof s[k] !== "boolean") {
      throw new TypeError(`fake-llm: ${k} must be a boolean, got ${String(s[k])}`);
    }
  }
  for (const k of ["status", "streamErrorStatus"] as const) {
    if (s[k] !== 0 && !(Number.isInteger(s[k]) && s[k] >= 400 && s[k] <= 599)) {
      throw new TypeError(`fake-llm: ${k} must be an error status (400-599), got ${s[k]}`);
    }
  }
  return s;
}

// ------------------------------------------------------------------------------------ error shapes

type Answer = { status: number; body: string; headers: Record<string, string> };

const JSON_TYPE = "application/json";
const SSE_TYPE = "text/event-stream; charset=utf-8";

const OPENAI_ERRORS: Record<number, [type: string, code: string | null, message: string]> = {
  400: ["invalid_request_error", null, "Invalid request."],
  401: ["invalid_request_error", "invalid_api_key", "Incorrect API key provided."],
  403: [
    "invalid_request_error",
    "unsupported_country_region_territory",
    "Country, region, or territory not supported",
  ],
  404: [
    "invalid_request_error",
    "model_not_found",
    "The model does not exist or you do not have access to it.",
  ],
  429: ["requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."],
  500: ["server_error", null, "The server had an error while processing your request. Sorry about that!"],
  503: ["server_error", null, "The engine is currently overloaded, please try again later."],
};

function openaiError(status: number, message?: string, param: string | null = null, code?: string | null) {
  const [type, defaultCode, defaultMessage] = OPENAI_ERRORS[status] ??
    (status >= 500 ? OPENAI_ERRORS[500] : OPENAI_ERRORS[400]);
  return {
    error: { message: message ?? defaultMessage, type, param, code: code === undefined ? defaultCode : code },
  };
}

const PERPLEXITY_ERRORS: Record<number, [type: string, message: string]> = {
  400: ["bad_request", "Invalid request."],
  401: [
    "invalid_api_key",
    "Invalid API key provided. You can find your API key at https://www.perplexity.ai/settings/api.",
  ],
  429: ["rate_limit_exceeded", "Rate limit exceeded. Please try again later."],
  500: ["internal_server_error", "Internal server error."],
};

function perplexityError(status: number, message?: string) {
  const [type, defaultMessage] = PERPLEXITY_ERRORS[status] ??
    (status >= 500 ? PERPLEXITY_ERRORS[500] : PERPLEXITY_ERRORS[400]);
  return { error: { message: message ?? defaultMessage, type, code: status } };
}

const ANTHROPIC_ERRORS: Record<number, [type: string, message: string]> = {
  400: ["invalid_request_error", "Invalid request."],
  401: ["authentication_error", "invalid x-api-key"],
  402: ["billing_error", "Your credit balance is too low to access the Anthropic API."],
  403: ["permission_error", "Your API key does not have permission to use the specified resource."],
  404: ["not_found_error", "Not found."],
  413: ["request_too_large", "Request exceeds the maximum allowed number of bytes."],
  429: ["rate_limit_error", "This request would exceed your organization's rate limit."],
  500: ["api_error", "Internal server error"],
  504: ["timeout_error", "Request timed out."],
  529: ["overloaded_error", "Overloaded"],
};

/** Anthropic's error body; `request_id` is in HTTP error bodies, not in a stream's error event. */
function anthropicError(status: number, message: string | undefined, requestId?: string) {
  const [type, defaultMessage] = ANTHROPIC_ERRORS[status] ??
    (status >= 500 ? ANTHROPIC_ERRORS[500] : ANTHROPIC_ERRORS[400]);
  return {
    type: "error",
    error: { type, message: message ?? defaultMessage },
    ...(requestId && { request_id: requestId }),
  };
}

const GOOGLE_ERRORS: Record<number, [status: string, message: string]> = {
  400: ["INVALID_ARGUMENT", "Request contains an invalid argument."],
  401: ["UNAUTHENTICATED", "Request had invalid authentication credentials."],
  403: ["PERMISSION_DENIED", "The caller does not have permission."],
  404: ["NOT_FOUND", "Requested entity was not found."],
  409: ["ABORTED", "The operation was aborted."],
  429: [
    "RESOURCE_EXHAUSTED",
    "You exceeded your current quota, please check your plan and billing details.",
  ],
  499: ["CANCELLED", "The operation was cancelled."],
  500: [
    "INTERNAL",
    "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guides/troubleshooting",
  ],
  501: ["NOT_IMPLEMENTED", "Method is not supported."],
  503: ["UNAVAILABLE", "The model is overloaded. Please try again later."],
  504: ["DEADLINE_EXCEEDED", "The request timed out. Please try again."],
};

function googleError(code: number, message?: string, details?: unknown[]) {
  const [status, defaultMessage] = GOOGLE_ERRORS[code] ??
    (code >= 500 ? GOOGLE_ERRORS[500] : GOOGLE_ERRORS[400]);
  return { error: { code, message: message ?? defaultMessage, status, ...(details && { details }) } };
}

// ------------------------------------------------------------------------------------ server

type Route = { provider: LlmProvider; api: LlmApi; model?: string; stream?: boolean };

const GOOGLE_PATH =
  /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents|countTokens)$/;
const ROUTES: Record<string, Route> = {
  "/v1/chat/completions": { provider: "openai", api: "chat" },
  "/v1/responses": { provider: "openai", api: "responses" },
  "/v1/embeddings": { provider: "openai", api: "embeddings" },
  "/chat/completions": { provider: "perplexity", api: "chat" },
  "/v1/messages": { provider: "anthropic", api: "messages" },
  "/v1/messages/count_tokens": { provider: "anthropic", api: "countTokens" },
};

function route(path: string): Route | null {
  const r = ROUTES[path];
  if (r) return r;
  const m = GOOGLE_PATH.exec(path);
  if (!m) return null;
  const method = m[3] === "streamGenerateContent" ? "generateContent" : m[3] as LlmApi;
  return {
    provider: "google",
    api: method,
    model: decodeURIComponent(m[2]),
    stream: m[3] === "streamGenerateContent",
  };
}

/** The tool calls a script makes one request answer, ids filled in (Perplexity: none). */
function sentToolCalls(provider: LlmProvider, seq: number, calls: readonly FakeToolCall[] | undefined) {
  if (!calls || provider === "perplexity") return [];
  const prefix = provider === "anthropic" ? "toolu" : "call";
  return calls.map((c, i): SentToolCall => ({
    id: c.id ?? (provider === "google" ? undefined : `${prefix}_${seq}_${i}`),
    name: c.name,
    arguments: structuredClone(c.arguments),
  }));
}

const encoder = new TextEncoder();
const nowSeconds = () => Math.floor(Date.now() / 1000);

type MutableCall = { -readonly [K in keyof FakeLlmCall]: FakeLlmCall[K] };

/** One request in flight: its record and the signal that ends its waits (client gone or server stopped). */
class Exchange {
  readonly call: MutableCall;
  readonly #done = new AbortController();
  readonly #resolve: (v: "completed" | "aborted") => void;

  constructor(call: Omit<MutableCall, "settled">) {
    const { promise, resolve } = Promise.withResolvers<"completed" | "aborted">();
    this.call = Object.assign(call, { settled: promise });
    this.#resolve = resolve;
  }

  get signal(): AbortSignal {
    return this.#done.signal;
  }

  get ended(): boolean {
    return this.#done.signal.aborted;
  }

  complete() {
    if (this.ended) return;
    this.call.completed = true;
    this.#done.abort();
    this.#resolve("completed");
  }

  abort() {
    if (this.ended) return;
    this.call.aborted = true;
    this.#done.abort();
    this.#resolve("aborted");
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Resolves on the event loop's next turn, after pending I/O (a timer would be clamped to 4 ms when nested). */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Enqueues `bytes` one byte per chunk, waiting a turn of the event loop after each: Deno's server coalesces
 * chunks enqueued together into one write, but sends each on its own (one HTTP chunk per byte) when it gets the
 * chance. False when the exchange ended first.
 */
async function writeBytes(
  controller: ReadableStreamDefaultController<Uint8Array>,
  bytes: Uint8Array,
  signal: AbortSignal,
): Promise<boolean> {
  for (let i = 0; i < bytes.length; i++) {
    if (signal.aborted) return false;
    controller.enqueue(bytes.slice(i, i + 1));
    await nextTurn();
  }
  return !signal.aborted;
}

/** A whole answer body written one byte per chunk (script.byteChunks on a non-stream answer). */
function byteBody(ex: Exchange, text: string): ReadableStream<Uint8Array> {
  const write = async (controller: ReadableStreamDefaultController<Uint8Array>) => {
    try {
      if (await writeBytes(controller, encoder.encode(text), ex.signal)) return controller.close();
    } catch {
      ex.abort(); // the client went away while we wrote
    }
    try {
      controller.error(new Error("fake-llm: exchange aborted"));
    } catch {
      // already closed or cancelled
    }
  };
  return new ReadableStream<Uint8Array>({
    start: (controller) => {
      write(controller);
    },
    cancel: () => ex.abort(),
  });
}

const untilAborted = (signal: AbortSignal): Promise<void> =>
  signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));

/** A stream to send: SSE events in order, which of them are content chunks, and how it ends. */
type StreamPlan = {
  preamble: string[];
  chunks: string[];
  /** Events after the last content chunk (finish, usage, [DONE] …). */
  tail: string[];
  /** The provider's mid-stream error event, after `sent` content chunks. */
  error: (sent: number) => string;
};

// ------------------------------------------------------------------------------------ embeddings

/** OpenAI's embeddings answer: one vector per input (`dimensions` long, default 8), floats or base64 float32. */
function embeddingsBody(call: FakeLlmCall, s: ResolvedScript) {
  const body = isRecord(call.body) ? call.body : {};
  const inputs = Array.isArray(body.input) && body.input.length > 0 && typeof body.input[0] !== "number"
    ? body.input.length
    : 1;
  const dims = typeof body.dimensions === "number" && body.dimensions > 0
    ? Math.min(body.dimensions, 4096)
    : 8;
  const data = Array.from({ length: inputs }, (_, index) => {
    const vector = Float32Array.from({ length: dims }, (_, i) => ((index + 1) * (i + 1)) / (dims * inputs));
    const embedding = body.encoding_format === "base64"
      ? btoa(String.fromCharCode(...new Uint8Array(vector.buffer)))
      : Array.from(vector);
    return { object: "embedding", index, embedding };
  });
  const usage = scripted(s, { prompt_tokens: s.inputTokens, total_tokens: s.inputTokens });
  return { object: "list", data, model: call.model, ...(usage && { usage }) };
}

/** A deterministic vector of `dims` numbers for input `index` of `inputs`. */
const vectorOf = (index: number, inputs: number, dims: number) =>
  Array.from({ length: dims }, (_, i) => Math.fround(((index + 1) * (i + 1)) / (dims * inputs)));

/** Gemini's embeddings: {embedding} for :embedContent, {embeddings} for :batchEmbedContents, with usageMetadata. */
function geminiEmbeddingsBody(call: FakeLlmCall, s: ResolvedScript) {
  const body = isRecord(call.body) ? call.body : {};
  const requests = call.api === "batchEmbedContents" ? listIn(body, "requests") : [body];
  const embeddings = requests.map((r, index) => {
    const d = r.outputDimensionality ?? r.output_dimensionality;
    const dims = typeof d === "number" && d > 0 ? Math.min(d, 4096) : 8;
    return { values: vectorOf(index, requests.length, dims) };
  });
  const usage = scripted(s, { promptTokenCount: s.inputTokens, totalTokenCount: s.inputTokens });
  return {
    ...(call.api === "batchEmbedContents" ? { embeddings } : { embedding: embeddings[0] }),
    ...(usage && { usageMetadata: usage }),
  };
}

/** A token count's answer: the script's inputTokens, in each provider's shape. */
const countBody = (provider: LlmProvider, s: ResolvedScript) =>
  provider === "anthropic"
    ? { input_tokens: s.inputTokens }
    : { totalTokens: s.inputTokens, promptTokensDetails: [{ modality: "TEXT", tokenCount: s.inputTokens }] };

// ------------------------------------------------------------------------------------ tool calls and Responses

/** A tool call's arguments as the JSON text streams send, in two pieces (by code points; "{}" is "{" and "}"). */
const argumentPieces = (t: SentToolCall) => splitReply(JSON.stringify(t.arguments), 2);

const chatToolCall = (t: SentToolCall) => ({
  id: t.id,
  type: "function",
  function: { name: t.name, arguments: JSON.stringify(t.arguments) },
});

const geminiFunctionCall = (t: SentToolCall) => ({
  functionCall: { ...(t.id !== undefined && { id: t.id }), name: t.name, args: t.arguments },
});

type ItemStatus = "in_progress" | "completed" | "incomplete";

/** A Responses `message` output item holding `text` (no content part while in progress). */
function responsesMessage(requestId: string, text: string, status: ItemStatus) {
  return {
    id: `msg_${requestId}`,
    type: "message",
    status,
    role: "assistant",
    content: status === "in_progress" ? [] : [{ type: "output_text", text, annotations: [], logprobs: [] }],
  };
}

/** A Responses `function_call` output item (arguments empty while in progress). */
function responsesFunctionCall(seq: number, i: number, t: SentToolCall, status: ItemStatus) {
  return {
    id: `fc_${seq}_${i}`,
    type: "function_call",
    status,
    arguments: status === "in_progress" ? "" : JSON.stringify(t.arguments),
    call_id: t.id,
    name: t.name,
  };
}

/**
 * A Responses API `response` object. `usage`: the object to report, null (what the in-progress events carry) or
 * undefined (no usage key: the script's usage "omit").
 */
function responseObject(
  call: FakeLlmCall,
  requestId: string,
  status: "in_progress" | "completed" | "incomplete",
  output: unknown[],
  usage: Record<string, unknown> | null | undefined,
) {
  const body = isRecord(call.body) ? call.body : {};
  return {
    id: `resp_${requestId}`,
    object: "response",
    created_at: Math.floor(call.receivedAt / 1000),
    status,
    background: false,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    model: call.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    service_tier: "default",
    store: body.store ?? true,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: body.tool_choice ?? "auto",
    tools: body.tools ?? [],
    top_p: 1,
    truncation: "disabled",
    ...(usage !== undefined && { usage }),
    user: null,
    metadata: {},
  };
}

export class FakeLlm implements AsyncDisposable {
  readonly hostname: string;
  readonly port: number;
  /** Every request received (when `recordCalls`), in arrival order. */
  readonly calls: FakeLlmCall[] = [];
  /** Requests received per provider (recorded or not). */
  readonly counts: Record<LlmProvider, number> = { openai: 0, anthropic: 0, google: 0, perplexity: 0 };
  /** The key each provider accepts. */
  readonly apiKeys: Readonly<Record<LlmProvider, string>>;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #record: boolean;
  readonly #scriptForRequest: FakeLlmOptions["scriptFor"];
  readonly #caches = new PromptCaches();
  readonly #live = new Set<Exchange>();
  readonly #idPrefix = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  #seq = 0;
  #standing: Partial<Record<LlmProvider | "*", FakeLlmScript>> = {};
  #resolved: Partial<Record<LlmProvider, ResolvedScript>> = {};
  #queued: { script: FakeLlmScript; left: number }[] = [];
  #waiters: { count: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  #stopped: Promise<void> | undefined;

  constructor(options: FakeLlmOptions = {}) {
    const key = options.apiKey ?? FAKE_LLM_API_KEY;
    this.apiKeys = Object.freeze({
      openai: options.apiKeys?.openai ?? key,
      anthropic: options.apiKeys?.anthropic ?? key,
      google: options.apiKeys?.google ?? key,
      perplexity: options.apiKeys?.perplexity ?? key,
    });
    this.#record = options.recordCalls ?? true;
    this.#scriptForRequest = options.scriptFor;
    if (options.script) this.setScript(options.script);
    this.hostname = options.hostname ?? "127.0.0.1";
    this.#server = Deno.serve(
      { hostname: this.hostname, port: options.port ?? 0, onListen: () => {} },
      (req, info) => this.#handle(req, info),
    );
    this.port = this.#server.addr.port;
  }

  /** http://127.0.0.1:PORT (no trailing slash). */
  get url(): string {
    return `http://${this.hostname}:${this.port}`;
  }

  /** The base URL each official SDK takes (openai: url + "/v1"; the others: url). */
  get baseUrls(): Readonly<Record<LlmProvider, string>> {
    const url = this.url;
    return { openai: `${url}/v1`, anthropic: url, google: url, perplexity: url };
  }

  /**
   * Sets what the fake answers (see FakeLlmScript): without `times`, the standing script for `provider` (or, with
   * no provider, for all, replacing every script set before); with `times`, a script for the next `times` matching
   * requests on top of the standing one. `setScript()` resets to the defaults. Throws on inconsistent numbers.
   */
  setScript(script: FakeLlmScript = {}): void {
    resolveScript(script); // validates
    const providers = script.provider === undefined
      ? undefined
      : typeof script.provider === "string"
      ? [script.provider]
      : script.provider;
    script = { ...script };
    if (script.times !== undefined) {
      if (script.times > 0) this.#queued.push({ script, left: script.times });
      return;
    }
    if (!providers) {
      this.#standing = { "*": script };
      this.#queued = [];
    } else {
      for (const p of providers) this.#standing[p] = script;
    }
    this.#resolved = {};
  }

  /** Forgets recorded calls and counts (scripts stay). */
  clearCalls(): void {
    this.calls.length = 0;
    for (const p of LLM_PROVIDERS) this.counts[p] = 0;
  }

  /** Forgets calls, counts and scripts. */
  reset(): void {
    this.clearCalls();
    this.setScript();
  }

  /** Resolves with `calls` once at least `count` requests were recorded; rejects after `timeoutMs`. */
  waitForCalls(count: number, timeoutMs = 5000): Promise<FakeLlmCall[]> {
    if (this.calls.length >= count) return Promise.resolve(this.calls);
    const { promise, resolve, reject } = Promise.withResolvers<FakeLlmCall[]>();
    const timer = setTimeout(() => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      reject(new Error(`fake-llm: ${this.calls.length} of ${count} calls after ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter = {
      count,
      resolve: () => {
        clearTimeout(timer);
        resolve(this.calls);
      },
      reject: (e: Error) => {
        clearTimeout(timer);
        reject(e);
      },
    };
    this.#waiters.push(waiter);
    return promise;
  }

  /** Stops listening; requests still waiting or hanging end as aborted. Safe to call twice. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      for (const ex of this.#live) ex.abort();
      for (const w of this.#waiters) w.reject(new Error("fake-llm: stopped"));
      this.#waiters = [];
      await this.#server.shutdown();
    })();
    return this.#stopped;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #scriptFor(provider: LlmProvider): ResolvedScript {
    let standing = this.#resolved[provider];
    if (!standing) {
      standing = resolveScript(this.#standing[provider] ?? {}, resolveScript(this.#standing["*"] ?? {}));
      this.#resolved[provider] = standing;
    }
    if (this.#queued.length === 0) return standing;
    const i = this.#queued.findIndex(({ script }) =>
      script.provider === undefined || script.provider === provider ||
      (Array.isArray(script.provider) && script.provider.includes(provider))
    );
    if (i < 0) return standing;
    const q = this.#queued[i];
    if (--q.left === 0) this.#queued.splice(i, 1);
    return resolveScript(q.script, standing);
  }

  #seqId(seq: number): string {
    return this.#idPrefix + seq.toString(36).padStart(8, "0");
  }

  // ---------------------------------------------------------------------------------- handling

  async #handle(req: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    const url = new URL(req.url);
    const r = route(url.pathname);
    if (!r) {
      return Response.json(
        {
          error: {
            message: `fake-llm: no route for ${req.method} ${url.pathname}`,
            type: "invalid_request_error",
          },
        },
        { status: 404 },
      );
    }
    const { provider, api } = r;
    const seq = ++this.#seq;
    const requestId = this.#seqId(seq);
    if (req.method !== "POST") {
      return this.#send(this.#error(provider, 405, `Method ${req.method} not allowed`, requestId));
    }
    let text: string;
    try {
      text = await req.text();
    } catch {
      return new Response(null, { status: 499 });
    }
    let body: unknown = null;
    let badJson = false;
    if (text !== "") {
      try {
        body = JSON.parse(text);
      } catch {
        badJson = true;
      }
    }
    const fields = body !== null && typeof body === "object" && !Array.isArray(body)
      ? body as Record<string, unknown>
      : {};
    const model = r.model ?? (typeof fields.model === "string" ? fields.model : "");
    const stream = r.stream ?? fields.stream === true;
    let script = this.#scriptFor(provider);
    const own = this.#scriptForRequest?.({ provider, api, body });
    if (own) script = resolveScript(own, script);
    if (script.cachePrefix) {
      script = { ...script, ...this.#caches.measure(provider, api, body, script.cacheMinTokens) };
    }
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => query[k] = v);

    const toolCalls = sentToolCalls(provider, seq, script.toolCalls);
    const ex = new Exchange({
      seq,
      provider,
      api,
      method: req.method,
      path: url.pathname,
      query,
      headers,
      body,
      model,
      stream,
      receivedAt: Date.now(),
      reply: script.reply ?? (toolCalls.length > 0 ? "" : "echo: " + userTextOf(api, body)),
      toolCalls,
      status: 0,
      chunksSent: 0,
      aborted: false,
      completed: false,
    });
    this.counts[provider]++;
    if (this.#record) {
      this.calls.push(ex.call);
      if (this.#waiters.length) {
        const ready = this.#waiters.filter((w) => w.count <= this.calls.length);
        this.#waiters = this.#waiters.filter((w) => w.count > this.calls.length);
        for (const w of ready) w.resolve();
      }
    }
    this.#live.add(ex);
    ex.call.settled.then(() => this.#live.delete(ex));
    // Delivered in full, or not (the client went away mid-body): Deno's word on how the exchange ended.
    info.completed.then(() => ex.complete(), () => ex.abort());
    // While the answer is held back (delayMs, or a non-streaming hang) only request.signal can tell that the client
    // went away, and Deno's server reports that reliably only for small requests (a client that sends a few
    // hundred bytes more is often not noticed before the answer is written). Once a body is streaming, a client
    // going away is always seen (stream cancel / info.completed). request.signal is touched only when it can help:
    // Deno also aborts it after every successful answer, and warns once per process when it was read.
    if (script.delayMs === 0 && (stream || script.hangAfterChunks === undefined)) {
      return this.#answer(ex, req, url, script, badJson, fields);
    }
    const onAbort = () => ex.abort();
    if (req.signal.aborted) ex.abort();
    else req.signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#answer(ex, req, url, script, badJson, fields);
    } finally {
      req.signal.removeEventListener("abort", onAbort);
    }
  }

  async #answer(
    ex: Exchange,
    req: Request,
    url: URL,
    script: ResolvedScript,
    badJson: boolean,
    fields: Record<string, unknown>,
  ): Promise<Response> {
    const { provider, stream, query } = ex.call;
    const requestId = this.#seqId(ex.call.seq);

    if (script.delayMs > 0) {
      await sleep(script.delayMs, ex.signal);
      if (ex.ended) return new Response(null, { status: 499 });
    }
    const refusal = this.#authFailure(provider, req, url, requestId) ??
      (badJson ? this.#error(provider, 400, undefined, requestId, "json") : null) ??
      (script.status ? this.#error(provider, script.status, script.errorMessage, requestId) : null) ??
      this.#invalid(provider, ex.call.api, fields, requestId, req.headers.get("anthropic-version") ?? "");
    if (refusal) {
      if (script.status && script.retryAfter !== undefined) {
        refusal.headers["retry-after"] = String(script.retryAfter);
      }
      return this.#finish(ex, refusal);
    }

    if (!stream) {
      if (script.hangAfterChunks !== undefined) {
        await untilAborted(ex.signal);
        return new Response(null, { status: 499 });
      }
      ex.call.chunksSent = script.chunks;
      const answer = script.rawBody === undefined ? this.#complete(provider, ex.call, script, requestId) : {
        status: 200,
        body: script.rawBody,
        headers: this.#headers(provider, requestId, "text/plain; charset=utf-8"),
      };
      if (!script.byteChunks) return this.#finish(ex, answer);
      ex.call.status = answer.status;
      return new Response(byteBody(ex, answer.body), { status: answer.status, headers: answer.headers });
    }
    return this.#stream(ex, provider, script, requestId, query.alt === "sse" || provider !== "google");
  }

  #finish(ex: Exchange, answer: Answer): Response {
    ex.call.status = answer.status;
    return this.#send(answer);
  }

  #send(answer: Answer): Response {
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  }

  #headers(provider: LlmProvider, requestId: string, contentType: string): Record<string, string> {
    switch (provider) {
      case "openai":
        return {
          "content-type": contentType,
          "x-request-id": `req_${requestId}`,
          "openai-version": "2020-10-01",
          "openai-organization": "user-fake-llm",
          "openai-processing-ms": "1",
        };
      case "anthropic":
        return {
          "content-type": contentType,
          "request-id": `req_${requestId}`,
          "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
        };
      case "google":
        return {
          "content-type": contentType === JSON_TYPE ? "application/json; charset=UTF-8" : contentType,
        };
      case "perplexity":
        return { "content-type": contentType };
    }
  }

  #error(
    provider: LlmProvider,
    status: number,
    message: string | undefined,
    requestId: string,
    why?: "json",
  ): Answer {
    let body: unknown;
    switch (provider) {
      case "openai":
        body = openaiError(
          status,
          why === "json"
            ? "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
            : message,
        );
        break;
      case "perplexity":
        body = perplexityError(status, why === "json" ? "Invalid JSON in request body." : message);
        break;
      case "anthropic":
        body = anthropicError(
          status,
          why === "json" ? "There was an error parsing the body of your request as JSON." : message,
          `req_${requestId}`,
        );
        break;
      case "google":
        body = googleError(status, why === "json" ? "Invalid JSON payload received." : message);
        break;
    }
    return { status, body: JSON.stringify(body), headers: this.#headers(provider, requestId, JSON_TYPE) };
  }

  #authFailure(provider: LlmProvider, req: Request, url: URL, requestId: string): Answer | null {
    const expected = this.apiKeys[provider];
    const h = req.headers;
    switch (provider) {
      case "openai":
      case "perplexity": {
        const auth = h.get("authorization");
        const key = auth?.startsWith("Bearer ") ? auth.slice(7) : null;
        if (key === expected) return null;
        const answer = this.#error(provider, 401, undefined, requestId);
        if (provider === "openai") {
          answer.body = JSON.stringify(
            key === null
              ? openaiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                null,
                null,
              )
              : openaiError(
                401,
                `Incorrect API key provided: ${
                  maskKey(key)
                }. You can find your API key at https://platform.openai.com/account/api-keys.`,
              ),
          );
        }
        return answer;
      }
      case "anthropic": {
        // x-api-key, or (what SDKs send since API version 2026-10-21) a bearer token; x-api-key wins.
        const auth = h.get("authorization");
        const key = h.get("x-api-key") ?? (auth?.startsWith("Bearer ") ? auth.slice(7) : null);
        if (key !== expected) {
          return this.#error(
            provider,
            401,
            key === null ? "x-api-key header is required" : "invalid x-api-key",
            requestId,
          );
        }
        if (!h.get("anthropic-version")) {
          return this.#error(provider, 400, "anthropic-version: header is required", requestId);
        }
        return null;
      }
      case "google": {
        const key = h.get("x-goog-api-key") ?? url.searchParams.get("key");
        if (key === expected) return null;
        if (key === null) {
          return this.#error(
            provider,
            403,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            requestId,
          );
        }
        const message = "API key not valid. Please pass a valid API key.";
        return {
          status: 400,
          body: JSON.stringify(googleError(400, message, [
            {
              "@type": "type.googleapis.com/google.rpc.ErrorInfo",
              reason: "API_KEY_INVALID",
              domain: "googleapis.com",
              metadata: { service: "generativelanguage.googleapis.com" },
            },
            { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message },
          ])),
          headers: this.#headers(provider, requestId, JSON_TYPE),
        };
      }
    }
  }

  /** The required fields each provider checks, answered as it answers them. */
  #invalid(
    provider: LlmProvider,
    api: LlmApi,
    f: Record<string, unknown>,
    requestId: string,
    anthropicVersion: string,
  ): Answer | null {
    switch (provider) {
      case "openai":
      case "perplexity":
        if (typeof f.model !== "string" || f.model === "") {
          return this.#error(provider, 400, "you must provide a model parameter", requestId);
        }
        if (api === "responses") return null; // `input` is optional there (a prompt or a previous response)
        if (api === "embeddings") {
          return f.input === undefined
            ? this.#error(provider, 400, "Missing required parameter: 'input'.", requestId)
            : null;
        }
        if (!Array.isArray(f.messages)) {
          const a = this.#error(provider, 400, "Missing required parameter: 'messages'.", requestId);
          if (provider === "openai") {
            a.body = JSON.stringify(
              openaiError(
                400,
                "Missing required parameter: 'messages'.",
                "messages",
                "missing_required_parameter",
              ),
            );
          }
          return a;
        }
        return null;
      case "anthropic":
        for (
          const field of api === "countTokens" ? ["model", "messages"] : ["model", "max_tokens", "messages"]
        ) {
          if (f[field] === undefined) {
            return this.#error(provider, 400, `${field}: Field required`, requestId);
          }
        }
        // API version 2026-10-21 removed the sampling parameters: sending one (any value) is a 400.
        if (anthropicVersion >= "2026-10-21") {
          for (const field of ["temperature", "top_p", "top_k"]) {
            if (f[field] !== undefined) {
              return this.#error(provider, 400, `${field}: Extra inputs are not permitted`, requestId);
            }
          }
        }
        return null;
      case "google":
        if (api === "embedContent" && !isRecord(f.content)) {
          return this.#error(
            provider,
            400,
            "* EmbedContentRequest.content: content is not specified\n",
            requestId,
          );
        }
        if (api === "batchEmbedContents" && !(Array.isArray(f.requests) && f.requests.length > 0)) {
          return this.#error(
            provider,
            400,
            "* BatchEmbedContentsRequest.requests: requests is not specified\n",
            requestId,
          );
        }
        if (api === "embedContent" || api === "batchEmbedContents") return null;
        if (api === "countTokens" && (Array.isArray(f.contents) || isRecord(f.generateContentRequest))) {
          return null;
        }
        return Array.isArray(f.contents) && f.contents.length > 0 ? null : this.#error(
          provider,
          400,
          "* GenerateContentRequest.contents: contents is not specified\n",
          requestId,
        );
    }
  }

  // ---------------------------------------------------------------------------------- answers

  #complete(provider: LlmProvider, call: FakeLlmCall, s: ResolvedScript, requestId: string): Answer {
    const text = call.reply;
    const tools = call.toolCalls;
    // With tool calls and no reply there is no text at all (no empty text block or part).
    const hasText = text !== "" || tools.length === 0;
    const reported = scripted(s, ownUsage(call.api === "responses" ? "responses" : provider, s));
    // No usage key at all when the script omits it; otherwise under the provider's name, in the provider's place.
    const usage = (key: "usage" | "usageMetadata") => reported && { [key]: reported };
    let body: unknown;
    switch (call.api === "countTokens" ? "count" : provider) {
      case "count":
        body = countBody(provider, s);
        break;
      case "openai":
        if (call.api === "embeddings") {
          body = embeddingsBody(call, s);
          break;
        }
        if (call.api === "responses") {
          const incomplete = s.stopReason === "length" && tools.length === 0;
          body = responseObject(call, requestId, incomplete ? "incomplete" : "completed", [
            ...(hasText ? [responsesMessage(requestId, text, incomplete ? "incomplete" : "completed")] : []),
            ...tools.map((t, i) => responsesFunctionCall(call.seq, i, t, "completed")),
          ], reported ?? undefined);
          break;
        }
        body = {
          id: `chatcmpl-${requestId}`,
          object: "chat.completion",
          created: nowSeconds(),
          model: call.model,
          choices: [{
            index: 0,
            message: {
              role: "assistant",
              content: hasText ? text : null,
              refusal: null,
              annotations: [],
              ...(tools.length > 0 && { tool_calls: tools.map(chatToolCall) }),
            },
            logprobs: null,
            finish_reason: tools.length > 0 ? "tool_calls" : s.stopReason,
          }],
          ...usage("usage"),
          service_tier: "default",
          system_fingerprint: "fp_fakellm",
        };
        break;
      case "perplexity":
        body = {
          id: crypto.randomUUID(),
          model: call.model,
          created: nowSeconds(),
          ...usage("usage"),
          citations: PERPLEXITY_CITATIONS,
          search_results: PERPLEXITY_SEARCH_RESULTS,
          object: "chat.completion",
          choices: [{
            index: 0,
            finish_reason: s.stopReason,
            message: { role: "assistant", content: text },
            delta: { role: "assistant", content: "" },
          }],
        };
        break;
      case "anthropic":
        body = {
          id: `msg_01${requestId}`,
          type: "message",
          role: "assistant",
          model: call.model,
          content: [
            ...(hasText ? [{ type: "text", text }] : []),
            ...tools.map((t) => ({ type: "tool_use", id: t.id, name: t.name, input: t.arguments })),
          ],
          stop_reason: tools.length > 0 ? "tool_use" : s.stopReason === "stop" ? "end_turn" : "max_tokens",
          stop_sequence: null,
          ...usage("usage"),
        };
        break;
      case "google":
        if (call.api === "embedContent" || call.api === "batchEmbedContents") {
          body = geminiEmbeddingsBody(call, s);
          break;
        }
        body = {
          candidates: [{
            content: {
              parts: [...(hasText ? [{ text }] : []), ...tools.map(geminiFunctionCall)],
              role: "model",
            },
            finishReason: s.stopReason === "stop" || tools.length > 0 ? "STOP" : "MAX_TOKENS",
            index: 0,
          }],
          ...usage("usageMetadata"),
          modelVersion: call.model,
          responseId: requestId,
        };
        break;
    }
    return {
      status: 200,
      body: JSON.stringify(body),
      headers: this.#headers(provider, requestId, JSON_TYPE),
    };
  }

  #plan(
    provider: LlmProvider,
    call: FakeLlmCall,
    s: ResolvedScript,
    requestId: string,
    sse: boolean,
  ): StreamPlan {
    const tools = call.toolCalls;
    // With tool calls and no reply there is no text: no text chunks (nor an empty text block or part).
    const hasText = call.reply !== "" || tools.length === 0;
    const pieces = hasText ? splitReply(call.reply, s.chunks) : [];
    const n = pieces.length;
    const created = nowSeconds();
    // Line end of OpenAI, Perplexity and Anthropic SSE (Gemini's is always CRLF).
    const nl = s.crlf ? "\r\n" : "\n";
    const data = (x: unknown) => `data: ${JSON.stringify(x)}${nl}${nl}`;
    const done = `data: [DONE]${nl}${nl}`;
    switch (provider) {
      case "openai": {
        if (call.api === "responses") return this.#responsesPlan(call, s, requestId, pieces);
        const reported = scripted(s, openaiUsage(s));
        const includeUsage = reported !== null &&
          (call.body as { stream_options?: { include_usage?: unknown } } | null)?.stream_options
              ?.include_usage === true;
        const head =
          `{"id":"chatcmpl-${requestId}","object":"chat.completion.chunk","created":${created},"model":${
            JSON.stringify(call.model)
          },"service_tier":"default","system_fingerprint":"fp_fakellm",`;
        const usageNull = includeUsage ? `,"usage":null` : "";
        const chunk = (delta: unknown, finish: string | null) =>
          `data: ${head}"choices":[{"index":0,"delta":${
            JSON.stringify(delta)
          },"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]${usageNull}}${nl}${nl}`;
        const tail = [chunk({}, tools.length > 0 ? "tool_calls" : s.stopReason)];
        if (includeUsage) {
          tail.push(`data: ${head}"choices":[],"usage":${JSON.stringify(reported)}}${nl}${nl}`);
        }
        tail.push(done);
        return {
          preamble: [chunk({ role: "assistant", content: hasText ? "" : null, refusal: null }, null)],
          chunks: [
            ...pieces.map((content) => chunk({ content }, null)),
            // Per tool call: its id and name (arguments ""), then the arguments in pieces.
            ...tools.flatMap((t, index) => [
              chunk({
                tool_calls: [{
                  index,
                  id: t.id,
                  type: "function",
                  function: { name: t.name, arguments: "" },
                }],
              }, null),
              ...argumentPieces(t).map((arguments_) =>
                chunk({ tool_calls: [{ index, function: { arguments: arguments_ } }] }, null)
              ),
            ]),
          ],
          tail,
          error: () => data(openaiError(s.streamErrorStatus, s.errorMessage)),
        };
      }
      case "perplexity": {
        const id = crypto.randomUUID();
        let sofar = "";
        const chunk = (i: number, delta: string, finish: string | null) => {
          const usage = scripted(s, perplexityUsage(s.inputTokens, cumulative(s.outputTokens, i, n)));
          return data({
            id,
            model: call.model,
            created,
            ...(usage && { usage }),
            citations: PERPLEXITY_CITATIONS,
            search_results: PERPLEXITY_SEARCH_RESULTS,
            object: "chat.completion.chunk",
            choices: [{
              index: 0,
              finish_reason: finish,
              message: { role: "assistant", content: sofar },
              delta: { role: "assistant", content: delta },
            }],
          });
        };
        return {
          preamble: [],
          chunks: pieces.map((p, i) => {
            sofar += p;
            return chunk(i, p, null);
          }),
          tail: [chunk(n - 1, "", s.stopReason), done],
          error: () => data(perplexityError(s.streamErrorStatus, s.errorMessage)),
        };
      }
      case "anthropic": {
        const event = (type: string, x: unknown) => `event: ${type}${nl}data: ${JSON.stringify(x)}${nl}${nl}`;
        const blockStop = (index: number) =>
          event("content_block_stop", { type: "content_block_stop", index });
        const own = anthropicUsage(s, Math.min(1, s.outputTokens));
        const startUsage = scripted(s, own);
        const finalUsage = scripted(s, {
          input_tokens: own.input_tokens,
          cache_creation_input_tokens: own.cache_creation_input_tokens,
          cache_read_input_tokens: own.cache_read_input_tokens,
          output_tokens: s.outputTokens,
        });
        return {
          preamble: [
            event("message_start", {
              type: "message_start",
              message: {
                id: `msg_01${requestId}`,
                type: "message",
                role: "assistant",
                model: call.model,
                content: [],
                stop_reason: null,
                stop_sequence: null,
                ...(startUsage && { usage: startUsage }),
              },
            }),
            ...(hasText
              ? [event("content_block_start", {
                type: "content_block_start",
                index: 0,
                content_block: { type: "text", text: "" },
              })]
              : []),
            event("ping", { type: "ping" }),
          ],
          chunks: [
            ...pieces.map((text) =>
              event("content_block_delta", {
                type: "content_block_delta",
                index: 0,
                delta: { type: "text_delta", text },
              })
            ),
            // Per tool call, a tool_use block after the text's: opened with input {} along with the first piece
            // of its input's JSON (the text block closed before the first), closed along with the last.
            ...tools.flatMap((t, j) => {
              const index = (hasText ? 1 : 0) + j;
              const parts = argumentPieces(t).map((partial_json) =>
                event("content_block_delta", {
                  type: "content_block_delta",
                  index,
                  delta: { type: "input_json_delta", partial_json },
                })
              );
              parts[0] = (j === 0 && hasText ? blockStop(0) : "") +
                event("content_block_start", {
                  type: "content_block_start",
                  index,
                  content_block: { type: "tool_use", id: t.id, name: t.name, input: {} },
                }) + parts[0];
              parts[parts.length - 1] += blockStop(index);
              return parts;
            }),
          ],
          tail: [
            ...(tools.length === 0 ? [blockStop(0)] : []),
            event("message_delta", {
              type: "message_delta",
              delta: {
                stop_reason: tools.length > 0
                  ? "tool_use"
                  : s.stopReason === "stop"
                  ? "end_turn"
                  : "max_tokens",
                stop_sequence: null,
              },
              ...(finalUsage && { usage: finalUsage }),
            }),
            event("message_stop", { type: "message_stop" }),
          ],
          error: () => event("error", anthropicError(s.streamErrorStatus, s.errorMessage)),
        };
      }
      case "google": {
        const candidates = s.outputTokens - s.reasoningTokens;
        // Google frames SSE events with CRLF; without alt=sse the same objects come as one JSON array.
        const frame = (x: unknown, i: number) =>
          sse ? `data: ${JSON.stringify(x)}\r\n\r\n` : (i === 0 ? "[" : ",\r\n") + JSON.stringify(x);
        // The text's chunks, then one chunk holding every functionCall part.
        const parts: unknown[][] = [
          ...pieces.map((text) => [{ text }]),
          ...(tools.length > 0 ? [tools.map(geminiFunctionCall)] : []),
        ];
        const total = parts.length;
        const finishReason = s.stopReason === "stop" || tools.length > 0 ? "STOP" : "MAX_TOKENS";
        return {
          preamble: [],
          chunks: parts.map((chunkParts, i) => {
            const usageMetadata = scripted(s, googleUsage(s, cumulative(candidates, i, total)));
            return frame({
              candidates: [{
                content: { parts: chunkParts, role: "model" },
                ...(i === total - 1 && { finishReason }),
                index: 0,
              }],
              ...(usageMetadata && { usageMetadata }),
              modelVersion: call.model,
              responseId: requestId,
            }, i);
          }),
          tail: sse ? [] : ["]"],
          error: (sent) => frame(googleError(s.streamErrorStatus, s.errorMessage), sent) + (sse ? "" : "]"),
        };
      }
    }
  }

  /**
   * A Responses API stream: response.created and .in_progress (usage null); the message item (output_item.added,
   * content_part.added, one output_text.delta per text chunk, output_text.done, content_part.done,
   * output_item.done); per tool call a function_call item (output_item.added with the first arguments delta, then
   * the second with function_call_arguments.done and output_item.done); then response.completed (or
   * response.incomplete when stopped by length) with the usage. No [DONE]. Every event has the next
   * sequence_number; a mid-stream error is an `error` event.
   */
  #responsesPlan(call: FakeLlmCall, s: ResolvedScript, requestId: string, pieces: string[]): StreamPlan {
    const nl = s.crlf ? "\r\n" : "\n";
    let sequence = 0;
    const event = (type: string, x: Record<string, unknown>) =>
      `event: ${type}${nl}data: ${JSON.stringify({ type, ...x, sequence_number: sequence++ })}${nl}${nl}`;
    const tools = call.toolCalls;
    const hasText = pieces.length > 0;
    const incomplete = s.stopReason === "length" && tools.length === 0;
    const itemStatus = incomplete ? "incomplete" : "completed";
    const text = call.reply;
    const msgId = `msg_${requestId}`;
    const textPart = (t: string) => ({ type: "output_text", text: t, annotations: [], logprobs: [] });
    const response = (
      status: "in_progress" | "completed" | "incomplete",
      output: unknown[],
      usage?: unknown,
    ) => responseObject(call, requestId, status, output, usage as Record<string, unknown> | null | undefined);

    const preamble = [
      event("response.created", { response: response("in_progress", [], null) }),
      event("response.in_progress", { response: response("in_progress", [], null) }),
    ];
    if (hasText) {
      preamble.push(
        event("response.output_item.added", {
          output_index: 0,
          item: responsesMessage(requestId, "", "in_progress"),
        }),
        event("response.content_part.added", {
          item_id: msgId,
          output_index: 0,
          content_index: 0,
          part: textPart(""),
        }),
      );
    }
    // Sequence numbers after the preamble and after each chunk, for the error event sent in their place.
    const sequenceAfter = [sequence];
    const chunks: string[] = [];
    const push = (chunk: string) => {
      chunks.push(chunk);
      sequenceAfter.push(sequence);
    };
    for (const delta of pieces) {
      push(event("response.output_text.delta", {
        item_id: msgId,
        output_index: 0,
        content_index: 0,
        delta,
        logprobs: [],
      }));
    }
    const closeText = () =>
      event("response.output_text.done", {
        item_id: msgId,
        output_index: 0,
        content_index: 0,
        text,
        logprobs: [],
      }) +
      event("response.content_part.done", {
        item_id: msgId,
        output_index: 0,
        content_index: 0,
        part: textPart(text),
      }) +
      event("response.output_item.done", {
        output_index: 0,
        item: responsesMessage(requestId, text, itemStatus),
      });
    const output: unknown[] = hasText ? [responsesMessage(requestId, text, itemStatus)] : [];
    tools.forEach((t, i) => {
      const outputIndex = (hasText ? 1 : 0) + i;
      const itemId = `fc_${call.seq}_${i}`;
      const [first, second] = argumentPieces(t);
      const delta = (d: string) =>
        event("response.function_call_arguments.delta", {
          item_id: itemId,
          output_index: outputIndex,
          delta: d,
        });
      const opening = (i === 0 && hasText ? closeText() : "") +
        event("response.output_item.added", {
          output_index: outputIndex,
          item: responsesFunctionCall(call.seq, i, t, "in_progress"),
        });
      push(opening + delta(first));
      const done = responsesFunctionCall(call.seq, i, t, "completed");
      push(
        delta(second) +
          event("response.function_call_arguments.done", {
            item_id: itemId,
            output_index: outputIndex,
            name: t.name,
            arguments: done.arguments,
          }) +
          event("response.output_item.done", { output_index: outputIndex, item: done }),
      );
      output.push(done);
    });
    const tail = tools.length === 0 && hasText ? [closeText()] : [];
    const reported = scripted(s, responsesUsage(s));
    tail.push(
      event(incomplete ? "response.incomplete" : "response.completed", {
        response: response(incomplete ? "incomplete" : "completed", output, reported ?? undefined),
      }),
    );
    return {
      preamble,
      chunks,
      tail,
      error: (sent) => {
        const e = openaiError(s.streamErrorStatus, s.errorMessage).error;
        return `event: error${nl}data: ${
          JSON.stringify({
            type: "error",
            code: e.code ?? e.type,
            message: e.message,
            param: null,
            sequence_number: sequenceAfter[sent],
          })
        }${nl}${nl}`;
      },
    };
  }

  #stream(ex: Exchange, provider: LlmProvider, s: ResolvedScript, requestId: string, sse: boolean): Response {
    const plan = this.#plan(provider, ex.call, s, requestId, sse);
    const headers = this.#headers(provider, requestId, sse ? SSE_TYPE : JSON_TYPE);
    if (sse) headers["cache-control"] = "no-cache";
    ex.call.status = 200;
    const simple = s.chunkDelayMs === 0 && s.hangAfterChunks === undefined &&
      s.errorAfterChunks === undefined && !s.byteChunks;
    if (simple) {
      ex.call.chunksSent = plan.chunks.length;
      return new Response(plan.preamble.join("") + plan.chunks.join("") + plan.tail.join(""), { headers });
    }
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#pump(ex, s, plan, controller);
      },
      cancel: () => ex.abort(),
    });
    return new Response(body, { headers });
  }

  async #pump(
    ex: Exchange,
    s: ResolvedScript,
    plan: StreamPlan,
    controller: ReadableStreamDefaultController<Uint8Array>,
  ) {
    const { signal } = ex;
    let first = true;
    const send = async (event: string) => {
      if (!first && s.chunkDelayMs > 0) await sleep(s.chunkDelayMs, signal);
      first = false;
      if (signal.aborted) return false;
      if (s.byteChunks) return await writeBytes(controller, encoder.encode(event), signal);
      controller.enqueue(encoder.encode(event));
      return true;
    };
    try {
      for (const event of plan.preamble) if (!await send(event)) return;
      const n = plan.chunks.length;
      const hangAt = s.hangAfterChunks === undefined ? -1 : Math.min(s.hangAfterChunks, n);
      const errorAt = s.errorAfterChunks === undefined ? -1 : Math.min(s.errorAfterChunks, n);
      for (let i = 0; i <= n; i++) {
        if (hangAt === i) {
          await untilAborted(signal);
          return;
        }
        if (errorAt === i) {
          if (!await send(plan.error(i))) return;
          controller.close();
          return;
        }
        if (i === n) break;
        if (!await send(plan.chunks[i])) return;
        ex.call.chunksSent++;
      }
      for (const event of plan.tail) if (!await send(event)) return;
      controller.close();
    } catch {
      ex.abort(); // the client went away while we wrote
    } finally {
      if (ex.call.aborted) {
        try {
          controller.error(new Error("fake-llm: exchange aborted"));
        } catch {
          // already closed or cancelled
        }
      }
    }
  }
}

function maskKey(key: string): string {
  return key.length <= 8
    ? "*".repeat(key.length)
    : `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

const PERPLEXITY_SEARCH_RESULTS = [
  {
    title: "Fake LLM search result one",
    url: "https://example.com/fake-llm/one",
    date: "2025-01-01",
    last_updated: "2025-01-02",
    snippet: "A deterministic search result from the fake Perplexity.",
    source: "web",
  },
  {
    title: "Fake LLM search result two",
    url: "https://example.org/fake-llm/two",
    date: "2025-01-03",
    last_updated: "2025-01-04",
    snippet: "Another deterministic search result.",
    source: "web",
  },
];
const PERPLEXITY_CITATIONS = PERPLEXITY_SEARCH_RESULTS.map((r) => r.url);

/** Starts the fake on 127.0.0.1 (port 0 = ephemeral). */
export function startFakeLlm(options: FakeLlmOptions = {}): Promise<FakeLlm> {
  return Promise.resolve(new FakeLlm(options));
}

if (import.meta.main) {
  const arg = (name: string) => {
    const i = Deno.args.indexOf(`--${name}`);
    return i >= 0 ? Deno.args[i + 1] : undefined;
  };
  const llm = await startFakeLlm({
    port: Number(arg("port") ?? 0),
    apiKey: arg("key"),
    recordCalls: false,
  });
  console.log(`fake-llm listening on ${llm.url} (key ${llm.apiKeys.openai})`);
}
