// The LLM gateway's limits and money safety, over HTTP with the fake providers (tests/_lib/fake-llm.ts) on
// 127.0.0.1:12112, started in each test:
//   * requests per minute in Upstash (the test functions server) and in Postgres (the handler served in this
//     process with upstashLimits: false): the call over the limit is a 429 with Retry-After and the
//     X-RateLimit-*-Requests headers, reaches no provider and leaves no hold;
//   * tokens per minute count raw tokens of the holds (input estimate + max output): concurrent calls beyond the
//     window are refused before any has finished, with X-RateLimit-*-Tokens;
//   * balance, in platform tokens (ceil(cost / rate), tests/_lib/charges.ts is the oracle): a hold larger than
//     the unreserved balance is a 402 without an upstream call; 50 concurrent streams on a small balance are
//     billed in full, the balance ends below zero only by the overrun of calls admitted before it reached zero,
//     nothing is admitted once it is <= 0, and the ledger adds up afterwards; two instances with leases never
//     admit more calls than the balance covers;
//   * a price change between two calls bills each at the price in force when it was admitted; a model without a
//     price in force is a 400 naming it;
//   * a settlement blocked by a lock is parked (Redis after the 3 s deadline, and private.usage_outbox when the
//     database gives up on it), keeps what it cost held, and is applied once by process_usage_outbox;
//   * a hold left by a call that died is given back by release_expired_holds.
// Tests that reason about "the balance covers N calls" use the model priced at exactly the platform rate
// (UNIT_MODEL: one platform token per raw token); the others use gpt-4o-mini and the oracle.
// SDK round trips, auth and exact metering per provider are in gateway_test.ts.
import assert from "node:assert/strict";
import { Redis } from "npm:@upstash/redis@1.39.0";
import { createGatewayHandler } from "../_shared/gateway/handler.ts";
import type { GatewayOptions } from "../_shared/gateway/options.ts";
import { openai } from "../_shared/gateway/providers/openai.ts";
import { REDIS_OUTBOX_KEY } from "../_shared/gateway/settlement/redis-outbox.ts";
import {
  chargeOf,
  ensureUnitModels,
  type Price,
  priceInForce,
  rateInForce,
  type Tokens,
  tokens,
  UNIT_MODEL,
} from "./_lib/charges.ts";
import { FAKE_LLM_API_KEY, type FakeLlm, type FakeLlmScript, startFakeLlm } from "./_lib/fake-llm.ts";
import { createTestUser, deleteTestUsers, type Sql, testSql, type TestUser } from "./_lib/db.ts";
import { stack } from "./_lib/stack.ts";
import { hs256, userClaims } from "./_lib/tokens.ts";

const FAKE_PORT = 12112; // where tests/.env.test points the providers' base URLs
const PROXY = `${stack.functionsUrl}/openai-proxy`;
const MODEL = "gpt-4o-mini";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hex = () => crypto.randomUUID().replaceAll("-", "").slice(0, 12);

// ----------------------------------------------------------------------------------------- helpers

/** The fake providers on the port the functions' env names; waits while another test file holds it. */
async function startFake(script?: FakeLlmScript): Promise<FakeLlm> {
  const deadline = Date.now() + 30_000;
  while (true) {
    try {
      return await startFakeLlm({ port: FAKE_PORT, script });
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse) || Date.now() > deadline) throw e;
      await sleep(250);
    }
  }
}

/**
 * Limits count in fixed one-minute windows aligned to the epoch (Upstash and Postgres alike), and the pg_cron
 * jobs run on the minute: start a test that needs `seconds` inside one window only when that many are left.
 */
async function clearOfMinuteEdge(seconds: number): Promise<void> {
  const into = (Date.now() % 60_000) / 1000;
  if (into < 1 || into > 60 - seconds) await sleep(60_000 - (Date.now() % 60_000) + 1_000);
}

type Plan = { id: string; rpm: number; tpm: number; maxOutput: number };
type GwUser = TestUser & { token: string };

type Scenario = {
  sql: Sql;
  llm: FakeLlm;
  /** A dedicated plan (deleted afterwards): no allowance, every model, these limits. */
  plan(limits: { rpm?: number; tpm?: number; maxOutput?: number }): Promise<Plan>;
  /** A user on `plan` (default pro) with `balance` platform tokens credited as an adjustment. */
  user(options?: { plan?: string; balance?: number }): Promise<GwUser>;
};

/** The fake providers, a DB client, plans and users made on demand; all removed afterwards. */
async function scenario(fn: (s: Scenario) => Promise<void>, script?: FakeLlmScript): Promise<void> {
  await using llm = await startFake(script);
  const sql = testSql(20);
  const users: TestUser[] = [];
  const plans: string[] = [];
  try {
    await fn({
      sql,
      llm,
      plan: async ({ rpm = 1000, tpm = 100_000_000, maxOutput = 1000 }) => {
        const id = `test_tiny_${hex()}`;
        plans.push(id);
        await sql`insert into public.subscription_plans
                    (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
                     is_active)
                  values (${id}, ${"Test " + id}, 0, ${rpm}, ${tpm}, ${maxOutput}, false)`;
        return { id, rpm, tpm, maxOutput };
      },
      user: async ({ plan = "pro", balance = 0 } = {}) => {
        const user = await createTestUser(sql);
        users.push(user);
        await sql`update public.users set plan = ${plan} where id = ${user.id}`;
        if (balance > 0) {
          await sql`select private.update_user_token_balance(
                      ${user.id}, ${balance}, 'adjustment', ${"test:" + crypto.randomUUID()})`;
        }
        return { ...user, token: await hs256(userClaims(user.id, user.email)) };
      },
    });
  } finally {
    const ids = users.map((u) => u.id);
    const keys = ids.flatMap((id) => [`gw:rpm:${id}`, `gw:tpm:${id}`]);
    await deleteTestUsers(sql, users);
    if (ids.length) {
      await sql`delete from private.usage_outbox where payload ->> 'user_id' = any(${ids})`;
      await sql`delete from private.rate_limit_buckets where key = any(${keys})`;
    }
    if (plans.length) await sql`delete from public.subscription_plans where id = any(${plans})`;
    await sql.end();
  }
}

