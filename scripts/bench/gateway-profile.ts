// Where a gateway request's time goes, step by step. Run by scripts/bench/gateway.mjs (npm run
// bench:gateway) with the env of the benchmark's own functions server; a benchmark helper, not a test.
//
// It runs the steps of supabase/functions/_shared/gateway/handler.ts one after the other, BENCH_ITERATIONS
// times, sequentially (concurrency 1), with the gateway's own modules (auth, db, ratelimit, usage) and the
// same SQL calls, and prints one JSON line: p50/p95/p99/mean in ms per step, plus baselines (a bare
// `select 1` on the same pool, an Upstash PING) that separate round-trip cost from work.
//
// env: BENCH_TOKEN (a user token), BENCH_UPSTREAM (fake OpenAI base URL, …/v1), BENCH_UPSTREAM_KEY,
//      BENCH_ITERATIONS (default 300), plus the functions' own SUPABASE_DB_URL, UPSTASH_REDIS_REST_URL/TOKEN,
//      JWT_SECRET, SUPABASE_JWKS.
import { verifyUserToken } from "../../supabase/functions/_shared/auth/verify.ts";
import { createLeaseBook } from "../../supabase/functions/_shared/gateway/admission/book.ts";
import { DEFAULT_LEASE_SETTINGS } from "../../supabase/functions/_shared/gateway/admission/state.ts";
import { leaseStore } from "../../supabase/functions/_shared/gateway/admission/store.ts";
import { estimateInputTokens } from "../../supabase/functions/_shared/gateway/parse.ts";
import { openai } from "../../supabase/functions/_shared/gateway/providers/openai.ts";
import { flushSettlements } from "../../supabase/functions/_shared/gateway/settlement/batch.ts";
import { recordUsage } from "../../supabase/functions/_shared/gateway/settlement/record-usage.ts";
import { limit } from "../../supabase/functions/_shared/limits/ratelimit.ts";
import { db } from "../../supabase/functions/_shared/platform/db.ts";
import { createLogger } from "../../supabase/functions/_shared/platform/log.ts";
import { redis } from "../../supabase/functions/_shared/platform/redis.ts";

const env = (name: string) => {
  const v = Deno.env.get(name);
  if (!v) throw new Error(`${name} is required`);
  return v;
};
const token = env("BENCH_TOKEN");
const upstream = env("BENCH_UPSTREAM").replace(/\/+$/, "");
const upstreamKey = env("BENCH_UPSTREAM_KEY");
const iterations = Number(Deno.env.get("BENCH_ITERATIONS") ?? 300);
const warmup = Math.min(30, Math.ceil(iterations / 10));

const raw = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello." }] });
const log = createLogger({ fn: "bench-profile" });
const sql = db();

type Step = { name: string; what: string; samples: number[] };
const steps = new Map<string, Step>();
async function timed<T>(name: string, what: string, fn: () => Promise<T> | T, record: boolean): Promise<T> {
  const started = performance.now();
  const out = await fn();
  const ms = performance.now() - started;
  if (record) {
    let step = steps.get(name);
    if (!step) steps.set(name, step = { name, what, samples: [] });
    step.samples.push(ms);
  }
  return out;
}

// The gateway's own lease book, with the same store the proxy uses (private.gateway_lease + Upstash).
const leases = createLeaseBook(leaseStore(openai, { upstashLimits: true }, 720), {
  ...DEFAULT_LEASE_SETTINGS,
  holdSeconds: 720,
});

