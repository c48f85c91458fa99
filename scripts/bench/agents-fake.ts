// The fake upstream of npm run bench:gateway (scripts/bench/gateway.mjs), a benchmark helper, not a test: the
// fake LLM (supabase/functions/tests/_lib/fake-llm.ts, calls not recorded, so memory stays flat) with a script per
// request for the agent runs (its `scriptFor`), chosen by a marker in the run's user message, so that runs at any
// concurrency each get their own tool loop:
//   [bench-steps N]   model steps 1..N-1 ask for the calculator (a different expression each step, k*7), step N
//                     answers "Done."; so a run makes exactly N model calls
//   [bench-cache]     input and cached tokens computed from what the request re-sends (cachedTokens "prefix");
//                     with [tool] the first step asks for the calculator; the answer is REPLY_CHARS long
// Requests without tools (the proxy load of the benchmark) are answered by the standing script as before.
// A control port serves GET /requests: per marked request, what the benchmark checks (provider, marker, the
// tool round, the run's [nonce …] and when the request arrived, OpenAI's prompt_cache_key, Anthropic's
// cache_control breakpoints) and, for the first run of each [bench-steps N], the request bodies, which the
// benchmark replays straight at the fake as its reference.
//
//   deno run --allow-net scripts/bench/agents-fake.ts --port P --control-port C
import {
  lastUserText,
  type LlmProvider,
  startFakeLlm,
  toolResultsIn,
} from "../../supabase/functions/tests/_lib/fake-llm.ts";

const arg = (name: string) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : 0;
};

const REPLY_CHARS = 600;
const LONG_REPLY = "Here is what I found, step by step. ".repeat(20).slice(0, REPLY_CHARS);

type Seen = {
  provider: LlmProvider;
  marker: string;
  round: number;
  nonce: string | null;
  /** Epoch milliseconds, with the fraction (performance.timeOrigin + now). */
  at: number;
  path: string;
  promptCacheKey: string | null;
  cacheControl: number;
  systemCacheControl: boolean;
  body?: unknown;
};
const seen: Seen[] = [];
const bodiesKept = new Set<string>();

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/** Anthropic's cache_control breakpoints in a request: how many, and whether one is on the system block. */
function breakpoints(body: Record<string, unknown>) {
  const text = JSON.stringify(body);
  const count = text.split('"cache_control"').length - 1;
  const system = Array.isArray(body.system) &&
    body.system.some((b) => isRecord(b) && b.cache_control !== undefined);
  return { count, system };
}

const PATHS: Record<LlmProvider, string> = {
  openai: "/v1/chat/completions",
  anthropic: "/v1/messages",
  google: "/v1beta/models/{model}:streamGenerateContent?alt=sse",
  perplexity: "/chat/completions",
};

await startFakeLlm({
  port: arg("port"),
  recordCalls: false,
  scriptFor: ({ provider, api, body }) => {
    if (!isRecord(body) || body.tools === undefined) return undefined;
    const text = lastUserText(provider, body);
    const steps = /\[bench-steps (\d+)\]/.exec(text);
    const cache = text.includes("[bench-cache]");
    if (!steps && !cache) return undefined;
    const round = toolResultsIn({ api, body }).length;
    const marker = steps ? `steps ${steps[1]}` : "cache";
    const { count, system } = breakpoints(body);
    const entry: Seen = {
      provider,
      marker,
      round,
      nonce: /\[nonce ([0-9a-f-]+)\]/.exec(text)?.[1] ?? null,
      at: performance.timeOrigin + performance.now(),
      path: PATHS[provider],
      promptCacheKey: typeof body.prompt_cache_key === "string" ? body.prompt_cache_key : null,
      cacheControl: count,
      systemCacheControl: system,
    };
    // The first run of each step count: its bodies, one per round, for the direct reference.
    const key = `${marker}:${round}`;
    if (steps && !bodiesKept.has(key)) {
      bodiesKept.add(key);
      entry.body = body;
    }
    if (seen.length < 50_000) seen.push(entry);
    const calculator = (k: number) => [{ name: "calculator", arguments: { expression: `${k}*7` } }];
    if (steps) {
      return round < Number(steps[1]) - 1
        ? { toolCalls: calculator(round + 1), outputTokens: 20 }
        : { reply: "Done.", outputTokens: 5 };
    }
    return round === 0 && text.includes("[tool]")
      ? { toolCalls: calculator(6), cachedTokens: "prefix", outputTokens: 20 }
      : { reply: LONG_REPLY, cachedTokens: "prefix", outputTokens: Math.ceil(REPLY_CHARS / 4) };
  },
});

Deno.serve({ hostname: "127.0.0.1", port: arg("control-port"), onListen: () => {} }, (req) => {
  const url = new URL(req.url);
  if (url.pathname === "/requests") return Response.json(seen);
  return new Response("not found", { status: 404 });
});