// deno-lint-ignore no-explicit-any
type Reply = { status: number; headers: Headers; text: string; json: any; requestId: string };

function chatBody(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hello there" }], ...fields });
}

/** POST …/openai-proxy/v1/chat/completions with the user's token, as the openai SDK sends it. */
async function send(token: string, body: string, base = PROXY, headers: Record<string, string> = {}) {
  return await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body,
  });
}

async function read(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch { /* a stream */ }
  return {
    status: res.status,
    headers: res.headers,
    text,
    json,
    requestId: res.headers.get("x-request-id")!,
  };
}

const chat = async (token: string, body: string, base = PROXY, headers: Record<string, string> = {}) =>
  await read(await send(token, body, base, headers));

/**
 * Streams whose events arrive one by one (chunkDelayMs) ask for usage themselves: a stream where the gateway hides
 * the usage event stalls (see the last test), and these tests are about limits, not that.
 */
const SLOW_STREAM = { stream: true, stream_options: { include_usage: true } };

// ------------------------------------------------------------------------------------- the oracle

/** The gateway's input estimate of a body: a third of its UTF-8 bytes, rounded up. */
const inputEstimate = (body: string) => Math.ceil(new TextEncoder().encode(body).length / 3);

/** Raw tokens a call counts against the tokens-per-minute limit: its input estimate plus max output × choices. */
const rawHold = (body: string, maxOutput: number, choices = 1) => inputEstimate(body) + maxOutput * choices;

/** A model's price in force and the platform rate, as published (tests/_lib/charges.ts). */
type Billing = { price: Price; rate: bigint };

async function billing(sql: Sql, model = MODEL): Promise<Billing> {
  return { price: await priceInForce(sql, "openai", model), rate: await rateInForce(sql) };
}

/** UNIT_MODEL (created if need be): priced at exactly the platform rate, one platform token per raw token. */
const unitBilling = async (sql: Sql): Promise<Billing> => await billing(sql, await ensureUnitModels(sql));

/** Platform tokens a call with these tokens is debited: ceil(cost / rate), from the oracle. */
const debitOf = (b: Billing, t: Partial<Tokens>) => chargeOf(b.price, b.rate, tokens(t)).platformTokens;

/**
 * The hold the gateway places, in platform tokens, computed here from the published price and rate (not by
 * private._hold_tokens or admission/hold.ts's holdTokens): the input estimate at the dearer of the input and cache-write
 * prices, plus the capped max output of every choice at the dearer of the output and reasoning prices, over the
 * rate, rounded up.
 */
function holdOf(b: Billing, input: number, maxOutput: number, choices = 1): number {
  const dearer = (price: bigint, other: bigint | null) => (other !== null && other > price ? other : price);
  const total = BigInt(input) * dearer(b.price.input, b.price.cacheWrite) +
    BigInt(maxOutput) * BigInt(choices) * dearer(b.price.output, b.price.reasoning);
  return Number((total + b.rate - 1n) / b.rate);
}

// ------------------------------------------------------------------------------------ assertions

