// _shared/limits/ratelimit.ts against the stack's Postgres and Upstash endpoint: each store allows exactly N per
// window (also under 30 concurrent calls), a failing or slow Upstash falls back to Postgres (never a free
// pass), both failing is a 503, and a denied result renders as 429 with Retry-After and X-RateLimit-*.
import assert from "node:assert/strict";
import postgres from "npm:postgres@3.4.9";
import { Redis } from "npm:@upstash/redis@1.39.0";
import { HttpError } from "../_shared/http/errors.ts";
import type { LogFields, Logger } from "../_shared/platform/log.ts";
import {
  createLimiter,
  limit,
  type Limiter,
  type LimiterOptions,
  rateLimited,
  rateLimitHeaders,
  type RateLimitResult,
} from "../_shared/limits/ratelimit.ts";
import { stack } from "./_lib/stack.ts";

type Sql = postgres.Sql;

// An hour-long window: a test never straddles a window boundary (windows are aligned to the epoch).
const HOUR = 3600;
const usedKeys: string[] = [];
const uniqueKey = (name: string) => {
  const key = `test:ratelimit:${name}:${crypto.randomUUID()}`;
  usedKeys.push(key);
  return key;
};

const upstash = () => new Redis({ url: stack.upstashUrl, token: stack.upstashToken, retry: false });
const deadRedis = () => new Redis({ url: "http://127.0.0.1:1", token: "nope", retry: false });
const connect = (url = stack.dbUrl) =>
  postgres(url, { max: 10, prepare: false, connect_timeout: 2, onnotice: () => {} });

/** A logger that keeps its lines, to assert what was logged. */
function captureLog(): Logger & { lines: { level: string; msg: string; fields?: LogFields }[] } {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => void lines.push({ level, msg, fields });
  const log = {
    lines,
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => log,
  };
  return log;
}

/** Runs `fn` with a Postgres client that is closed (and the test's buckets removed) afterwards. */
async function withSql(fn: (sql: Sql) => Promise<void>): Promise<void> {
  const sql = connect();
  try {
    await fn(sql);
  } finally {
    await sql`delete from private.rate_limit_buckets where key = any(${usedKeys})`;
    await sql.end();
  }
}

async function hitExactly(
  limiter: Limiter,
  key: string,
  n: number,
  rule = { limit: n, windowSeconds: HOUR },
) {
  const results: RateLimitResult[] = [];
  for (let i = 0; i < n + 2; i++) results.push(await limiter.limit(key, rule));
  return results;
}

function assertExactlyN(results: RateLimitResult[], n: number, backend: string) {
  assert.deepEqual(results.map((r) => r.allowed), [...Array(n).fill(true), false, false]);
  assert.deepEqual(results.map((r) => r.remaining), [
    ...Array.from({ length: n }, (_, i) => n - 1 - i),
    0,
    0,
  ]);
  for (const r of results) {
    assert.equal(r.backend, backend);
    assert.equal(r.limit, n);
    assert.ok(r.resetAt > Date.now() && r.resetAt <= Date.now() + HOUR * 1000, `resetAt ${r.resetAt}`);
  }
}

function assert429(result: RateLimitResult) {
  const error = rateLimited(result);
  assert.ok(error instanceof HttpError);
  assert.equal(error.status, 429);
  assert.equal(error.code, "rate_limited");
  const retryAfter = Number(error.headers["retry-after"]);
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= HOUR,
    `retry-after ${retryAfter}`,
  );
  assert.equal(error.headers["x-ratelimit-limit"], String(result.limit));
  assert.equal(error.headers["x-ratelimit-remaining"], "0");
  assert.equal(error.headers["x-ratelimit-reset"], String(retryAfter));
}

Deno.test("the Postgres store allows exactly N per window, then a 429 with Retry-After", async () => {
  await withSql(async (sql) => {
    const results = await hitExactly(createLimiter({ redis: null, sql }), uniqueKey("pg"), 3);
    assertExactlyN(results, 3, "postgres");
    assert429(results[3]);
  });
});

Deno.test("the Upstash store allows exactly N per window, then a 429 with Retry-After", async () => {
  await withSql(async (sql) => {
    const key = uniqueKey("upstash");
    const redis = upstash();
    const results = await hitExactly(createLimiter({ redis, sql }), key, 3);
    assertExactlyN(results, 3, "upstash");
    assert429(results[3]);
    // Counted in Redis under the aie:rl: prefix, nothing in Postgres.
    const keys = await redis.keys(`aie:rl:${key}:*`);
    assert.equal(keys.length, 1);
    assert.equal((await sql`select 1 from private.rate_limit_buckets where key = ${key}`).length, 0);
  });
});

Deno.test("a request's cost counts that many hits on either store", async () => {
  await withSql(async (sql) => {
    for (const limiter of [createLimiter({ redis: null, sql }), createLimiter({ redis: upstash(), sql })]) {
      const key = uniqueKey("cost");
      const rule = { limit: 5, windowSeconds: HOUR, cost: 3 };
      const first = await limiter.limit(key, rule);
      assert.deepEqual([first.allowed, first.remaining], [true, 2]);
      const second = await limiter.limit(key, rule);
      assert.deepEqual([second.allowed, second.remaining], [false, 0]);
    }
  });
});

Deno.test("when Upstash is unreachable the limiter counts in Postgres and logs a warning", async () => {
  await withSql(async (sql) => {
    const log = captureLog();
    const limiter = createLimiter({ redis: deadRedis(), sql, log, upstashCooldownMs: 0 });
    const results = await hitExactly(limiter, uniqueKey("fallback"), 2);
    assertExactlyN(results, 2, "postgres");
    assert.ok(log.lines.some((l) => l.level === "warn" && /Upstash failed/.test(l.msg)));
  });
});

