// The LLM gateway's limits and money safety, over HTTP with the fake providers (tests/_lib/fake-llm.ts) on
// 127.0.0.1:12112, started in each test:
//   * requests per minute in Upstash (the test functions server) and in Postgres (the handler served in this
//     process with upstashLimits: false): the call over the limit is a 429 with Retry-After and X-RateLimit-*,
//     reaches no provider and leaves no hold;
//   * tokens per minute count holds: concurrent calls beyond the window are refused before any has finished;
//   * balance: a hold larger than the unreserved balance is a 402 without an upstream call; 50 concurrent
//     streams of one user never spend more than the balance, and the ledger adds up afterwards;
//   * a price change between two calls bills each at the price in force when it was admitted;
//   * a settlement blocked by a lock lands in private.usage_outbox and is applied once by process_usage_outbox;
//   * a hold left by a call that died is given back by release_expired_holds.
// SDK round trips, auth and exact metering per provider are in gateway_test.ts.
import assert from "node:assert/strict";
import { Redis } from "npm:@upstash/redis@1.39.0";
import { createGatewayHandler, type GatewayOptions } from "../_shared/gateway/proxy.ts";
import { openai } from "../_shared/gateway/providers/openai.ts";
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
  /** A user on `plan` (default pro) with `balance` tokens credited as an adjustment. */
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

/** The hold the gateway places: a third of the body's bytes as input, plus the capped max output. */
const holdFor = (body: string, maxOutput: number) =>
  Math.ceil(new TextEncoder().encode(body).length / 3) + maxOutput;

function assertError(reply: Reply, status: number, code: string) {
  assert.equal(reply.status, status, reply.text);
  assert.match(reply.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(Object.keys(reply.json), ["error"], reply.text);
  assert.equal(reply.json.error.code, code);
  assert.equal(typeof reply.json.error.message, "string");
  assert.ok(reply.json.error.message.length > 0);
}

/** A 429 with Retry-After >= 1 and X-RateLimit-* for `limit`, remaining 0, reset within the minute. */
function assertRateLimited(reply: Reply, limit: number) {
  assertError(reply, 429, "rate_limited");
  const retryAfter = Number(reply.headers.get("retry-after"));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
  assert.equal(reply.headers.get("x-ratelimit-limit"), String(limit));
  assert.equal(reply.headers.get("x-ratelimit-remaining"), "0");
  const reset = Number(reply.headers.get("x-ratelimit-reset"));
  assert.ok(Number.isInteger(reset) && reset >= 0 && reset <= 60, `x-ratelimit-reset ${reset}`);
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
  (await sql`select amount from private.token_holds where request_id = ${requestId}`)[0];

// ------------------------------------------------------------------------------ requests per minute

Deno.test("Upstash limits: the 4th call of a 3-a-minute plan is a 429 that reaches no provider and holds nothing", async () => {
  await scenario(async ({ sql, llm, plan, user }) => {
    const tiny = await plan({ rpm: 3 });
    const u = await user({ plan: tiny.id, balance: 100_000 });
    await clearOfMinuteEdge(15);

    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) replies.push(await chat(u.token, chatBody({ max_tokens: 100 })));
    for (const [i, r] of replies.slice(0, 3).entries()) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get("x-ratelimit-limit"), "3");
      assert.equal(r.headers.get("x-ratelimit-remaining"), String(2 - i));
    }
    assertRateLimited(replies[3], 3);

    // Counted in Upstash (the test functions server has it configured), not in Postgres.
    const keys = await sql`select key from private.rate_limit_buckets where key = ${"gw:rpm:" + u.id}`;
    assert.equal(keys.length, 0, "the Upstash backend must not count in Postgres");

    // The refused call reached no provider and left no hold, no usage and no debit.
    assert.equal(llm.counts.openai, 3);
    assert.equal(await holdRow(sql, replies[3].requestId), undefined);
    const after = await settled(sql, u.id, 3);
    assert.equal(after.held, 0);
    const rows = await usageRows(sql, u.id);
    assert.deepEqual(
      rows.map((r) => r.request_id).sort(),
      replies.slice(0, 3).map((r) => r.requestId).sort(),
    );
    assert.equal(after.balance, 100_000 - 3 * (11 + 7)); // the fake's default usage
  });
});