function assertError(reply: Reply, status: number, code: string) {
  assert.equal(reply.status, status, reply.text);
  assert.match(reply.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(Object.keys(reply.json), ["error"], reply.text);
  assert.equal(reply.json.error.code, code);
  assert.equal(typeof reply.json.error.message, "string");
  assert.ok(reply.json.error.message.length > 0);
}

type LimitName = "requests" | "tokens";
const LIMIT_HEADERS = ["limit", "remaining", "reset"] as const;

/** Seconds until the window resets, as the header says it: a whole number within the minute. */
function assertReset(reply: Reply, name: string) {
  const reset = Number(reply.headers.get(name));
  assert.ok(Number.isInteger(reset) && reset >= 0 && reset <= 60, `${name} ${reply.headers.get(name)}`);
}

/**
 * A 429 from the limit `name`: Retry-After >= 1 and X-RateLimit-{Limit,Remaining,Reset}-<name> (remaining 0, reset
 * within the minute), and nothing about the other limit or an unnamed one.
 */
function assertRateLimited(reply: Reply, name: LimitName, limit: number) {
  assertError(reply, 429, "rate_limited");
  const retryAfter = Number(reply.headers.get("retry-after"));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
  assert.equal(reply.headers.get(`x-ratelimit-limit-${name}`), String(limit));
  assert.equal(reply.headers.get(`x-ratelimit-remaining-${name}`), "0");
  assertReset(reply, `x-ratelimit-reset-${name}`);
  const other = name === "requests" ? "tokens" : "requests";
  for (const h of LIMIT_HEADERS) {
    assert.equal(
      reply.headers.get(`x-ratelimit-${h}-${other}`),
      null,
      `no x-ratelimit-${h}-${other} on a 429`,
    );
    assert.equal(reply.headers.get(`x-ratelimit-${h}`), null, `no unnamed x-ratelimit-${h}`);
  }
}

/** An admitted call's headers: both limits, named, with what is left of each in the window. */
function assertLimitHeaders(reply: Reply, plan: { rpm: number; tpm: number }, remainingRequests?: number) {
  assert.equal(reply.headers.get("x-ratelimit-limit-requests"), String(plan.rpm));
  assert.equal(reply.headers.get("x-ratelimit-limit-tokens"), String(plan.tpm));
  const requests = Number(reply.headers.get("x-ratelimit-remaining-requests"));
  const tokensLeft = Number(reply.headers.get("x-ratelimit-remaining-tokens"));
  assert.ok(
    Number.isInteger(requests) && requests >= 0 && requests < plan.rpm,
    `remaining requests ${requests}`,
  );
  assert.ok(
    Number.isInteger(tokensLeft) && tokensLeft >= 0 && tokensLeft < plan.tpm,
    `remaining tokens ${tokensLeft}`,
  );
  if (remainingRequests !== undefined) assert.equal(requests, remainingRequests, "remaining requests");
  assertReset(reply, "x-ratelimit-reset-requests");
  assertReset(reply, "x-ratelimit-reset-tokens");
  for (const h of LIMIT_HEADERS) {
    assert.equal(reply.headers.get(`x-ratelimit-${h}`), null, `no unnamed x-ratelimit-${h}`);
  }
}

type Money = { balance: number; held: number };

async function money(sql: Sql, userId: string): Promise<Money> {
  const [row] = await sql<{ balance: string; held: string }[]>`
    select balance, held from public.token_balances where user_id = ${userId}`;
  return { balance: Number(row.balance), held: Number(row.held) };
}

/** Polls `fn` until `done` holds (settlement runs after the answer is handed back). */
async function eventually<T>(what: string, fn: () => Promise<T>, done: (v: T) => boolean, ms = 15_000) {
  const deadline = Date.now() + ms;
  let value = await fn();
  while (!done(value)) {
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(value)} after ${ms} ms`);
    await sleep(50);
    value = await fn();
  }
  return value;
}

/** Waits until every call of the user is settled: nothing held, `rows` usage rows. */
async function settled(sql: Sql, userId: string, rows: number): Promise<Money> {
  await eventually("usage rows", async () =>
    Number(
      (await sql`
    select count(*) as n from public.token_usage where user_id = ${userId}`)[0].n,
    ), (n) => n >= rows);
  return await eventually("held", () => money(sql, userId), (m) => m.held === 0);
}

type UsageRow = {
  request_id: string;
  input_tokens: string;
  cached_input_tokens: string;
  output_tokens: string;
  cost_micro_usd: string | null;
  pricing_id: string | null;
  debited_tokens: string;
  status: string;
};

const usageRows = (sql: Sql, userId: string) =>
  sql<
    UsageRow[]
  >`select request_id, input_tokens, cached_input_tokens, output_tokens, cost_micro_usd, pricing_id,
                         debited_tokens, status
                    from public.token_usage where user_id = ${userId} order by id`;

const holdRow = async (sql: Sql, requestId: string) =>
  (await sql`select amount, pricing_id from private.token_holds where request_id = ${requestId}`)[0];

/** The ledger sum and the balance agree (the invariant the ledger exists for). */
async function assertLedgerIsBalance(sql: Sql, userId: string, balance: number) {
  const [{ sum }] = await sql<{ sum: string }[]>`
    select coalesce(sum(delta), 0) as sum from public.token_transactions where user_id = ${userId}`;
  assert.equal(Number(sum), balance, "the ledger adds up to the balance");
}

/** Every usage row of the user billed `debit` platform tokens for `t`, at the price in force, once in the ledger. */
async function assertBilled(sql: Sql, userId: string, requestIds: string[], b: Billing, t: Partial<Tokens>) {
  const charge = chargeOf(b.price, b.rate, tokens(t));
  const rows = await usageRows(sql, userId);
  assert.deepEqual(rows.map((r) => r.request_id).sort(), [...requestIds].sort(), "one usage row per call");
  for (const r of rows) {
    assert.deepEqual(
      [Number(r.pricing_id), Number(r.cost_micro_usd), Number(r.debited_tokens), r.status],
      [b.price.id, charge.cost, charge.platformTokens, "ok"],
      `${r.request_id}: billed in platform tokens at the price in force`,
    );
  }
  const ledger = await sql<{ reference: string; delta: string }[]>`
    select reference, delta from public.token_transactions where user_id = ${userId} and reason = 'usage'`;
  assert.deepEqual(
    ledger.map((l) => [l.reference, Number(l.delta)]).sort(),
    requestIds.map((id) => [`usage:${id}`, -charge.platformTokens]).sort(),
    "one debit per call",
  );
}

// ------------------------------------------------------------------------------ requests per minute

Deno.test("Upstash limits: the 4th call of a 3-a-minute plan is a 429 that reaches no provider and holds nothing", async () => {
  await scenario(async ({ sql, llm, plan, user }) => {
    const tiny = await plan({ rpm: 3 });
    const u = await user({ plan: tiny.id, balance: 100_000 });
    const b = await billing(sql);
    await clearOfMinuteEdge(15);

    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await chat(u.token, chatBody({ max_tokens: 100 })));
    for (const [i, r] of replies.slice(0, 3).entries()) {
      assert.equal(r.status, 200, r.text);
      assertLimitHeaders(r, tiny, 2 - i);
    }
    assertRateLimited(replies[3], "requests", 3);

    // Counted in Upstash (the test functions server has it configured), not in Postgres.
    const keys = await sql`select key from private.rate_limit_buckets where key = ${"gw:rpm:" + u.id}`;
    assert.equal(keys.length, 0, "the Upstash backend must not count in Postgres");

    // The refused call reached no provider and left no hold, no usage and no debit.
    assert.equal(llm.counts.openai, 3);
    assert.equal(await holdRow(sql, replies[3].requestId), undefined);
    const after = await settled(sql, u.id, 3);
    assert.equal(after.held, 0);
    const usage = { input: 11, output: 7 }; // the fake's default usage
    await assertBilled(sql, u.id, replies.slice(0, 3).map((r) => r.requestId), b, usage);
    assert.equal(after.balance, 100_000 - 3 * debitOf(b, usage));
    await assertLedgerIsBalance(sql, u.id, after.balance);
  });
});

Deno.test("Upstash limits: tokens per minute count raw tokens of the holds — concurrent calls beyond the window are 429 before any finished", async () => {
  // Streams that take ~2.5 s: all five calls are answered (200 or 429) while the admitted ones still run.
  await scenario(async ({ sql, llm, plan, user }) => {
    const small = await plan({ rpm: 100, tpm: 3_000, maxOutput: 1_000 });
    const u = await user({ plan: small.id, balance: 1_000_000 });
    const b = await billing(sql);
    const body = chatBody({ max_tokens: 1_000, ...SLOW_STREAM });
    const raw = rawHold(body, 1_000);
    const hold = holdOf(b, inputEstimate(body), 1_000);
    assert.ok(
      2 * raw <= 3_000 && 3 * raw > 3_000,
      `two calls of ${raw} tokens fit in 3000 tokens, three do not`,
    );
    // The window counts raw tokens, not platform tokens: in platform tokens all five would fit, and the balance
    // covers them all, so every refusal below is the tokens-per-minute limit's.
    assert.ok(5 * hold <= 3_000 && 5 * hold <= 1_000_000, `five holds of ${hold} platform tokens fit`);
    await clearOfMinuteEdge(15);

    const responses = await Promise.all(Array.from({ length: 5 }, () => send(u.token, body)));
    const statuses = responses.map((r) => r.status).sort();
    // Every answer is in; the admitted streams are still running upstream.
    assert.equal(llm.calls.filter((c) => c.completed).length, 0, "no upstream call has finished yet");
    assert.deepEqual(statuses, [200, 200, 429, 429, 429]);
    assert.equal(llm.counts.openai, 2, "the refused calls reach no provider");
    assert.equal((await money(sql, u.id)).held, 2 * hold, "the two running calls hold their platform tokens");

    const replies = await Promise.all(responses.map(read));
    for (const r of replies.filter((r) => r.status === 429)) {
      assertRateLimited(r, "tokens", 3_000);
      assert.equal(await holdRow(sql, r.requestId), undefined, "a refused call keeps no hold");
    }
    for (const r of replies.filter((r) => r.status === 200)) {
      assert.match(r.text, /data: \[DONE\]/);
      assertLimitHeaders(r, small);
    }
    const after = await settled(sql, u.id, 2);
    assert.equal(after.held, 0);
    await assertBilled(sql, u.id, replies.filter((r) => r.status === 200).map((r) => r.requestId), b, {
      input: 11,
      output: 7,
    });
  }, { chunks: 5, chunkDelayMs: 500 });
});

/**
 * Runs `fn` with `count` openai-proxy handlers served in this process (each its own instance, with its own
 * lease book), pointed at the stack's database and the fake provider, counting limits in Upstash or not; the
 * env is restored afterwards. Their base URLs are passed to `fn`.
 * The Redis client (_shared/platform/redis.ts) and the limiter (_shared/limits/ratelimit.ts) are made once per
 * process, from the env of their first use: the test with upstashLimits: true runs first, so it really counts in
 * Upstash (a first use without the UPSTASH_* env would leave this process without Redis for good).
 */
async function withGatewaysInProcess(
  count: number,
  options: Pick<GatewayOptions, "upstashLimits" | "leases">,
  fn: (bases: string[]) => Promise<void>,
) {
  const env: Record<string, string | undefined> = {
    SUPABASE_DB_URL: stack.dbUrl,
    JWT_SECRET: stack.jwtSecret,
    OPENAI_API_KEY: FAKE_LLM_API_KEY,
    OPENAI_BASE_URL: `http://127.0.0.1:${FAKE_PORT}/v1`,
    UPSTASH_REDIS_REST_URL: options.upstashLimits ? stack.upstashUrl : undefined,
    UPSTASH_REDIS_REST_TOKEN: options.upstashLimits ? stack.upstashToken : undefined,
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  const setEnv = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  };
  setEnv(env);
  const servers = Array.from({ length: count }, () =>
    Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      createGatewayHandler(openai, { headersTimeoutMs: 2000, totalTimeoutMs: 10000, ...options }),
    ));
  try {
    await fn(servers.map((s) => `http://127.0.0.1:${s.addr.port}/openai-proxy`));
  } finally {
    await Promise.all(servers.map((s) => s.shutdown()));
    setEnv(saved);
  }
}

