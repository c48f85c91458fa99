// web_search: a question answered by Perplexity's Sonar from a web search, through the gateway as the run's
// user (ctx.callProvider: admitted, held, metered and billed like any call, its per-request search fee at the
// "low" context size included). The answer and the citations as Perplexity returns them: their URLs are never
// fetched, and this tool reaches nothing but ctx.callProvider. A gateway refusal (402 payment_required,
// 429 rate_limited, …) is a tool error with the gateway's code.
import { z } from "../../_shared/http/validation.ts";
import type { AgentTool } from "./tool.ts";
import { ToolError } from "./tool-error.ts";

const input = z.object({
  query: z.string().trim().min(1).max(400).describe("What to search the web for, as a question or keywords"),
  recency: z.enum(["day", "week", "month", "year"]).optional().describe(
    "Only use sources published within this period",
  ),
}).strict();

export const SEARCH_MODEL = "sonar";
/** The answer's length cap: enough for a summary with citations, and what the call is held for. */
const MAX_ANSWER_TOKENS = 1_024;
const MAX_CITATIONS = 20;
const SYSTEM_PROMPT = "You answer with a concise, factual summary of what current web sources say, citing " +
  "them by number. Say so when the sources do not answer the question.";

/** The Perplexity chat-completions body the gateway's allow-list accepts (providers/perplexity.ts). */
export function searchRequest(query: string, recency?: "day" | "week" | "month" | "year") {
  return {
    model: SEARCH_MODEL,
    messages: [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: query }],
    max_tokens: MAX_ANSWER_TOKENS,
    stream: false,
    web_search_options: { search_context_size: "low" as const },
    ...(recency ? { search_recency_filter: recency } : {}),
  };
}

const answerSchema = z.object({
  choices: z.array(
    z.object({ message: z.object({ content: z.string().nullish() }).passthrough() }).passthrough(),
  )
    .min(1),
  citations: z.array(z.unknown()).nullish(),
}).passthrough();

const gatewayError = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

export const webSearch: AgentTool<z.infer<typeof input>> = {
  name: "web_search",
  description:
    "Searches the web (Perplexity) and answers the query with a short summary and the URLs of its " +
    "sources. Use it for current events or facts you are not sure of. Each search costs the user tokens.",
  input,
  timeoutMs: 30_000,
  maxOutputBytes: 16_384,
  async run({ query, recency }, ctx) {
    const res = await ctx.callProvider("perplexity", "/chat/completions", searchRequest(query, recency));
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      const refusal = gatewayError.safeParse(body);
      if (refusal.success) throw new ToolError(refusal.data.error.code, refusal.data.error.message);
      throw new ToolError("upstream_error", `The search failed (HTTP ${res.status})`);
    }
    const answer = answerSchema.safeParse(body);
    if (!answer.success) throw new ToolError("upstream_error", "The search answered in an unexpected shape");
    return {
      answer: answer.data.choices[0].message.content ?? "",
      citations: (answer.data.citations ?? []).filter((c): c is string => typeof c === "string")
        .slice(0, MAX_CITATIONS),
    };
  },
};