for (let i = 0; i < warmup + iterations; i++) {
  const rec = i >= warmup;
  const requestId = `bench-profile-${crypto.randomUUID()}`;
  const started = performance.now();

  const claims = await timed(
    "auth: verify token",
    "verifyUserToken (jose; the proxy caches verified tokens)",
    () => verifyUserToken(token),
    rec,
  );
  const body = await timed("validate body", "JSON.parse + zod schema + describe + prepare", () => {
    const parsed = openai.schema.parse(JSON.parse(raw));
    openai.describe(parsed, { upstreamPath: "/chat/completions" });
    return parsed;
  }, rec);

  const call = {
    model: "gpt-4o-mini",
    inputEstimate: estimateInputTokens(new TextEncoder().encode(raw).byteLength),
    requestedOutput: null,
    choices: 1,
    inputUnbounded: false,
    searchContextSize: null,
  };
  const ticket = await timed(
    "admit (lease)",
    "from the instance's lease in memory; renewals (SQL + Upstash) are in the tail",
    () => leases.admit(claims.sub, call),
    rec,
  );
  await timed(
    "lease renewal: SQL",
    "private.gateway_lease for one call (what a renewal waits for), given back at once",
    async () => {
      const id = `bench-profile-lease-${crypto.randomUUID()}`;
      const request = {
        user_id: claims.sub,
        provider: "openai",
        lease_id: id,
        model: "gpt-4o-mini",
        input_estimate: call.inputEstimate,
        check_limits: false,
      };
      const [r] = await sql`select outcome from private.gateway_lease(
        jsonb_populate_record(null::private.lease_request, ${JSON.stringify(request)}::text::jsonb))`;
      if (r.outcome !== "ok") throw new Error(`lease refused: ${r.outcome}`);
      await sql`select private.gateway_release(${id})`;
    },
    rec,
  );
  await timed("lease renewal: Upstash", "one @upstash/ratelimit take over REST", async () => {
    const r = await limit(`gw:rpm:${claims.sub}`, { limit: 1_000_000_000, windowSeconds: 60 });
    if (!r.allowed) throw new Error("rate limited: raise the bench plan's limits");
  }, rec);

  const prepared = openai.prepare(body, { upstreamPath: "/chat/completions" }, ticket.maxOutput);
  const text = await timed(
    "upstream call (fake)",
    "fetch + read body (what the direct run measures)",
    async () => {
      const res = await fetch(`${upstream}/chat/completions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${upstreamKey}`,
          "content-type": "application/json",
          "accept-encoding": "identity",
        },
        body: JSON.stringify(prepared.body),
      });
      const t = await res.text();
      if (res.status !== 200) throw new Error(`upstream answered ${res.status}: ${t}`);
      return t;
    },
    rec,
  );
  const usage = openai.usageFromJson(JSON.parse(text));

  await timed(
    "settle (SQL)",
    "private.gateway_batch_settle, after the answer in the background (includes the 20 ms batching linger)",
    async () => {
      const how = await recordUsage({
        request_id: requestId,
        user_id: claims.sub,
        provider: "openai",
        model: "gpt-4o-mini",
        input_tokens: usage?.inputTokens ?? 0,
        cached_input_tokens: usage?.cachedInputTokens ?? 0,
        cache_write_tokens: usage?.cacheWriteTokens ?? 0,
        output_tokens: usage?.outputTokens ?? 0,
        reasoning_tokens: usage?.reasoningTokens ?? 0,
        search_context_size: null,
        status: "ok",
        http_status: 200,
        latency_ms: Math.round(performance.now() - started),
        upstream_request_id: null,
        tokens_estimated: false,
        lease_id: ticket.leaseId,
        admitted_at: ticket.admittedAt.toISOString(),
        session_id: null,
        run_id: null,
      }, log);
      ticket.end();
      if (how.outcome !== "settled") throw new Error(`usage went to ${how.outcome}`);
      ticket.settled(how.costTokens, how.balance);
    },
    rec,
  );

  await timed("baseline: select 1", "one round trip on the same postgres.js pool", () => sql`select 1`, rec);
  await timed(
    "baseline: Upstash PING",
    "one REST round trip to the Upstash endpoint",
    () => redis()!.ping(),
    rec,
  );
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const round = (x: number) => Math.round(x * 1000) / 1000;
const out = [...steps.values()].map(({ name, what, samples }) => {
  const s = [...samples].sort((a, b) => a - b);
  return {
    name,
    what,
    n: s.length,
    p50: round(pct(s, 50)),
    p95: round(pct(s, 95)),
    p99: round(pct(s, 99)),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
});
leases.closeAll();
await flushSettlements();
await sql.end({ timeout: 5 });
console.log(JSON.stringify({ iterations, steps: out }));