// ------------------------------------------------------------------------------------------ balance

Deno.test("balance: a hold above the unreserved balance is a 402 with no upstream call; a smaller max output fits", async () => {
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 1_000 }); // pro: max output 8192
    const b = await billing(sql);
    const body = chatBody();
    assert.ok(
      holdOf(b, inputEstimate(body), 8192) > 1_000,
      "the plan's max output holds more than the balance",
    );

    const refused = await chat(u.token, body);
    assertError(refused, 402, "payment_required");
    assert.equal(llm.counts.openai, 0, "no upstream call");
    assert.equal(await holdRow(sql, refused.requestId), undefined);
    assert.deepEqual(await money(sql, u.id), { balance: 1_000, held: 0 });
    assert.equal((await usageRows(sql, u.id)).length, 0);

    // The same call asking for at most 500 output tokens holds less than the balance: admitted.
    const small = chatBody({ max_tokens: 500 });
    assert.ok(holdOf(b, inputEstimate(small), 500) <= 1_000);
    const ok = await chat(u.token, small);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(llm.counts.openai, 1);
    assert.equal(llm.calls[0].body && (llm.calls[0].body as { max_tokens: number }).max_tokens, 500);
    const usage = { input: 11, output: 7 };
    assert.deepEqual(await settled(sql, u.id, 1), { balance: 1_000 - debitOf(b, usage), held: 0 });
    await assertBilled(sql, u.id, [ok.requestId], b, usage);
  });
});

