// What the gateway needs to know about one provider. The pipeline (proxy.ts) is the same for all four;
// each provider module (providers/*.ts) implements this interface and nothing else.
import type { z } from "../validation.ts";

export type Provider = "openai" | "anthropic" | "google" | "perplexity";

/** Token counts as the provider reported them, normalised: input includes cached input. */
export type Usage = { inputTokens: number; cachedInputTokens: number; outputTokens: number };

/** One server-sent event as it arrived: its raw text (re-sent unchanged) and its parsed fields. */
export type SseEvent = { raw: string; event?: string; data: string };

export type Route = {
  /** Path (and query) to call on the provider, relative to its base URL. */
  upstreamPath: string;
  /** The model, when the path names it (Gemini). */
  model?: string;
  /** Whether the path itself asks for a stream (Gemini :streamGenerateContent). */
  stream?: boolean;
};

export type Described = {
  model: string;
  stream: boolean;
  requestedMaxOutput: number | null;
  /** How many answers the call asks for (OpenAI `n`, Gemini `candidateCount`): each may use the max output. */
  choices: number;
};

/** Reads usage out of a stream as it passes, and decides which events the client sees. */
export interface StreamMeter {
  /** Called for every event in order; returns the event to forward (possibly rewritten), or null to drop it. */
  onEvent(event: SseEvent): SseEvent | null;
  /** Usage reported so far (null if the provider has reported none). */
  usage(): Usage | null;
  /** Characters of generated text seen so far (to estimate output when a stream is cut before usage). */
  outputChars(): number;
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
  /** The request body schema (unknown fields the provider accepts pass through). */
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
  createStreamMeter(clientWantsUsage: boolean): StreamMeter;
  /** The provider's request id header, if it sends one. */
  readonly requestIdHeader?: string;
}
