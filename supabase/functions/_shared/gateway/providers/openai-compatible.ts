// The OpenAI chat-completions wire format, shared by OpenAI and Perplexity: message and content-part shapes,
// numeric bounds, usage fields, and a stream meter that reads the final usage chunk (asked for with
// stream_options.include_usage) and hides it, and the `usage: null` it adds to every chunk, from clients that
// did not ask for it themselves.
import { z } from "../../http/validation.ts";
import type { Described, SseEvent, StreamMeter, Usage } from "./adapter.ts";
import { usageOf, utf8Bytes } from "./adapter.ts";

/** A bounded whole number: an integer field beyond `max` is a 400 before it reaches the database. */
export const int = (min: number, max: number) => z.number().int().min(min).max(max);
/** Max output fields: at most this many (the plan caps them lower before forwarding). */
export const MAX_OUTPUT_FIELD = 10_000_000;

const message = z.object({ role: z.string().min(1).max(64) }).passthrough();

/** The fields both providers accept in the same shape (each provider's schema is strict: anything else is a 400). */
export const chatFields = {
  model: z.string().min(1).max(128),
  messages: z.array(message).min(1).max(2000),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullish(),
  max_tokens: int(1, MAX_OUTPUT_FIELD).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  response_format: z.object({ type: z.string().max(64) }).passthrough().nullish(),
};

export type ChatCompletionBody = {
  model: string;
  messages: Record<string, unknown>[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  n?: number | null;
  [key: string]: unknown;
};

/** The content parts of every message (a string content has none). */
function contentParts(body: ChatCompletionBody): Record<string, unknown>[] {
  return body.messages.flatMap((m) => Array.isArray(m.content) ? m.content as Record<string, unknown>[] : []);
}

/**
 * Whether a message holds input the gateway cannot measure: an image or file by URL (not a data: URI), or a
 * file by id. Inline data (base64) is in the body and counted with it.
 */
export function chatInputUnbounded(body: ChatCompletionBody): boolean {
  return contentParts(body).some((part) => {
    const url = (part.image_url as { url?: unknown } | undefined)?.url ??
      (part.file_url as { url?: unknown } | undefined)?.url;
    if (typeof url === "string" && !url.startsWith("data:")) return true;
    const file = part.file as { file_id?: unknown } | undefined;
    return typeof file?.file_id === "string";
  });
}

export function describeChat(body: ChatCompletionBody): Described {
  return {
    model: body.model,
    stream: body.stream === true,
    requestedMaxOutput: requestedOutput(body),
    choices: body.n ?? 1,
    inputUnbounded: chatInputUnbounded(body),
  };
}

type OpenAiUsage = {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: unknown } | null;
};

/** OpenAI counts cached tokens within prompt_tokens and reasoning tokens within completion_tokens, as we do. */
export function usageFromOpenAi(u: OpenAiUsage | null | undefined): Usage | null {
  if (!u || typeof u !== "object") return null;
  return usageOf({
    input: u.prompt_tokens,
    cached: u.prompt_tokens_details?.cached_tokens,
    output: u.completion_tokens,
    reasoning: u.completion_tokens_details?.reasoning_tokens,
  });
}

export function usageFromChatJson(json: unknown): Usage | null {
  return usageFromOpenAi((json as { usage?: OpenAiUsage } | null)?.usage);
}

type ChoiceText = {
  content?: unknown;
  reasoning_content?: unknown;
  refusal?: unknown;
  tool_calls?: { function?: { name?: unknown; arguments?: unknown } }[];
};

function textOfChoice(m: ChoiceText | undefined): string {
  if (!m) return "";
  const parts = [m.content, m.reasoning_content, m.refusal].filter((x): x is string => typeof x === "string");
  for (const call of m.tool_calls ?? []) {
    for (const x of [call.function?.name, call.function?.arguments]) if (typeof x === "string") parts.push(x);
  }
  return parts.join("");
}

/** The generated text of a non-streamed chat completion (every choice, tool call arguments included). */
export function chatOutputTextOf(json: unknown): string {
  const choices = (json as { choices?: { message?: ChoiceText }[] } | null)?.choices;
  return Array.isArray(choices) ? choices.map((c) => textOfChoice(c?.message)).join("") : "";
}

type Chunk = { choices?: { delta?: ChoiceText; finish_reason?: unknown }[]; usage?: unknown };

/**
 * Meters an OpenAI-style stream. With `hideUsage` (we asked for usage, the client did not), the usage-only
 * chunk is dropped and `"usage":null` is removed from the other chunks, so the client sees the stream it asked for.
 */
export function chatStreamMeter(hideUsage: boolean): StreamMeter {
  let usage: Usage | null = null;
  let bytes = 0;
  let finished = false;
  let final = false;
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
        bytes += utf8Bytes(textOfChoice(choice.delta));
        if (choice.finish_reason != null) finished = true;
      }
      // Final: OpenAI's usage chunk (no choices) after the finish, or Perplexity's usage on the finishing chunk.
      if (chunk.usage) {
        usage = usageFromOpenAi(chunk.usage as OpenAiUsage);
        if (finished || (chunk.choices?.length ?? 0) === 0) final = true;
      }
      if (!hideUsage || !("usage" in chunk)) return event;
      if (chunk.usage && (chunk.choices?.length ?? 0) === 0) return null;
      delete chunk.usage;
      const data = JSON.stringify(chunk);
      return { raw: `data: ${data}`, data };
    },
    usage: () => usage,
    final: () => final,
    outputBytes: () => bytes,
  };
}

/** The larger of the two output limits a client may send; the hold and the cap use it. */
export function requestedOutput(body: ChatCompletionBody): number | null {
  const asked = [body.max_completion_tokens, body.max_tokens].filter((v): v is number =>
    typeof v === "number"
  );
  return asked.length ? Math.max(...asked) : null;
}

/** Caps max output and asks for stream usage; returns whether the client had asked for usage itself. */
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