Deno.test("balance: 50 concurrent streams on a small balance — each admitted call is billed in full, only their overrun takes the balance below zero, then nothing is admitted", async () => {
  const N = 7;
  await scenario(async ({ sql, llm, plan, user }) => {
    const roomy = await plan({ rpm: 1_000, tpm: 100_000_000, maxOutput: 1_000 });
    const unit = await unitBilling(sql);
    const body = chatBody({ model: UNIT_MODEL, max_tokens: 1_000, ...SLOW_STREAM });
    const hold = holdOf(unit, inputEstimate(body), 1_000);
    assert.equal(hold, rawHold(body, 1_000), "the unit-priced model holds one platform token per raw token");
    // Each call reports twice its hold (its input was under-estimated): billed in full, it overruns its hold by
    // `hold`. The streams take ~2.5 s, so all 50 are admitted or refused before any is settled: exactly the N
    // whose holds the balance covers are admitted.
    const usage = { input: 2 * hold - 1_000, output: 1_000 };
    const cost = debitOf(unit, usage);
    assert.equal(cost, 2 * hold);
    llm.setScript({ inputTokens: usage.input, outputTokens: usage.output, chunks: 5, chunkDelayMs: 500 });
    const start = N * hold + Math.floor(hold / 2);
    const u = await user({ plan: roomy.id, balance: start });

    const responses = await Promise.all(Array.from({ length: 50 }, () => send(u.token, body)));
    assert.equal(
      llm.calls.filter((c) => c.completed).length,
      0,
      "every call answered before any stream ended",
    );
    const replies = await Promise.all(responses.map(read));
    const ok = replies.filter((r) => r.status === 200);
    assert.deepEqual(
      [...new Set(replies.map((r) => r.status))].filter((s) => s !== 200 && s !== 402),
      [],
      "every answer is 200 or 402",
    );
    for (const r of replies.filter((r) => r.status === 402)) {
      assertError(r, 402, "payment_required");
      assert.equal(await holdRow(sql, r.requestId), undefined, "a refused call keeps no hold");
    }
    for (const r of ok) assert.match(r.text, /data: \[DONE\]/);
    assert.equal(ok.length, N, `the balance covers the holds of ${N} calls: exactly those are admitted`);
    assert.equal(llm.counts.openai, N, "refused calls reach no provider");

    // Every admitted call is billed what it used, its overrun included.
    const after = await settled(sql, u.id, N);
    assert.equal(after.held, 0, "no hold left");
    await assertBilled(sql, u.id, ok.map((r) => r.requestId), unit, usage);
    assert.equal(after.balance, start - N * cost, "billed in full");
    // Below zero, and only by the overrun of the calls admitted before it got there: their holds fitted.
    assert.ok(after.balance < 0, `the overrun takes the balance below zero (${after.balance})`);
    assert.ok(N * hold <= start, "the admitted calls' holds fitted the balance");
    assert.ok(
      after.balance >= -N * (cost - hold),
      "below zero by no more than the overrun of admitted calls",
    );
    await assertLedgerIsBalance(sql, u.id, after.balance);
    const [last] = await sql<{ balance_after: string; reason: string }[]>`
      select balance_after, reason from public.token_transactions where user_id = ${u.id} order by id desc limit 1`;
    assert.deepEqual([Number(last.balance_after), last.reason], [after.balance, "usage"]);

    // Once the balance is <= 0, no call is admitted, not even the smallest.
    const again = await Promise.all(
      Array.from({ length: 5 }, () => chat(u.token, chatBody({ model: UNIT_MODEL, max_tokens: 1 }))),
    );
    for (const r of again) {
      assertError(r, 402, "payment_required");
      assert.equal(await holdRow(sql, r.requestId), undefined);
    }
    assert.equal(llm.counts.openai, N, "no call reached a provider after the balance reached zero");
    assert.deepEqual(await money(sql, u.id), after, "nothing held or debited after it");
    assert.equal((await usageRows(sql, u.id)).length, N);
  });
});

Deno.test({
  name:
    "leases: two function instances serving one user at once never admit more calls than the balance covers",
  // The handlers' database pool (_shared/platform/db.ts) is process-wide and stays open; leases go back on a
  // timer.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Two instances of openai-proxy, each with its own lease book (as two edge function instances would be).
    await withGatewaysInProcess(2, { upstashLimits: true, leases: { idleMs: 200 } }, async (bases) => {
      await scenario(async ({ sql, llm, plan, user }) => {
        const roomy = await plan({ rpm: 100_000, tpm: 1_000_000_000, maxOutput: 100 });
        const unit = await unitBilling(sql);
        const body = chatBody({ model: UNIT_MODEL, max_tokens: 100 });
        const hold = holdOf(unit, inputEstimate(body), 100);
        const N = 40;
        // Each call uses its whole hold, so the balance covers exactly N calls, whichever instance serves them.
        const usage = { input: hold - 100, output: 100 };
        assert.equal(debitOf(unit, usage), hold, "a call costs exactly its hold");
        llm.setScript({ inputTokens: usage.input, outputTokens: usage.output });
        const start = N * hold + Math.floor(hold / 2);
        const u = await user({ plan: roomy.id, balance: start });

        // Waves of calls, alternating between the instances, so both grow leases of this user.
        const replies: Reply[] = [];
        for (let wave = 0; wave < 12; wave++) {
          replies.push(
            ...await Promise.all(Array.from({ length: 8 }, (_, i) => chat(u.token, body, bases[i % 2]))),
          );
        }
        const ok = replies.filter((r) => r.status === 200);
        for (const r of replies.filter((r) => r.status !== 200)) assertError(r, 402, "payment_required");
        assert.equal(ok.length, N, "exactly the calls the balance covers");
        assert.equal(llm.counts.openai, N, "refused calls reach no provider");

        const after = await settled(sql, u.id, N);
        assert.deepEqual(
          after,
          { balance: start - N * hold, held: 0 },
          "spent what was covered; leases given back",
        );
        await assertBilled(sql, u.id, ok.map((r) => r.requestId), unit, usage);
        await assertLedgerIsBalance(sql, u.id, after.balance);
        assert.equal((await sql`select 1 from private.token_holds where user_id = ${u.id}`).length, 0);
        // The limits were counted in Upstash, as on the platform, not in Postgres.
        const upstash = new Redis({ url: stack.upstashUrl, token: stack.upstashToken, retry: false });
        assert.ok((await upstash.keys(`aie:rl:gw:rpm:${u.id}:*`)).length >= 1, "counted in Upstash");
        const buckets = await sql`select 1 from private.rate_limit_buckets where key like ${"gw:%:" + u.id}`;
        assert.equal(buckets.length, 0, "not in Postgres");
      });
    });
  },
});

// --------------------------------------------------------------------- requests per minute, without Upstash

Deno.test({
  name:
    "Postgres limits: served without Upstash, the 4th call is a 429 counted in private.rate_limit_buckets",
  // The handler's database pool (_shared/platform/db.ts) is process-wide and stays open.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withGatewaysInProcess(1, { upstashLimits: false }, async ([base]) => {
      await scenario(async ({ sql, llm, plan, user }) => {
        const tiny = await plan({ rpm: 3 });
        const u = await user({ plan: tiny.id, balance: 100_000 });
        const b = await billing(sql);
        await clearOfMinuteEdge(15);

        const body = chatBody({ max_tokens: 100 });
        const replies: Reply[] = [];
        for (let i = 0; i < 4; i++) replies.push(await chat(u.token, body, base));
        assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 429], replies[3].text);
        for (const [i, r] of replies.slice(0, 3).entries()) assertLimitHeaders(r, tiny, 2 - i);
        assertRateLimited(replies[3], "requests", 3);

        // Counted by Postgres: four hits on the user's requests-per-minute bucket, three calls' raw tokens on
        // tokens (the refused call stopped at the first limit); nothing in Upstash.
        const buckets = await sql<{ key: string; hits: number }[]>`
          select key, hits from private.rate_limit_buckets where key like ${"gw:%:" + u.id} order by key`;
        assert.deepEqual(buckets.map((b) => [b.key, b.hits]), [
          [`gw:rpm:${u.id}`, 4],
          [`gw:tpm:${u.id}`, 3 * rawHold(body, 100)],
        ]);
        const upstash = new Redis({ url: stack.upstashUrl, token: stack.upstashToken, retry: false });
        assert.deepEqual(await upstash.keys(`aie:rl:gw:*${u.id}*`), []);

        assert.equal(llm.counts.openai, 3);
        assert.equal(await holdRow(sql, replies[3].requestId), undefined);
        const after = await settled(sql, u.id, 3);
        assert.equal(after.held, 0);
        const usage = { input: 11, output: 7 };
        await assertBilled(sql, u.id, replies.slice(0, 3).map((r) => r.requestId), b, usage);
        assert.equal(after.balance, 100_000 - 3 * debitOf(b, usage));
      });
    });
  },
});