Deno.test("Upstash limits: tokens per minute count holds — concurrent calls beyond the window are 429 before any finished", async () => {
  // Streams that take ~2.5 s: all five calls are answered (200 or 429) while the admitted ones still run.
  await scenario(async ({ sql, llm, plan, user }) => {
    const small = await plan({ rpm: 100, tpm: 3_000, maxOutput: 1_000 });
    const u = await user({ plan: small.id, balance: 1_000_000 });
    const body = chatBody({ max_tokens: 1_000, ...SLOW_STREAM });
    const hold = holdFor(body, 1_000);
    assert.ok(2 * hold <= 3_000 && 3 * hold > 3_000, `two holds of ${hold} fit in 3000 tokens, three do not`);
    await clearOfMinuteEdge(15);

    const responses = await Promise.all(Array.from({ length: 5 }, () => send(u.token, body)));
    const statuses = responses.map((r) => r.status).sort();
    // Every answer is in; the admitted streams are still running upstream.
    assert.equal(llm.calls.filter((c) => c.completed).length, 0, "no upstream call has finished yet");
    assert.deepEqual(statuses, [200, 200, 429, 429, 429]);
    assert.equal(llm.counts.openai, 2, "the refused calls reach no provider");
    assert.equal((await money(sql, u.id)).held, 2 * hold, "the two running calls hold their tokens");

    const replies = await Promise.all(responses.map(read));
    for (const r of replies.filter((r) => r.status === 429)) {
      assertRateLimited(r, 3_000);
      assert.equal(await holdRow(sql, r.requestId), undefined, "a refused call keeps no hold");
    }
    for (const r of replies.filter((r) => r.status === 200)) assert.match(r.text, /data: \[DONE\]/);
    const after = await settled(sql, u.id, 2);
    assert.equal(after.held, 0);
    assert.equal((await usageRows(sql, u.id)).length, 2);
  }, { chunks: 5, chunkDelayMs: 500 });
});