Deno.test("an Upstash timeout is a store failure, not a free pass: the hit goes to Postgres", async () => {
  let upstashCalls = 0;
  let answered = Promise.resolve();
  // An Upstash endpoint that takes 400 ms to answer (with an error), past the limiter's 100 ms deadline.
  const slow = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    upstashCalls++;
    await req.body?.cancel();
    const done = new Promise<void>((resolve) => setTimeout(resolve, 400));
    answered = done;
    await done;
    return Response.json({ error: "slow" }, { status: 500 });
  });
  try {
    await withSql(async (sql) => {
      const redis = new Redis({ url: `http://127.0.0.1:${slow.addr.port}`, token: "t", retry: false });
      const limiter = createLimiter({ redis, sql, upstashTimeoutMs: 100, upstashCooldownMs: 60_000 });
      const key = uniqueKey("timeout");
      const first = await limiter.limit(key, { limit: 1, windowSeconds: HOUR });
      assert.deepEqual([first.allowed, first.backend], [true, "postgres"]);
      // Within the cool-down Upstash is not asked again, and the limit still holds.
      const second = await limiter.limit(key, { limit: 1, windowSeconds: HOUR });
      assert.deepEqual([second.allowed, second.backend], [false, "postgres"]);
      assert.equal(upstashCalls, 1);
    });
  } finally {
    await answered;
    await slow.shutdown();
  }
});

Deno.test("when both Upstash and Postgres fail the limiter answers 503 and logs an error", async () => {
  const sql = connect("postgresql://postgres:postgres@127.0.0.1:1/postgres");
  try {
    const log = captureLog();
    const limiter = createLimiter({ redis: deadRedis(), sql, log });
    await assert.rejects(limiter.limit(uniqueKey("down"), { limit: 5, windowSeconds: 60 }), (e: unknown) => {
      assert.ok(e instanceof HttpError);
      assert.equal(e.status, 503);
      assert.equal(e.code, "service_unavailable");
      assert.equal(e.message, "Rate limiter unavailable");
      return true;
    });
    const error = log.lines.find((l) => l.level === "error");
    assert.ok(error, "an error line is logged");
    assert.equal(error.msg, "rate limiter unavailable");
    assert.ok(error.fields?.upstash && error.fields?.postgres);
    // Postgres alone (Upstash not configured) failing is a 503 too.
    const pgOnly = createLimiter({ redis: null, sql, log: captureLog() });
    await assert.rejects(pgOnly.limit(uniqueKey("down"), { limit: 5, windowSeconds: 60 }), HttpError);
  } finally {
    await sql.end();
  }
});

for (const backend of ["postgres", "upstash"] as const) {
  Deno.test(`30 concurrent calls with limit 10 allow exactly 10 (${backend})`, async () => {
    await withSql(async (sql) => {
      const options: LimiterOptions = { redis: backend === "upstash" ? upstash() : null, sql };
      const limiter = createLimiter(options);
      const key = uniqueKey(`concurrent-${backend}`);
      const results = await Promise.all(
        Array.from({ length: 30 }, () => limiter.limit(key, { limit: 10, windowSeconds: HOUR })),
      );
      assert.equal(results.filter((r) => r.allowed).length, 10);
      assert.ok(results.every((r) => r.backend === backend));
      assert.deepEqual(
        results.filter((r) => r.allowed).map((r) => r.remaining).sort((a, b) => a - b),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
    });
  });
}

Deno.test("an invalid rule or key is a programming error (RangeError), never a pass", async () => {
  await withSql(async (sql) => {
    const limiter = createLimiter({ redis: upstash(), sql });
    const rules = [
      { limit: 0, windowSeconds: 60 },
      { limit: 1, windowSeconds: 0.5 },
      { limit: 1, windowSeconds: 60, cost: 0 },
    ];
    for (const rule of rules) await assert.rejects(limiter.limit(uniqueKey("bad"), rule), RangeError);
    await assert.rejects(limiter.limit("", { limit: 1, windowSeconds: 60 }), RangeError);
  });
});

Deno.test("rateLimitHeaders gives limit, remaining and seconds to reset; Retry-After is at least 1", () => {
  const now = Date.now();
  const result: RateLimitResult = {
    allowed: true,
    limit: 10,
    remaining: 4,
    resetAt: now + 1500,
    backend: "postgres",
  };
  assert.deepEqual(rateLimitHeaders(result), {
    "x-ratelimit-limit": "10",
    "x-ratelimit-remaining": "4",
    "x-ratelimit-reset": "2",
  });
  const past = rateLimited({ ...result, allowed: false, remaining: 0, resetAt: now - 10 });
  assert.equal(past.headers["retry-after"], "1");
  assert.equal(past.headers["x-ratelimit-reset"], "0");
});

Deno.test({
  name: "limit() uses the env's stores: Upstash when UPSTASH_REDIS_REST_* are set",
  // db() is a process-wide pool that stays open by design.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const before = Deno.env.get("SUPABASE_DB_URL");
    Deno.env.set("SUPABASE_DB_URL", stack.dbUrl);
    try {
      const key = uniqueKey("default");
      const first = await limit(key, { limit: 1, windowSeconds: HOUR });
      const second = await limit(key, { limit: 1, windowSeconds: HOUR });
      assert.deepEqual([first.allowed, second.allowed], [true, false]);
      assert.equal(first.backend, "upstash");
    } finally {
      if (before === undefined) Deno.env.delete("SUPABASE_DB_URL");
      else Deno.env.set("SUPABASE_DB_URL", before);
    }
  },
});