// ------------------------------------------------------------------------------------------ pricing

Deno.test("pricing: a price change between calls bills each call at the price in force when it was admitted", async () => {
  // A model of its own, so no other test's prices move: price A from an hour ago, then B from now.
  const model = `test-price-${hex()}`;
  const script = { inputTokens: 1_000, cachedTokens: 200, outputTokens: 500 };
  const used = tokens({ input: 1_000, cached: 200, output: 500 });
  const A = { input: 1_000_000, cached: 100_000, output: 2_000_000 };
  const B = { input: 3_000_000, cached: 300_000, output: 5_000_000 };
  const priced = (id: number, p: typeof A): Price => ({
    id,
    input: BigInt(p.input),
    cached: BigInt(p.cached),
    cacheWrite: null,
    output: BigInt(p.output),
    reasoning: null,
  });
  const admin = testSql(2);
  try {
    await scenario(async ({ sql, llm, user }) => {
      const rate = await rateInForce(sql);
      const [{ id: priceA }] = await sql<{ id: string }[]>`
        insert into public.model_pricing
          (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
           effective_from)
        values ('openai', ${model}, ${A.input}, ${A.cached}, ${A.output}, now() - interval '1 hour')
        returning id`;
      const start = 1_000_000;
      const u = await user({ plan: "pro", balance: start });
      const body = (stream = false) =>
        JSON.stringify({
          model,
          messages: [{ role: "user", content: "hi" }],
          ...(stream ? SLOW_STREAM : {}),
        });

      const first = await chat(u.token, body());
      assert.equal(first.status, 200, first.text);

      // A call admitted at price A that is still streaming when the price changes.
      llm.setScript({ ...script, chunks: 5, chunkDelayMs: 500, times: 1 });
      const inFlight = send(u.token, body(true));
      await llm.waitForCalls(2);
      const priceB = await sql.begin(async (tx) => {
        await tx`update public.model_pricing set effective_to = now() where id = ${priceA}`;
        const [{ id }] = await tx<{ id: string }[]>`
          insert into public.model_pricing
            (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
             effective_from)
          values ('openai', ${model}, ${B.input}, ${B.cached}, ${B.output}, now())
          returning id`;
        return id;
      });
      assert.equal(llm.calls[1].completed, false, "the second call was still running at the change");
      const second = await read(await inFlight);
      assert.equal(second.status, 200, second.text);

      const third = await chat(u.token, body());
      assert.equal(third.status, 200, third.text);

      const after = await settled(sql, u.id, 3);
      const rows = await usageRows(sql, u.id);
      const byId = new Map(rows.map((r) => [r.request_id, r]));
      const billed = [first, second, third].map((r) => {
        const row = byId.get(r.requestId)!;
        return [Number(row.pricing_id), Number(row.cost_micro_usd), Number(row.debited_tokens)];
      });
      const a = chargeOf(priced(Number(priceA), A), rate, used);
      const bb = chargeOf(priced(Number(priceB), B), rate, used);
      assert.deepEqual(billed, [
        [Number(priceA), a.cost, a.platformTokens],
        [Number(priceA), a.cost, a.platformTokens],
        [Number(priceB), bb.cost, bb.platformTokens],
      ]);
      assert.notEqual(a.platformTokens, bb.platformTokens);
      assert.equal(
        after.balance,
        start - 2 * a.platformTokens - bb.platformTokens,
        "debited in platform tokens",
      );
      await assertLedgerIsBalance(sql, u.id, after.balance);

      // Without a price in force the model cannot be billed, so a call to it is refused at admission (once the
      // lease book's one-second cache of the price has lapsed), naming the model.
      await sql`update public.model_pricing set effective_to = now() where id = ${priceB}`;
      await sleep(1_100);
      const unpriced = await chat(u.token, body());
      assertError(unpriced, 400, "invalid_request");
      assert.match(unpriced.json.error.message, new RegExp(model));
      assert.equal(llm.counts.openai, 3, "the refused call reaches no provider");
      assert.equal(await holdRow(sql, unpriced.requestId), undefined);
      assert.deepEqual(await money(sql, u.id), after, "nothing held or debited");
    }, script);
  } finally {
    // The usage rows that reference these prices went with the user.
    await admin`delete from public.model_pricing where model = ${model}`;
    await admin.end();
  }
});

// ------------------------------------------------------------------------------------------- outbox

/** The usage records parked in Redis for `requestId` (the client may hand them back parsed or as text). */
async function parkedInRedis(redis: Redis, requestId: string): Promise<Record<string, unknown>[]> {
  const items = await redis.lrange<unknown>(REDIS_OUTBOX_KEY, 0, -1);
  return items
    .map((item) => (typeof item === "string" ? JSON.parse(item) : item) as Record<string, unknown>)
    .filter((record) => record.request_id === requestId);
}

