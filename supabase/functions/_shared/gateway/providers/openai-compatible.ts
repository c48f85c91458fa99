// The OpenAI chat-completions wire format, shared by OpenAI and Perplexity: the schema, usage fields, and a
// stream meter that reads the final usage chunk (asked for with stream_options.include_usage) and hides it,
// and the `usage: null` it adds to every chunk, from clients that did not ask for it themselves.
import { z } from "../../validation.ts";
import type { Described, SseEvent, StreamMeter, Usage } from "../adapter.ts";

const message = z.object({ role: z.string().min(1).max(64) }).passthrough();

export const chatCompletionSchema = z.object({
  model: z.string().min(1).max(128),
  messages: z.array(message).min(1).max(2000),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).passthrough().nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  n: z.number().int().min(1).max(8).nullish(),
}).passthrough();

export type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

export function describeChat(body: ChatCompletionBody): Described {
  return {
    model: body.model,
    stream: body.stream === true,
    requestedMaxOutput: requestedOutput(body),
    choices: body.n ?? 1,
  };
}

type OpenAiUsage = {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
};

export function usageFromOpenAi(u: OpenAiUsage | null | undefined): Usage | null {
  if (!u || typeof u !== "object") return null;
  return {
    inputTokens: u.prompt_tokens ?? 0,
    cachedInputTokens: u.prompt_tokens_details?.cached_tokens ?? 0,
    outputTokens: u.completion_tokens ?? 0,
  };
}

export function usageFromChatJson(json: unknown): Usage | null {
  return usageFromOpenAi((json as { usage?: OpenAiUsage } | null)?.usage);
}

type Chunk = {
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null } }[];
  usage?: unknown;
};

/**
 * Meters an OpenAI-style stream. With `hideUsage` (we asked for usage, the client did not), the usage-only
 * chunk is dropped and `"usage":null` is removed from the other chunks, so the client sees the stream it asked for.
 */
export function chatStreamMeter(hideUsage: boolean): StreamMeter {
  let usage: Usage | null = null;
  let chars = 0;
  return {
    onEvent(event: SseEvent): SseEvent | null {
      if (!event.data || event.data === "[DONE]") return event;
      let chunk: Chunk;
      try {
        chunk = JSON.parse(event.data);
      } catch {
        return event;
      }
      for (const choice of chunk.choices ?? []) {
        chars += (choice.delta?.content?.length ?? 0) + (choice.delta?.reasoning_content?.length ?? 0);
      }
      if (chunk.usage) usage = usageFromOpenAi(chunk.usage as OpenAiUsage);
      if (!hideUsage || !("usage" in chunk)) return event;
      if (chunk.usage && (chunk.choices?.length ?? 0) === 0) return null;
      delete chunk.usage;
      const data = JSON.stringify(chunk);
      return { raw: `data: ${data}`, data };
    },
    usage: () => usage,
    outputChars: () => chars,
  };
}

/** Caps max output and asks for stream usage; returns whether the client had asked for usage itself. */
/** The larger of the two output limits a client may send; the hold and the cap use it. */
export function requestedOutput(body: ChatCompletionBody): number | null {
  const asked = [body.max_completion_tokens, body.max_tokens].filter((v): v is number =>
    typeof v === "number"
  );
  return asked.length ? Math.max(...asked) : null;
}

export function prepareChat(body: ChatCompletionBody, maxOutput: number) {
  const out: ChatCompletionBody = { ...body };
  // Both fields, when sent, are capped: the provider honours either.
  if (body.max_tokens != null) out.max_tokens = Math.min(body.max_tokens, maxOutput);
  if (body.max_tokens == null || body.max_completion_tokens != null) {
    out.max_completion_tokens = Math.min(body.max_completion_tokens ?? maxOutput, maxOutput);
  }
  const clientWantsUsage = body.stream_options?.include_usage === true;
  if (body.stream === true) out.stream_options = { ...(body.stream_options ?? {}), include_usage: true };
  return { body: out, clientWantsUsage };
}
