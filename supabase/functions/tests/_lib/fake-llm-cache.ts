// The fake LLM's model of the providers' prompt caches, for `cachedTokens: "prefix"` (fake-llm.ts): the input
// tokens of a request and the part of them a provider would have read from its cache, computed from what the
// request actually re-sends, at ~4 characters a token (the gateway's own estimate), never from the script.
//
// A request's prompt is its prompt-bearing fields in the order the provider caches them, each item one segment
// (JSON as sent): OpenAI chat / Perplexity `tools` then `messages`; Responses `tools`, `instructions`, `input`;
// Anthropic `tools`, `system` (each block), then every message's content blocks; Gemini `tools`,
// `systemInstruction`, `contents`. A prompt is remembered once answered (the last 256 per provider).
//   OpenAI      cached = the longest common prefix with any earlier prompt, once it reaches `minTokens`, in steps
//               of 128 tokens above that (as OpenAI reports cached_tokens)
//   Gemini      cached = that longest common prefix, once it reaches `minTokens` (implicit caching)
//   Anthropic   only prefixes that end at a `cache_control` breakpoint are cached: cached = the longest
//               breakpoint prefix of an earlier prompt that this prompt starts with (up to its own last
//               breakpoint); what lies between that and its own last breakpoint is written (cache creation),
//               if that breakpoint prefix reaches `minTokens`
//   Perplexity  no prompt cache: cached 0
// Simplifications: no time to live, no per-key routing (OpenAI's prompt_cache_key), one minimum for every model.

import type { LlmApi, LlmProvider } from "./fake-llm.ts";

/** What a request's usage reports under the cache model. */
export type CachedUsage = { inputTokens: number; cachedTokens: number; cacheCreationTokens: number };

const CHARS_PER_TOKEN = 4;
const REMEMBERED = 256;
const OPENAI_STEP_TOKENS = 128;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const listOf = (v: unknown): unknown[] => Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];

type Segment = { text: string; breakpoint: boolean };

const seg = (item: unknown): Segment => ({
  text: JSON.stringify(item) ?? "",
  breakpoint: isRecord(item) && item.cache_control !== undefined,
});

/** A request's prompt as segments, in the order the provider caches it. */
export function promptSegments(api: LlmApi, body: unknown): Segment[] {
  const b = isRecord(body) ? body : {};
  switch (api) {
    case "chat":
      return [...listOf(b.tools), ...listOf(b.messages)].map(seg);
    case "responses":
      return [...listOf(b.tools), ...listOf(b.instructions), ...listOf(b.input)].map(seg);
    case "messages": {
      const system = typeof b.system === "string" ? [{ type: "text", text: b.system }] : listOf(b.system);
      const blocks = listOf(b.messages).flatMap((m) => {
        if (!isRecord(m)) return [m];
        const content = typeof m.content === "string" ? [m.content] : listOf(m.content);
        // Each block with its message's role, the breakpoint (a block's cache_control) kept visible.
        return content.map((c) => isRecord(c) ? { role: m.role, ...c } : { role: m.role, text: c });
      });
      return [...listOf(b.tools), ...system, ...blocks].map(seg);
    }
    case "generateContent":
      return [...listOf(b.tools), ...listOf(b.systemInstruction), ...listOf(b.contents)].map(seg);
    case "embeddings":
      return listOf(b.input).map(seg);
    // Embeddings and token counts are not cached by any provider.
    case "embedContent":
    case "batchEmbedContents":
    case "countTokens":
      return [];
  }
}

const tokensOf = (chars: number) => Math.floor(chars / CHARS_PER_TOKEN);

function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** The providers' prompt caches, one per provider, for one fake. */
export class PromptCaches {
  readonly #prompts: Record<LlmProvider, string[]> = {
    openai: [],
    anthropic: [],
    google: [],
    perplexity: [],
  };
  /** Anthropic: the breakpoint prefixes written so far. */
  readonly #written: string[] = [];

  /** What this request reports (and remembers it, as the provider's cache would once it has answered). */
  measure(provider: LlmProvider, api: LlmApi, body: unknown, minTokens: number): CachedUsage {
    const segments = promptSegments(api, body);
    const prompt = segments.map((s) => s.text).join("");
    const inputTokens = Math.max(1, Math.ceil(prompt.length / CHARS_PER_TOKEN));
    let cachedTokens = 0;
    let cacheCreationTokens = 0;
    const earlier = this.#prompts[provider];
    if (provider === "anthropic") {
      const breakpoints: number[] = [];
      let at = 0;
      for (const s of segments) {
        at += s.text.length;
        if (s.breakpoint) breakpoints.push(at);
      }
      const last = breakpoints.at(-1) ?? 0;
      let cachedChars = 0;
      for (const p of this.#written) {
        if (p.length > cachedChars && p.length <= last && prompt.startsWith(p)) cachedChars = p.length;
      }
      if (tokensOf(last) >= minTokens) {
        cachedTokens = tokensOf(cachedChars);
        cacheCreationTokens = tokensOf(last) - cachedTokens;
        for (const b of breakpoints) {
          if (tokensOf(b) >= minTokens) this.#remember(this.#written, prompt.slice(0, b));
        }
      }
    } else if (provider !== "perplexity") {
      let lcp = 0;
      for (const p of earlier) lcp = Math.max(lcp, commonPrefix(p, prompt));
      const tokens = tokensOf(lcp);
      if (tokens >= minTokens) {
        cachedTokens = provider === "openai"
          ? minTokens + Math.floor((tokens - minTokens) / OPENAI_STEP_TOKENS) * OPENAI_STEP_TOKENS
          : tokens;
      }
    }
    this.#remember(earlier, prompt);
    cachedTokens = Math.min(cachedTokens, inputTokens);
    cacheCreationTokens = Math.min(cacheCreationTokens, inputTokens - cachedTokens);
    return { inputTokens, cachedTokens, cacheCreationTokens };
  }

  #remember(list: string[], prompt: string) {
    if (list.includes(prompt)) return;
    list.push(prompt);
    if (list.length > REMEMBERED) list.shift();
  }
}