Deno.test("outbox: a settlement blocked by a lock is parked, keeps what it cost held, and is applied exactly once", async () => {
  // The settlement chain (settlement/): the batch must commit within 3 s, else the record goes to Redis; the
  // database, still working on it, gives up on the lock too (3 s per wait) and parks it in private.usage_outbox
  // with what it cost held. The Redis copy, moved to the database on the instance's next settlement, finds it
  // there and changes nothing; process_usage_outbox applies it once.
  await scenario(async ({ sql, llm, user }) => {
    const b = await billing(sql);
    const start = 100_000;
    const u = await user({ plan: "pro", balance: start });
    const other = await user({ plan: "pro", balance: start });
    const body = chatBody({ max_tokens: 100 });
    const hold = holdOf(b, inputEstimate(body), 100);
    const usage = { input: 11, output: 7 };
    const cost = debitOf(b, usage);
    const redis = new Redis({ url: stack.upstashUrl, token: stack.upstashToken, retry: false });
    // The lock is held ~10 s, then the outbox is processed; the aie_usage_outbox job (on the minute) must not
    // try it meanwhile (a failed try puts it a minute off).
    await clearOfMinuteEdge(35);

    // Admitted first (admission locks the balance row too), answered after the user's balance row is locked.
    llm.setScript({ delayMs: 1_000, times: 1 });
    const pending = chat(u.token, body);
    await llm.waitForCalls(1);
    let requestId = "";
    let payload: Record<string, unknown> = {};
    await sql.begin(async (tx) => {
      await tx`select 1 from public.token_balances where user_id = ${u.id} for update`;
      const reply = await pending;
      assert.equal(reply.status, 200, reply.text);
      requestId = reply.requestId;
      const answered = Date.now();

      const [copy] = await eventually(
        "the record in Redis",
        () => parkedInRedis(redis, requestId),
        (r) => r.length > 0,
      );
      assert.ok(Date.now() - answered > 2_900, "parked in Redis only after the 3 s settlement deadline");
      assert.deepEqual(
        [copy.user_id, copy.model, copy.input_tokens, copy.output_tokens, copy.status],
        [u.id, MODEL, 11, 7, "ok"],
      );

      const [parked] = await eventually(
        "outbox record",
        () =>
          sql`select payload, applied_at, dead_at, attempts, last_error
                from private.usage_outbox where request_id = ${requestId}`,
        (rows) => rows.length === 1,
      );
      assert.equal(parked.applied_at, null);
      assert.equal(parked.dead_at, null);
      assert.match(parked.last_error, /lock/i);
      assert.deepEqual(parked.payload, copy, "the same record in both places");
      payload = parked.payload;
      // What the parked call cost moved out of its lease into a hold of its own; nothing is debited yet.
      assert.equal(Number((await holdRow(sql, requestId))?.amount), cost, "what it cost stays held");
      assert.equal((await tx`select 1 from public.token_usage where request_id = ${requestId}`).length, 0);
      assert.deepEqual(await money(sql, u.id), { balance: start, held: hold });
    });
    assert.equal(llm.counts.openai, 1);

    // The lease goes back once the lock is gone, all but what the parked call cost.
    await eventually("lease given back", () => money(sql, u.id), (m) => m.held === cost);
    assert.deepEqual(
      (await sql`select request_id, amount from private.token_holds where user_id = ${u.id}`).map((
        h,
      ) => [h.request_id, Number(h.amount)]),
      [[requestId, cost]],
    );

    // The instance's next settlement moves the Redis copy into the database outbox, where the record is already.
    const next = await chat(other.token, body);
    assert.equal(next.status, 200, next.text);
    await eventually("Redis drained", () => parkedInRedis(redis, requestId), (r) => r.length === 0);
    const outbox = await sql`select applied_at, attempts, last_error from private.usage_outbox
                              where request_id = ${requestId}`;
    assert.equal(outbox.length, 1, "one outbox record");
    assert.equal(outbox[0].applied_at, null);
    assert.match(outbox[0].last_error, /lock/i, "the Redis copy changed nothing");
    assert.equal((await usageRows(sql, u.id)).length, 0);

    await sql`select private.process_usage_outbox()`;
    const rows = await usageRows(sql, u.id);
    assert.deepEqual(rows.map((r) => [r.request_id, Number(r.input_tokens), Number(r.output_tokens)]), [
      [requestId, 11, 7],
    ]);
    await assertBilled(sql, u.id, [requestId], b, usage);
    const [applied] = await sql`select applied_at from private.usage_outbox where request_id = ${requestId}`;
    assert.ok(applied.applied_at instanceof Date);
    assert.deepEqual(await money(sql, u.id), { balance: start - cost, held: 0 });

    // Again, and another copy of the record (as a replay from Redis or the log would bring): nothing changes.
    await sql`select private.process_usage_outbox()`;
    await sql`select private.enqueue_usage(p_payload => ${
      JSON.stringify(payload)
    }::text::jsonb, p_error => 'again')`;
    assert.equal((await usageRows(sql, u.id)).length, 1);
    const [again] = await sql`select applied_at from private.usage_outbox where request_id = ${requestId}`;
    assert.equal(again.applied_at.getTime(), applied.applied_at.getTime());
    assert.deepEqual(await money(sql, u.id), { balance: start - cost, held: 0 });
    const ledger = await sql`select delta from public.token_transactions where reference = ${
      "usage:" + requestId
    }`;
    assert.deepEqual(ledger.map((l) => Number(l.delta)), [-cost]);
    await assertLedgerIsBalance(sql, u.id, start - cost);
  });
});

// -------------------------------------------------------------------------------------------- holds

Deno.test("holds: a hold whose call died is released by private.release_expired_holds; live holds stay", async () => {
  await scenario(async ({ sql, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
    const b = await billing(sql);
    await clearOfMinuteEdge(10); // the aie_release_expired_holds job runs on the minute
    const admit = async (requestId: string) =>
      (await sql<{ outcome: string; hold_tokens: string; pricing_id: string }[]>`
        select outcome, hold_tokens, pricing_id from private.gateway_admit(
          p_user_id => ${u.id}, p_provider => 'openai', p_model => ${MODEL}, p_request_id => ${requestId},
          p_input_estimate => 100, p_requested_output => 500, p_check_limits => false)`)[0];
    // 100 input and 500 output tokens at the model's price, in platform tokens.
    const hold = holdOf(b, 100, 500);
    const dead = `test-dead-${crypto.randomUUID()}`;
    const live = `test-live-${crypto.randomUUID()}`;
    const admitted = { outcome: "ok", hold_tokens: String(hold), pricing_id: String(b.price.id) };
    assert.deepEqual(await admit(dead), admitted);
    assert.deepEqual(await admit(live), admitted);
    assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: 2 * hold });
    for (const id of [dead, live]) {
      const row = await holdRow(sql, id);
      assert.deepEqual(
        [Number(row.amount), Number(row.pricing_id)],
        [hold, b.price.id],
        "the hold keeps its price",
      );
    }

    await sql`update private.token_holds set expires_at = now() - interval '1 minute' where request_id = ${dead}`;
    const [{ released }] = await sql`select private.release_expired_holds() as released`;
    assert.ok(released >= 1);
    assert.equal(await holdRow(sql, dead), undefined);
    assert.ok(await holdRow(sql, live), "a hold that has not expired stays");
    assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: hold });

    await sql`select private.gateway_release(${live})`;
    assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: 0 });
    assert.equal((await usageRows(sql, u.id)).length, 0, "released holds bill nothing");
  });
});

