// What the gateway needs to know about one provider. The pipeline (../handler.ts) is the same for all four;
// each provider module here (openai.ts, anthropic.ts, google.ts, perplexity.ts) implements this interface and
// nothing else.
import type { z } from "../../http/validation.ts";

export type Provider = "openai" | "anthropic" | "google" | "perplexity";

/**
 * Token counts as the provider reported them, normalised: input includes cached input and cache writes,
 * output includes reasoning. `estimated` when a count had to be mended (not a whole non-negative number).
 */
export type Usage = {
  inputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  estimated: boolean;
};

/** No tokens of any kind: a call that used none (a token count), or nothing reported and nothing delivered. */
export const NO_USAGE: Usage = {
  inputTokens: 0,
  cachedInputTokens: 0,
  cacheWriteTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  estimated: false,
};

/** One server-sent event as it arrived: its raw text (re-sent unchanged) and its parsed fields. */
export type SseEvent = { raw: string; event?: string; data: string };

export type Route = {
  /** Path (and query) to call on the provider, relative to its base URL. */
  upstreamPath: string;
  /** The model, when the path names it (Gemini). */
  model?: string;
  /** Whether the path itself asks for a stream (Gemini :streamGenerateContent). */
  stream?: boolean;
  /**
   * The adapter of the endpoint the path names, when a provider serves several (OpenAI chat completions,
   * Responses, embeddings): the call is read, forwarded and metered by it. Absent: the function's own adapter.
   */
  endpoint?: ProviderAdapter;
};

export type Described = {
  model: string;
  stream: boolean;
  /** The max output the call asks for; null: the plan's max; 0: it generates none (embeddings, token counts). */
  requestedMaxOutput: number | null;
  /** How many answers the call asks for (OpenAI `n`, Gemini `candidateCount`): each may use the max output. */
  choices: number;
  /**
   * The input holds something the gateway cannot measure before the call (a remote image or file, a file id):
   * the call is then held as the plan's max input, and billed what the provider reports.
   */
  inputUnbounded: boolean;
  /** Perplexity's web search context size (its per-request fee depends on it). */
  searchContextSize?: "low" | "medium" | "high";
  /**
   * The endpoint costs nothing (the token counts): the call is admitted as no input and no output, so it holds
   * nothing and counts only against the requests-per-minute limit, and its usage row has no tokens.
   */
  free?: boolean;
};

/** Reads usage out of a stream as it passes, and decides which events the client sees. */
export interface StreamMeter {
  /** Called for every event in order; returns the event to forward (possibly rewritten), or null to drop it. */
  onEvent(event: SseEvent): SseEvent | null;
  /** Usage reported so far (null if the provider has reported none). */
  usage(): Usage | null;
  /** Whether the provider's final usage arrived (a stream that ends without it was cut off upstream). */
  final(): boolean;
  /** UTF-8 bytes of generated text forwarded so far (what a cut-off call is billed by at least). */
  outputBytes(): number;
}

export interface ProviderAdapter<Body = Record<string, unknown>> {
  readonly provider: Provider;
  /** Human name for messages ("OpenAI"). */
  readonly label: string;
  /** The function's name as deployed ("openai-proxy"). */
  readonly functionName: string;
  readonly keyEnv: string;
  readonly baseUrlEnv: string;
  readonly defaultBaseUrl: string;
  /** The request body schema: an allow-list of the fields the provider accepts and we can bill (strict). */
  readonly schema: z.ZodType<Body>;
  /** Maps the path after /<function-name> to the upstream call; null → 404. */
  route(path: string, search: URLSearchParams): Route | null;
  describe(body: Body, route: Route): Described;
  /**
   * The body to send upstream: max output capped at `maxOutput`, stream usage requested where the provider
   * needs asking. `clientWantsUsage` says whether the client asked for it itself.
   */
  prepare(body: Body, route: Route, maxOutput: number): { body: Body; clientWantsUsage: boolean };
  /** Headers for the upstream call: its own auth with the server's key, plus what it passes on from the client. */
  upstreamHeaders(key: string, req: Request): Record<string, string>;
  usageFromJson(json: unknown): Usage | null;
  /** The generated text of a non-streamed answer (what it is billed by when it reports no usage). */
  outputTextOf(json: unknown): string;
  createStreamMeter(clientWantsUsage: boolean): StreamMeter;
  /** The provider's request id header, if it sends one. */
  readonly requestIdHeader?: string;
}

/** No single call uses more tokens than this in any field; a reported count beyond it is clamped (and flagged). */
export const MAX_REPORTED_TOKENS = 100_000_000;

/**
 * A provider's token count, normalised at the edge: a whole non-negative number passes as it is; a fraction is
 * rounded up, a numeric string read, a negative number taken as 0, a huge one clamped to MAX_REPORTED_TOKENS —
 * each flagged `mended`; anything else (missing, null, NaN, an object) is 0 and flagged only if it was present.
 */
export function tokenCount(value: unknown): { n: number; mended: boolean } {
  if (value === undefined || value === null) return { n: 0, mended: false };
  const number = typeof value === "number"
    ? value
    : typeof value === "string" && value.trim() !== ""
    ? Number(value)
    : NaN;
  if (!Number.isFinite(number)) return { n: 0, mended: true };
  const n = Math.min(Math.max(Math.ceil(number), 0), MAX_REPORTED_TOKENS);
  return { n, mended: typeof value !== "number" || n !== number };
}

/** Builds a Usage from raw counts, mending each (see tokenCount) and keeping the parts within their wholes. */
export function usageOf(counts: {
  input: unknown;
  cached?: unknown;
  cacheWrite?: unknown;
  output: unknown;
  reasoning?: unknown;
  /** Added to input (Anthropic counts cache reads and writes apart from input_tokens). */
  inputParts?: unknown[];
  /** Added to output (Gemini counts thoughts apart from candidates). */
  outputParts?: unknown[];
}): Usage {
  const all = [counts.input, counts.cached, counts.cacheWrite, counts.output, counts.reasoning];
  const parsed = all.map(tokenCount);
  const inputExtra = (counts.inputParts ?? []).map(tokenCount);
  const outputExtra = (counts.outputParts ?? []).map(tokenCount);
  const [input, cached, cacheWrite, output, reasoning] = parsed.map((p) => p.n);
  const inputTokens = Math.min(input + inputExtra.reduce((s, p) => s + p.n, 0), MAX_REPORTED_TOKENS);
  const outputTokens = Math.min(output + outputExtra.reduce((s, p) => s + p.n, 0), MAX_REPORTED_TOKENS);
  const cachedInputTokens = Math.min(cached, inputTokens);
  return {
    inputTokens,
    cachedInputTokens,
    cacheWriteTokens: Math.min(cacheWrite, inputTokens - cachedInputTokens),
    outputTokens,
    reasoningTokens: Math.min(reasoning, outputTokens),
    estimated: [...parsed, ...inputExtra, ...outputExtra].some((p) => p.mended),
  };
}

/** Tokens a text (or body) of this many UTF-8 bytes is billed at least: about 3 bytes a token, rounded up. */
export const tokensForBytes = (bytes: number) => Math.ceil(Math.max(bytes, 0) / 3);

export const utf8Bytes = (text: string) => new TextEncoder().encode(text).byteLength;