/**
 * Runs `fn` with `count` openai-proxy handlers served in this process (each its own instance, with its own
 * lease book), pointed at the stack's database and the fake provider, counting limits in Upstash or not; the
 * env is restored afterwards. Their base URLs are passed to `fn`.
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

Deno.test({
  name:
    "Postgres limits: served without Upstash, the 4th call is a 429 counted in private.rate_limit_buckets",
  // The handler's database pool (_shared/db.ts) is process-wide and stays open.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withGatewaysInProcess(1, { upstashLimits: false }, async ([base]) => {
      await scenario(async ({ sql, llm, plan, user }) => {
        const tiny = await plan({ rpm: 3 });
        const u = await user({ plan: tiny.id, balance: 100_000 });
        await clearOfMinuteEdge(15);

        const replies: Reply[] = [];
        for (let i = 0; i < 4; i++) replies.push(await chat(u.token, chatBody({ max_tokens: 100 }), base));
        assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 429], replies[3].text);
        assertRateLimited(replies[3], 3);

        // Counted by Postgres: four hits on the user's requests-per-minute bucket, three on tokens (the
        // refused call stopped at the first limit); nothing in Upstash.
        const buckets = await sql<{ key: string; hits: number }[]>`
          select key, hits from private.rate_limit_buckets where key like ${"gw:%:" + u.id} order by key`;
        assert.deepEqual(buckets.map((b) => [b.key, b.hits]), [
          [`gw:rpm:${u.id}`, 4],
          [`gw:tpm:${u.id}`, 3 * holdFor(chatBody({ max_tokens: 100 }), 100)],
        ]);
        const upstash = new Redis({ url: stack.upstashUrl, token: stack.upstashToken, retry: false });
        assert.deepEqual(await upstash.keys(`aie:rl:gw:*${u.id}*`), []);

        assert.equal(llm.counts.openai, 3);
        assert.equal(await holdRow(sql, replies[3].requestId), undefined);
        const after = await settled(sql, u.id, 3);
        assert.equal(after.held, 0);
        assert.equal((await usageRows(sql, u.id)).length, 3);
      });
    });
  },
});

// ------------------------------------------------------------------------------------------ balance

Deno.test("balance: a hold above the unreserved balance is a 402 with no upstream call; a smaller max output fits", async () => {
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 1_000 }); // pro: max output 8192
    const body = chatBody();
    assert.ok(holdFor(body, 8192) > 1_000);

    const refused = await chat(u.token, body);
    assertError(refused, 402, "payment_required");
    assert.equal(llm.counts.openai, 0, "no upstream call");
    assert.equal(await holdRow(sql, refused.requestId), undefined);
    assert.deepEqual(await money(sql, u.id), { balance: 1_000, held: 0 });
    assert.equal((await usageRows(sql, u.id)).length, 0);

    // The same call asking for at most 500 output tokens holds less than the balance: admitted.
    const small = chatBody({ max_tokens: 500 });
    assert.ok(holdFor(small, 500) <= 1_000);
    const ok = await chat(u.token, small);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(llm.counts.openai, 1);
    assert.equal(llm.calls[0].body && (llm.calls[0].body as { max_tokens: number }).max_tokens, 500);
    assert.deepEqual(await settled(sql, u.id, 1), { balance: 1_000 - 18, held: 0 });
  });
});

Deno.test("balance: 50 concurrent streams of one user never spend more than the balance covers", async () => {
  const N = 7;
  await scenario(async ({ sql, llm, plan, user }) => {
    const roomy = await plan({ rpm: 1_000, tpm: 100_000_000, maxOutput: 1_000 });
    const body = chatBody({ max_tokens: 1_000, ...SLOW_STREAM });
    const hold = holdFor(body, 1_000);
    // Each call reports usage equal to its hold, so a settled call costs what it held: exactly N fit.
    llm.setScript({ inputTokens: hold - 1_000, outputTokens: 1_000, chunks: 5, chunkDelayMs: 20 });
    const start = N * hold + Math.floor(hold / 2);
    const u = await user({ plan: roomy.id, balance: start });

    const replies = await Promise.all(Array.from({ length: 50 }, () => send(u.token, body).then(read)));
    const ok = replies.filter((r) => r.status === 200);
    assert.deepEqual(
      [...new Set(replies.map((r) => r.status))].filter((s) => s !== 200 && s !== 402),
      [],
      "every answer is 200 or 402",
    );
    for (const r of replies.filter((r) => r.status === 402)) assertError(r, 402, "payment_required");
    for (const r of ok) assert.match(r.text, /data: \[DONE\]/);
    assert.ok(ok.length <= N, `${ok.length} calls admitted, the balance covers ${N}`);
    assert.equal(ok.length, N, "every call the balance covers is admitted");
    assert.equal(llm.counts.openai, ok.length, "refused calls reach no provider");

    const after = await settled(sql, u.id, ok.length);
    assert.ok(after.balance >= 0);
    assert.equal(after.held, 0);
    assert.equal(after.balance, start - ok.length * hold);
    const [{ sum }] = await sql<{ sum: string }[]>`
      select coalesce(sum(delta), 0) as sum from public.token_transactions where user_id = ${u.id}`;
    assert.equal(Number(sum), after.balance, "the ledger adds up to the balance");
    const rows = await usageRows(sql, u.id);
    assert.deepEqual(rows.map((r) => r.request_id).sort(), ok.map((r) => r.requestId).sort());
    for (const r of rows) assert.equal(Number(r.debited_tokens), hold);
  });
});

Deno.test({
  name: "leases: two function instances serving one user at once never spend more than the balance covers",
  // The handlers' database pool (_shared/db.ts) is process-wide and stays open; leases go back on a timer.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Two instances of openai-proxy, each with its own lease book (as two edge function instances would be).
    await withGatewaysInProcess(2, { upstashLimits: true, leases: { idleMs: 200 } }, async (bases) => {
      await scenario(async ({ sql, llm, plan, user }) => {
        const roomy = await plan({ rpm: 100_000, tpm: 1_000_000_000, maxOutput: 100 });
        const body = chatBody({ max_tokens: 100 });
        const hold = holdFor(body, 100);
        const N = 40;
        // Each call uses its whole hold, so the balance covers exactly N calls, whichever instance serves them.
        llm.setScript({ inputTokens: hold - 100, outputTokens: 100 });
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
        const [{ sum }] = await sql<{ sum: string }[]>`
          select coalesce(sum(delta), 0) as sum from public.token_transactions where user_id = ${u.id}`;
        assert.equal(Number(sum), after.balance, "the ledger adds up to the balance");
        assert.equal((await sql`select 1 from private.token_holds where user_id = ${u.id}`).length, 0);
      });
    });
  },
});

// ------------------------------------------------------------------------------------------ pricing

Deno.test("pricing: a price change between calls bills each call at the price in force when it was admitted", async () => {
  // A model of its own, so no other test's prices move: price A from an hour ago, then B from now.
  const model = `test-price-${hex()}`;
  const script = { inputTokens: 1_000, cachedTokens: 200, outputTokens: 500 };
  const cost = (p: { input: number; cached: number; output: number }) =>
    Math.ceil((800 * p.input + 200 * p.cached + 500 * p.output) / 1e6);
  const A = { input: 1_000_000, cached: 100_000, output: 2_000_000 };
  const B = { input: 3_000_000, cached: 300_000, output: 5_000_000 };
  const admin = testSql(2);
  try {
    await scenario(async ({ sql, llm, user }) => {
      const [{ id: priceA }] = await sql<{ id: string }[]>`
        insert into public.model_pricing
          (provider, model, input_micro_usd_per_mtok, cached_input_micro_usd_per_mtok, output_micro_usd_per_mtok,
           effective_from)
        values ('openai', ${model}, ${A.input}, ${A.cached}, ${A.output}, now() - interval '1 hour')
        returning id`;
      const u = await user({ plan: "pro", balance: 1_000_000 });
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

      await settled(sql, u.id, 3);
      const rows = await usageRows(sql, u.id);
      const byId = new Map(rows.map((r) => [r.request_id, r]));
      const billed = [first, second, third].map((r) => {
        const row = byId.get(r.requestId)!;
        return [row.pricing_id, Number(row.cost_micro_usd)];
      });
      assert.deepEqual(billed, [[priceA, cost(A)], [priceA, cost(A)], [priceB, cost(B)]]);
      assert.notEqual(cost(A), cost(B));
    }, script);
  } finally {
    // The usage rows that reference these prices went with the user.
    await admin`delete from public.model_pricing where model = ${model}`;
    await admin.end();
  }
});

// ------------------------------------------------------------------------------------------- outbox

Deno.test("outbox: a settlement blocked by a lock is parked in private.usage_outbox and applied exactly once", async () => {
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
    const body = chatBody({ max_tokens: 100 });
    // gateway_settle waits 3 s for a lock, twice; the aie_usage_outbox job (on the minute) must not interfere.
    await clearOfMinuteEdge(25);

    let requestId = "";
    await sql.begin(async (tx) => {
      await tx`lock table public.token_usage in access exclusive mode`;
      const reply = await chat(u.token, body);
      assert.equal(reply.status, 200, reply.text);
      requestId = reply.requestId;
      const answered = Date.now();
      const parked = await eventually(
        "outbox record",
        () =>
          sql`select payload, applied_at, last_error from private.usage_outbox where request_id = ${requestId}`,
        (rows) => rows.length === 1,
      );
      assert.ok(Date.now() - answered > 3_000, "parked only after the 3 s lock timeout");
      assert.equal(parked[0].applied_at, null);
      assert.match(parked[0].last_error, /lock/i);
      assert.equal(parked[0].payload.user_id, u.id);
      assert.equal(parked[0].payload.input_tokens, 11);
      assert.equal(parked[0].payload.output_tokens, 7);
      // Seen from the locking transaction: no usage row yet. The lease the call was admitted under is given
      // back, all but what the parked call used, which stays held until the outbox settles it.
      assert.equal((await tx`select 1 from public.token_usage where request_id = ${requestId}`).length, 0);
      assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: 11 + 7 });
    });
    assert.equal(llm.counts.openai, 1);

    await sql`select private.process_usage_outbox()`;
    const rows = await usageRows(sql, u.id);
    assert.deepEqual(rows.map((r) => [r.request_id, Number(r.input_tokens), Number(r.output_tokens)]), [
      [requestId, 11, 7],
    ]);
    const [applied] = await sql`select applied_at from private.usage_outbox where request_id = ${requestId}`;
    assert.ok(applied.applied_at instanceof Date);
    assert.deepEqual(await money(sql, u.id), { balance: 100_000 - 18, held: 0 });

    // Again: nothing changes.
    await sql`select private.process_usage_outbox()`;
    assert.equal((await usageRows(sql, u.id)).length, 1);
    const [again] = await sql`select applied_at from private.usage_outbox where request_id = ${requestId}`;
    assert.equal(again.applied_at.getTime(), applied.applied_at.getTime());
    assert.deepEqual(await money(sql, u.id), { balance: 100_000 - 18, held: 0 });
    const ledger = await sql`select delta from public.token_transactions where reference = ${
      "usage:" + requestId
    }`;
    assert.deepEqual(ledger.map((l) => Number(l.delta)), [-18]);
  });
});

// -------------------------------------------------------------------------------------------- holds

Deno.test("holds: a hold whose call died is released by private.release_expired_holds; live holds stay", async () => {
  await scenario(async ({ sql, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
    await clearOfMinuteEdge(10); // the aie_release_expired_holds job runs on the minute
    const admit = async (requestId: string) =>
      (await sql<{ outcome: string; hold_tokens: string }[]>`
        select outcome, hold_tokens from private.gateway_admit(
          p_user_id => ${u.id}, p_provider => 'openai', p_model => ${MODEL}, p_request_id => ${requestId},
          p_input_estimate => 100, p_requested_output => 500, p_check_limits => false)`)[0];
    const dead = `test-dead-${crypto.randomUUID()}`;
    const live = `test-live-${crypto.randomUUID()}`;
    assert.deepEqual(await admit(dead), { outcome: "ok", hold_tokens: "600" });
    assert.deepEqual(await admit(live), { outcome: "ok", hold_tokens: "600" });
    assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: 1_200 });

    await sql`update private.token_holds set expires_at = now() - interval '1 minute' where request_id = ${dead}`;
    const [{ released }] = await sql`select private.release_expired_holds() as released`;
    assert.ok(released >= 1);
    assert.equal(await holdRow(sql, dead), undefined);
    assert.ok(await holdRow(sql, live), "a hold that has not expired stays");
    assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: 600 });

    await sql`select private.gateway_release(${live})`;
    assert.deepEqual(await money(sql, u.id), { balance: 100_000, held: 0 });
  });
});

// ------------------------------------------------------------------------------- found while testing

Deno.test("request ids: a client repeating an x-request-id still pays for the second call and leaves no hold", async () => {
  // The gateway keys holds, usage rows and ledger debits by the request id. When withHttp took it from the
  // client's x-request-id header, a repeated id made the second upstream call free (its settlement found the first
  // call's usage row and returned it) and left its hold behind. The gateway now always makes a new id.
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
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
      { balance: 100_000 - upstreamCalls * 18, held: 0 },
      `${upstreamCalls} upstream calls: each debited once, no hold left`,
    );
  });
});

Deno.test("holds: a call asking for n choices holds n times the max output", async () => {
  // OpenAI's max_tokens caps each choice; usage counts all of them. A hold of one choice lets a user with a
  // balance for one spend n times as much (the settlement writes the rest off as a shortfall).
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 2_000 });
    const body = chatBody({ max_tokens: 1_000, n: 4 });
    llm.setScript({ outputTokens: 4_000 });
    const reply = await chat(u.token, body);
    if (reply.status === 200) {
      await settled(sql, u.id, 1);
      const [row] = await usageRows(sql, u.id);
      assert.fail(
        `admitted with a balance of 2000 for up to 4 × 1000 output tokens; debited ${row?.debited_tokens}`,
      );
    }
    assertError(reply, 402, "payment_required");
    assert.equal(llm.counts.openai, 0);
  });
});

Deno.test("streams: a stream whose hidden usage event arrives on its own still ends, and is billed", async () => {
  // The client did not ask for usage, so the gateway asks for it and drops the usage-only event. When that event
  // arrives in a read of its own, meteredStream's pull() returns without enqueueing anything, and Deno's server
  // never pulls again: the client waits until it gives up, and the call is never settled (no usage row, no
  // debit; the hold lingers until release_expired_holds).
  await scenario(async ({ sql, llm, user }) => {
    const u = await user({ plan: "pro", balance: 100_000 });
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
    const after = await settled(sql, u.id, 1);
    assert.deepEqual(after, { balance: 100_000 - 18, held: 0 });
  }, { chunks: 2, chunkDelayMs: 200 });
});