// ------------------------------------------------------------------------------- found while testing

Deno.test("request ids: a client repeating an x-request-id still pays for the second call and leaves no hold", async () => {
  // The gateway keys holds, usage rows and ledger debits by the request id. When withHttp took it from the
  // client's x-request-id header, a repeated id made the second upstream call free (its settlement found the first
  // call's usage row and returned it) and left its hold behind. The gateway now always makes a new id.
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
    const b = await billing(sql);
    const debit = debitOf(b, { input: 11, output: 7 });
    const requestId = `replay-${crypto.randomUUID()}`;
    const body = chatBody({ max_tokens: 100 });
    const first = await chat(u.token, body, PROXY, { "x-request-id": requestId });
    assert.equal(first.status, 200, first.text);
    await settled(sql, u.id, 1);

    const second = await chat(u.token, body, PROXY, { "x-request-id": requestId });
    const upstreamCalls = llm.counts.openai;
    if (second.status === 200) assert.equal(upstreamCalls, 2);
    else assert.equal(upstreamCalls, 1, "a refused repeat reaches no provider");
    assert.deepEqual(
      await settled(sql, u.id, upstreamCalls), // settlement runs after the answer
      { balance: 100_000 - upstreamCalls * debit, held: 0 },
      `${upstreamCalls} upstream calls: each debited once, no hold left`,
    );
    const ledger = await sql`select reference from public.token_transactions
                              where user_id = ${u.id} and reason = 'usage'`;
    assert.equal(new Set(ledger.map((l) => l.reference)).size, upstreamCalls, "one debit per upstream call");
  });
});

Deno.test("holds: a call asking for n choices holds n times the max output", async () => {
  // OpenAI's max_tokens caps each choice; usage counts all of them. A hold of one choice would let a user with a
  // balance for one choice's hold run n of them, taking the balance below zero by the other n - 1.
  await scenario(async ({ sql, llm, user }) => {
    const unit = await unitBilling(sql);
    const balance = 2_000;
    const u = await user({ plan: "pro", balance });
    const body = chatBody({ model: UNIT_MODEL, max_tokens: 1_000, n: 4 });
    const one = chatBody({ model: UNIT_MODEL, max_tokens: 1_000, n: 1 });
    assert.ok(
      holdOf(unit, inputEstimate(body), 1_000, 4) > balance,
      "four choices' hold exceeds the balance",
    );
    assert.ok(holdOf(unit, inputEstimate(one), 1_000, 1) <= balance, "one choice's hold fits it");
    llm.setScript({ outputTokens: 4_000 }); // what the four choices would use
    const reply = await chat(u.token, body);
    if (reply.status === 200) {
      await settled(sql, u.id, 1);
      const [row] = await usageRows(sql, u.id);
      assert.fail(
        `admitted with a balance of ${balance} for up to 4 × 1000 output tokens; debited ${row?.debited_tokens}`,
      );
    }
    assertError(reply, 402, "payment_required");
    assert.equal(llm.counts.openai, 0);
    assert.equal(await holdRow(sql, reply.requestId), undefined);
    assert.deepEqual(await money(sql, u.id), { balance, held: 0 });

    // The same call with one choice fits, and is billed what it used.
    llm.setScript({});
    const single = await chat(u.token, one);
    assert.equal(single.status, 200, single.text);
    assert.equal((llm.calls[0].body as { n: number }).n, 1);
    const usage = { input: 11, output: 7 };
    assert.deepEqual(await settled(sql, u.id, 1), { balance: balance - debitOf(unit, usage), held: 0 });
    await assertBilled(sql, u.id, [single.requestId], unit, usage);
  });
});

Deno.test("streams: a stream whose hidden usage event arrives on its own still ends, and is billed", async () => {
  // The client did not ask for usage, so the gateway asks for it and drops the usage-only event. When that event
  // arrives in a read of its own, meteredStream's pull() returns without enqueueing anything, and Deno's server
  // never pulls again: the client waits until it gives up, and the call is never settled (no usage row, no
  // debit; the hold lingers until release_expired_holds).
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
    const b = await billing(sql);
    const res = await send(u.token, chatBody({ max_tokens: 100, stream: true }), PROXY);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const deadline = Date.now() + 6_000; // the whole stream takes ~1.6 s; the gateway's total timeout is 10 s
    while (true) {
      const next = await Promise.race([reader.read(), sleep(deadline - Date.now()).then(() => null)]);
      if (next === null) {
        await reader.cancel().catch(() => {});
        // Leaving settles the call as cancelled; let that finish before the user is deleted.
        await eventually("held after cancel", () => money(sql, u.id), (m) => m.held === 0, 5_000).catch(
          () => {},
        );
        const upstream = llm.calls[0]?.completed ? "after the provider had finished" : "mid-stream";
        assert.fail(`the stream stalled ${upstream}; last received: ${JSON.stringify(text.slice(-120))}`);
      }
      if (next.done) break;
      text += decoder.decode(next.value, { stream: true });
    }
    assert.match(text, /data: \[DONE\]\n\n$/);
    assert.doesNotMatch(text, /"usage"/, "the usage the client did not ask for stays hidden");
    const usage = { input: 11, output: 7 };
    const after = await settled(sql, u.id, 1);
    assert.deepEqual(after, { balance: 100_000 - debitOf(b, usage), held: 0 });
    await assertBilled(sql, u.id, [res.headers.get("x-request-id")!], b, usage);
  }, { chunks: 2, chunkDelayMs: 200 });
});
