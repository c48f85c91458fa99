// What every gateway call is billed, on every path, through the local platform with the fake providers: usage
// above the hold billed in full (the balance goes below zero only that way, and nothing more is admitted until a
// credit pays the debt), no usage reported, usage values that are not whole numbers, streams cut off after each
// kind of event, inputs the gateway cannot measure held at the plan's max input, Perplexity's search fee, a
// deleted user served at most the plan cache's second, the rate-limit headers named per limit, and the lease
// book's hold computed exactly as SQL's private._hold_tokens.
//
// Most tests use a model priced at exactly the platform rate (tests/_lib/charges.ts: one platform token per raw
// token) and users on a plan of their own without a monthly allowance, so the arithmetic is in tokens.
import assert from "node:assert/strict";
import { holdTokens, maxOutputOf } from "../_shared/gateway/admission/hold.ts";
import { ensureUnitModels, UNIT_MODEL } from "./_lib/charges.ts";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { splitReply } from "./_lib/fake-llm.ts";
import {
  F,
  gatewayKit,
  gatewayTest,
  type Gw,
  type GwUser,
  jsonHeaders,
  post,
  PROVIDERS,
  sleep,
} from "./_lib/gateway.ts";
import { hs256, userClaims } from "./_lib/tokens.ts";

const sql = testSql();
const users: TestUser[] = [];
const { usageRow, balanceOf, heldSettles, ledgerFor } = gatewayKit(sql, users);
const plans: string[] = [];
const bytes = (text: string) => new TextEncoder().encode(text).byteLength;
const tokensFor = (n: number) => Math.ceil(n / 3);

/** A plan of its own (deleted afterwards): no monthly allowance, every model, generous limits. */
async function plan(maxInput = 5_000): Promise<string> {
  const id = `test_billing_${crypto.randomUUID().replace(/-/g, "").slice(0, 10)}`;
  plans.push(id);
  await sql`insert into public.subscription_plans
              (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
               max_input_tokens, is_active)
            values (${id}, ${"Test " + id}, 0, 100000, 1000000000, 4096, ${maxInput}, false)`;
  return id;
}

async function user(planId: string, balance: number): Promise<GwUser> {
  const u = await createTestUser(sql);
  users.push(u);
  await sql`update public.users set plan = ${planId} where id = ${u.id}`;
  if (balance > 0) {
    await sql`select private.update_user_token_balance(${u.id}, ${balance}, 'adjustment', ${
      "test:" + crypto.randomUUID()
    })`;
  }
  return { ...u, token: await hs256(userClaims(u.id, u.email)) };
}

/** A request to provider `p` for `model`, with a max output of `maxOutput` and extra body fields. */
function request(p: Gw, model: string, opts: { stream?: boolean; maxOutput?: number; text?: string } = {}) {
  const text = opts.text ?? "bill me";
  const maxOutput = opts.maxOutput ?? 10;
  switch (p) {
    case "openai":
      return {
        url: `${F}/openai-proxy/v1/chat/completions`,
        body: {
          model,
          messages: [{ role: "user", content: text }],
          max_tokens: maxOutput,
          stream: opts.stream,
        },
      };
    case "perplexity":
      return {
        url: `${F}/perplexity-proxy/chat/completions`,
        body: {
          model,
          messages: [{ role: "user", content: text }],
          max_tokens: maxOutput,
          stream: opts.stream,
        },
      };
    case "anthropic":
      return {
        url: `${F}/anthropic-proxy/v1/messages`,
        body: {
          model,
          max_tokens: maxOutput,
          messages: [{ role: "user", content: text }],
          stream: opts.stream,
        },
      };
    case "google":
      return {
        url: `${F}/google-proxy/v1beta/models/${model}:${
          opts.stream ? "streamGenerateContent?alt=sse" : "generateContent"
        }`,
        body: {
          contents: [{ role: "user", parts: [{ text }] }],
          generationConfig: { maxOutputTokens: maxOutput },
        },
      };
  }
}

/** One call; never waits more than 30 s (the gateway's own upstream timeouts are shorter). */
async function call(u: GwUser, body: Record<string, unknown>, url: string) {
  const headers: Record<string, string> = { ...jsonHeaders(u.token), "anthropic-version": "2023-06-01" };
  return await post(url, { headers, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) });
}

/** The ledger sum and the balance agree (the invariant the ledger exists for). */
async function assertLedgerIsBalance(userId: string, what: string) {
  const [row] = await sql`select coalesce(sum(delta), 0)::float8 as sum,
                                 (select balance::float8 from public.token_balances where user_id = ${userId}) as balance
                            from public.token_transactions where user_id = ${userId}`;
  assert.equal(row.sum, row.balance, `${what}: the ledger equals the balance`);
}

// -------------------------------------------------------------------------------- usage above the hold

gatewayTest(
  "usage above the hold is billed in full: the balance goes below zero, nothing more is admitted, a credit pays the debt",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    for (const p of PROVIDERS) {
      // The hold of this call is its input estimate (a few dozen tokens) + 10 output tokens; the provider reports
      // 1000 + 500, as it does when the input holds what the estimate cannot see.
      fake.setScript({ inputTokens: 1000, outputTokens: 500 });
      const u = await user(planId, 100);
      const { url, body } = request(p, UNIT_MODEL);
      const res = await call(u, body, url);
      assert.equal(res.status, 200, `${p}: ${res.text}`);
      const row = await usageRow(res.headers.get("x-request-id")!);
      assert.deepEqual([row.input_tokens, row.output_tokens, row.debited_tokens], [1000, 500, 1500], p);
      assert.equal(await heldSettles(u.id), 0, `${p}: nothing stays held`);
      assert.deepEqual(
        await balanceOf(u.id),
        { balance: 100 - 1500, held: 0 },
        `${p}: the overage is a debt`,
      );
      assert.deepEqual(await ledgerFor(res.headers.get("x-request-id")!), [{
        delta: -1500,
        reason: "usage",
      }]);
      await assertLedgerIsBalance(u.id, p);

      const calls = fake.calls.length;
      const refused = await call(u, body, url);
      assert.equal(refused.status, 402, `${p}: no call while the balance is below zero: ${refused.text}`);
      assert.equal(fake.calls.length, calls, `${p}: the refused call never reaches the provider`);

      // A credit pays the debt first; what is left is spendable again.
      await sql`select private.update_user_token_balance(${u.id}, 2000, 'adjustment', ${"test:pay:" + u.id})`;
      assert.equal((await balanceOf(u.id)).balance, 100 - 1500 + 2000);
      fake.setScript({ inputTokens: 5, outputTokens: 5 });
      const again = await call(u, body, url);
      assert.equal(again.status, 200, `${p}: admitted once the debt is paid: ${again.text}`);
      await usageRow(again.headers.get("x-request-id")!);
      await assertLedgerIsBalance(u.id, `${p} after the credit`);
    }
  },
);

// ------------------------------------------------------------------------------------ no usage reported

gatewayTest(
  "a call whose provider reports no usage is billed what was sent and delivered, flagged estimated",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    fake.setScript({ usage: "omit", chunks: 4 });
    for (const p of PROVIDERS) {
      for (const stream of [false, true]) {
        const what = `${p} ${stream ? "stream" : "plain"}`;
        const u = await user(planId, 1_000_000);
        const { url, body } = request(p, UNIT_MODEL, { stream, text: "Grüße, 世界 — say something" });
        const res = await call(u, body, url);
        assert.equal(res.status, 200, `${what}: ${res.text}`);
        const reply = fake.calls.at(-1)!.reply;
        const row = await usageRow(res.headers.get("x-request-id")!);
        assert.equal(row.tokens_estimated, true, what);
        assert.equal(row.input_tokens, tokensFor(bytes(JSON.stringify(body))), `${what}: the input estimate`);
        assert.equal(row.output_tokens, tokensFor(bytes(reply)), `${what}: the reply's bytes`);
        assert.equal(row.debited_tokens, row.input_tokens + row.output_tokens, what);
        await assertLedgerIsBalance(u.id, what);
      }
    }
  },
);

gatewayTest(
  "a 200 whose body is not JSON is passed on and billed by its bytes, flagged estimated",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    const rawBody = "<html><body>upstream proxy says: all good — 好</body></html>".repeat(20);
    fake.setScript({ rawBody });
    for (const p of PROVIDERS) {
      const u = await user(planId, 1_000_000);
      const { url, body } = request(p, UNIT_MODEL, { stream: false, text: "say something" });
      const res = await call(u, body, url);
      assert.equal(res.status, 200, `${p}: ${res.text}`);
      assert.equal(res.text, rawBody, `${p}: the body is passed on as it came`);
      const row = await usageRow(res.headers.get("x-request-id")!);
      assert.equal(row.tokens_estimated, true, p);
      assert.equal(row.input_tokens, tokensFor(bytes(JSON.stringify(body))), `${p}: the input estimate`);
      assert.equal(row.output_tokens, tokensFor(bytes(rawBody)), `${p}: the body's bytes`);
      assert.equal(row.debited_tokens, row.input_tokens + row.output_tokens, p);
      await assertLedgerIsBalance(u.id, p);
    }
  },
);

// ------------------------------------------------------------------------- usage values that are not whole

gatewayTest(
  "usage values that are not whole numbers are mended at the edge (rounded up, read, clamped) and never poison the outbox",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    // Per provider: the odd report, and the counts it must be billed (never below the input estimate and the
    // reply's bytes, since a mended report is not trusted below what was seen).
    const odd: Record<Gw, { usage: Record<string, unknown>; input: number; output: number }> = {
      openai: { usage: { prompt_tokens: 12.5, completion_tokens: "700" }, input: 13, output: 700 },
      perplexity: { usage: { prompt_tokens: "90", completion_tokens: 3.01 }, input: 90, output: 4 },
      anthropic: { usage: { input_tokens: -1, output_tokens: 1e20 }, input: -1, output: 100_000_000 },
      google: { usage: { promptTokenCount: 40, candidatesTokenCount: "lots" }, input: 40, output: -1 },
    };
    for (const p of PROVIDERS) {
      for (const stream of [false, true]) {
        const what = `${p} ${stream ? "stream" : "plain"}`;
        fake.setScript({ usage: odd[p].usage, chunks: 3 });
        const u = await user(planId, 1_000_000);
        const { url, body } = request(p, UNIT_MODEL, { stream });
        const res = await call(u, body, url);
        assert.equal(res.status, 200, `${what}: ${res.text}`);
        const id = res.headers.get("x-request-id")!;
        const row = await usageRow(id);
        const inputFloor = tokensFor(bytes(JSON.stringify(body)));
        const outputFloor = tokensFor(bytes(fake.calls.at(-1)!.reply));
        assert.equal(row.tokens_estimated, true, `${what}: flagged`);
        assert.equal(row.input_tokens, Math.max(odd[p].input, inputFloor), `${what}: input`);
        assert.equal(row.output_tokens, Math.max(odd[p].output, outputFloor), `${what}: output`);
        const [outbox] =
          await sql`select count(*)::int as n from private.usage_outbox where request_id = ${id}`;
        assert.equal(outbox.n, 0, `${what}: settled at once, nothing parked`);
        await assertLedgerIsBalance(u.id, what);
      }
    }
  },
);

// -------------------------------------------------------------------------- cut off after each kind of event

gatewayTest(
  "a stream cut off after each kind of event is billed at least what was delivered, and never less than reported",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    const chunks = 4;
    // Cut after the preamble (role chunk, message_start), after some content, after all content (before the
    // final usage): by the client leaving (hang, then abort) and by the provider failing mid-stream.
    for (const p of PROVIDERS) {
      for (const after of [0, 2, chunks]) {
        for (const how of ["client leaves", "provider fails"] as const) {
          // (Gemini's last content chunk is its final one, usage included: failing after it cuts nothing off.)
          if (p === "google" && how === "provider fails" && after === chunks) continue;
          const what = `${p}, ${how} after ${after} content chunks`;
          fake.setScript({
            inputTokens: 30,
            outputTokens: 200,
            chunks,
            ...(how === "client leaves" ? { hangAfterChunks: after } : { errorAfterChunks: after }),
          });
          const u = await user(planId, 1_000_000);
          const { url, body } = request(p, UNIT_MODEL, {
            stream: true,
            maxOutput: 300,
            text: "a long answer, with ünïcödé",
          });
          const controller = new AbortController();
          const headers: Record<string, string> = {
            ...jsonHeaders(u.token),
            "anthropic-version": "2023-06-01",
          };
          const res = await fetch(url, {
            method: "POST",
            headers,
            body: JSON.stringify(body),
            signal: controller.signal,
          });
          assert.equal(res.status, 200, what);
          const id = res.headers.get("x-request-id")!;
          const reader = res.body!.getReader();
          if (how === "client leaves") {
            // Read what the provider sent before it hung, then leave.
            const until = Date.now() + 1_000;
            const seen = fake.calls.at(-1)!;
            while (Date.now() < until && seen.chunksSent < after) await sleep(20);
            await sleep(150);
            controller.abort();
            await reader.cancel().catch(() => {});
          } else {
            while (!(await reader.read().catch(() => ({ done: true }))).done) { /* read to the end */ }
          }
          const row = await usageRow(id);
          const sent = splitReply(fake.calls.at(-1)!.reply, chunks).slice(0, after).join("");
          assert.notEqual(row.status, "ok", `${what}: recorded as cut off (${row.status})`);
          assert.equal(row.tokens_estimated, true, `${what}: flagged`);
          // Never less than the input reported so far (Anthropic's message_start, Gemini's and Perplexity's
          // cumulative chunks: 30); OpenAI reports only at the end, so there the input estimate.
          const inputFloor = p === "openai" ? tokensFor(bytes(JSON.stringify(body))) : 30;
          assert.ok(row.input_tokens >= inputFloor, `${what}: input ${row.input_tokens} >= ${inputFloor}`);
          assert.ok(
            row.output_tokens >= tokensFor(bytes(sent)),
            `${what}: output ${row.output_tokens} >= what was sent`,
          );
          if (p === "anthropic") {
            assert.ok(row.output_tokens >= 1, `${what}: never below the reported placeholder`);
          }
          assert.equal(await heldSettles(u.id), 0, `${what}: nothing stays held`);
          await assertLedgerIsBalance(u.id, what);
        }
      }
    }
  },
);

// ------------------------------------------------------------------------- inputs that cannot be measured

gatewayTest(
  "an image or file by URL, or a file id, is held as the plan's max input: refused on a balance that covers the text alone",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan(5_000);
    fake.setScript({ inputTokens: 20, outputTokens: 5 });
    const remote: Record<Gw, Record<string, unknown>> = {
      openai: {
        model: UNIT_MODEL,
        max_tokens: 10,
        messages: [{
          role: "user",
          content: [{ type: "text", text: "what is this?" }, {
            type: "image_url",
            image_url: { url: "https://example.com/huge.png" },
          }],
        }],
      },
      perplexity: {
        model: UNIT_MODEL,
        max_tokens: 10,
        messages: [{
          role: "user",
          content: [{ type: "text", text: "what is this?" }, {
            type: "image_url",
            image_url: { url: "https://example.com/huge.png" },
          }],
        }],
      },
      anthropic: {
        model: UNIT_MODEL,
        max_tokens: 10,
        messages: [{
          role: "user",
          content: [{ type: "text", text: "what is this?" }, {
            type: "document",
            source: { type: "url", url: "https://example.com/book.pdf" },
          }],
        }],
      },
      google: {
        contents: [{
          role: "user",
          parts: [{ text: "what is this?" }, {
            fileData: {
              fileUri: "https://generativelanguage.googleapis.com/v1beta/files/abc",
              mimeType: "video/mp4",
            },
          }],
        }],
        generationConfig: { maxOutputTokens: 10 },
      },
    };
    for (const p of PROVIDERS) {
      const u = await user(planId, 3_000); // covers a short text call, not the plan's max input of 5000
      const { url, body } = request(p, UNIT_MODEL);
      const calls = fake.calls.length;
      const held = await call(u, remote[p], url);
      assert.equal(held.status, 402, `${p}: held as 5000 input tokens: ${held.text}`);
      assert.equal(fake.calls.length, calls, `${p}: never forwarded`);
      const plain = await call(u, body, url);
      assert.equal(plain.status, 200, `${p}: the same call without the remote input fits: ${plain.text}`);
      await usageRow(plain.headers.get("x-request-id")!);
      // Inline data (a data: URI) is in the body and measured with it.
      const inline = JSON.parse(
        JSON.stringify(remote[p]).replace(/https:\/\/example\.com\/huge\.png/g, "data:image/png;base64,AAAA"),
      );
      if (p === "openai" || p === "perplexity") {
        const res = await call(u, inline, url);
        assert.equal(
          res.status,
          200,
          `${p}: a data: URI is measured, not held as the max input: ${res.text}`,
        );
        await usageRow(res.headers.get("x-request-id")!);
      }
    }
  },
);

// ------------------------------------------------------------------------------ Perplexity's search fee

gatewayTest(
  "Perplexity's search fee is billed by the search context size asked for; Pro Search is refused",
  async (fake) => {
    const planId = await plan();
    fake.setScript({ inputTokens: 100, outputTokens: 50 });
    const [rate] = await sql`select micro_usd_per_mtok::text as r from public.platform_token_rates
                              where effective_to is null`;
    const [price] = await sql`select input_micro_usd_per_mtok::text as i, output_micro_usd_per_mtok::text as o
                                from public.model_pricing where provider = 'perplexity' and model = 'sonar'
                                 and effective_to is null`;
    for (const [size, fee] of [["low", 5000n], ["medium", 8000n], ["high", 12000n]] as const) {
      const u = await user(planId, 1_000_000);
      const { url, body } = request("perplexity", "sonar");
      const res = await call(
        u,
        { ...body, web_search_options: { search_context_size: size } },
        url,
      );
      assert.equal(res.status, 200, res.text);
      const row = await usageRow(res.headers.get("x-request-id")!);
      const total = 100n * BigInt(price.i) + 50n * BigInt(price.o) + fee * 1_000_000n;
      assert.equal(
        row.debited_tokens,
        Number((total + BigInt(rate.r) - 1n) / BigInt(rate.r)),
        `${size}: tokens + fee`,
      );
      const [{ request_fee_micro_usd, search_context_size }] = await sql`
        select request_fee_micro_usd::int, search_context_size from public.token_usage
         where request_id = ${res.headers.get("x-request-id")!}`;
      assert.deepEqual([request_fee_micro_usd, search_context_size], [Number(fee), size]);
    }
    const u = await user(planId, 1_000_000);
    const { url, body } = request("perplexity", "sonar");
    const pro = await call(u, { ...body, web_search_options: { search_type: "pro" } }, url);
    assert.equal(pro.status, 400, pro.text);
    assert.match(pro.text, /search_type/);
  },
);

// ------------------------------------------------------------------------------------ deleted users

gatewayTest(
  "a user deleted while an instance leases for them is refused within the plan cache's second",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    fake.setScript({ inputTokens: 5, outputTokens: 5 });
    const u = await user(planId, 1_000_000);
    const { url, body } = request("openai", UNIT_MODEL);
    for (let i = 0; i < 20; i++) assert.equal((await call(u, body, url)).status, 200); // a grown lease
    await sql`delete from auth.users where id = ${u.id}`;
    const deletedAt = Date.now();
    let lastServed = 0;
    while (Date.now() - deletedAt < 2_000) {
      const res = await call(u, body, url);
      if (res.status === 200) lastServed = Date.now() - deletedAt;
      else assert.equal(res.status, 401, res.text);
      await sleep(20);
    }
    assert.ok(lastServed <= 1_100, `served ${lastServed} ms after the deletion (the bound is 1 s)`);
    const last = await call(u, body, url);
    assert.equal(last.status, 401);
  },
);

// -------------------------------------------------------------------------------------- limit headers

gatewayTest(
  "every answer names both limits it counts: X-RateLimit-*-Requests and X-RateLimit-*-Tokens",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    fake.setScript({ inputTokens: 5, outputTokens: 5 });
    for (const p of PROVIDERS) {
      const u = await user(planId, 1_000_000);
      const { url, body } = request(p, UNIT_MODEL);
      const res = await call(u, body, url);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.get("x-ratelimit-limit-requests"), "100000", p);
      assert.equal(res.headers.get("x-ratelimit-limit-tokens"), "1000000000", p);
      for (const name of ["remaining-requests", "reset-requests", "remaining-tokens", "reset-tokens"]) {
        assert.match(res.headers.get(`x-ratelimit-${name}`) ?? "", /^\d+$/, `${p}: x-ratelimit-${name}`);
      }
      assert.equal(
        res.headers.get("x-ratelimit-limit"),
        null,
        `${p}: no header that does not say which limit`,
      );
      await usageRow(res.headers.get("x-request-id")!);
    }
  },
);

// ------------------------------------------------------------------------------- holds: TS = SQL, exactly

Deno.test("the lease book caps output and holds exactly as SQL's private._max_output_tokens and _hold_tokens do, for every kind of price and call (no output included)", async () => {
  const prices = [
    { input: 150000, cacheWrite: null, output: 600000, reasoning: null, rate: 2500000, requestFee: 0 },
    { input: 5000000, cacheWrite: 6250000, output: 25000000, reasoning: null, rate: 2500000, requestFee: 0 },
    {
      input: 2000000,
      cacheWrite: null,
      output: 8000000,
      reasoning: 3000000,
      rate: 2500000,
      requestFee: 6000,
    },
    { input: 1, cacheWrite: 3, output: 7, reasoning: 11, rate: 1, requestFee: 0 },
    {
      input: 30000000,
      cacheWrite: null,
      output: 30000000,
      reasoning: 90000000,
      rate: 3333333,
      requestFee: 14000,
    },
  ];
  const shapes = [
    { inputEstimate: 0, requestedOutput: null, choices: 1, inputUnbounded: false },
    { inputEstimate: 1, requestedOutput: 1, choices: 1, inputUnbounded: false },
    { inputEstimate: 1_398_102, requestedOutput: 32768, choices: 8, inputUnbounded: false },
    { inputEstimate: 33, requestedOutput: 500, choices: 3, inputUnbounded: true },
    { inputEstimate: 2_000_000, requestedOutput: 99, choices: 1, inputUnbounded: true },
    // No output at all (embeddings, token counts), and no input either (a token count holds nothing).
    { inputEstimate: 4321, requestedOutput: 0, choices: 1, inputUnbounded: false },
    { inputEstimate: 0, requestedOutput: 0, choices: 1, inputUnbounded: false },
    { inputEstimate: 17, requestedOutput: 100_000, choices: 2, inputUnbounded: false },
  ];
  const planInfo = { plan: "x", maxOutput: 4096, maxInput: 1_000_000, rpm: 1, tpm: 1 };
  for (const price of prices) {
    for (const shape of shapes) {
      const call = { model: "m", searchContextSize: null, ...shape };
      const ts = holdTokens(planInfo, price, call);
      const input = shape.inputUnbounded
        ? Math.max(shape.inputEstimate, planInfo.maxInput)
        : shape.inputEstimate;
      // The output cap and the hold, both from SQL (private._max_output_tokens, private._hold_tokens).
      const [row] = await sql`
        with cap as (select private._max_output_tokens(${shape.requestedOutput}, ${planInfo.maxOutput}) as max_output)
        select cap.max_output, private._hold_tokens(
          row(null, 'openai', 'm', ${price.input}, null, ${price.output}, now(), null, now(), ${price.cacheWrite},
              ${price.reasoning}, 'generation')::public.model_pricing,
          ${price.rate}, ${input}, cap.max_output, ${shape.choices}, ${price.requestFee})::text as hold
          from cap`;
      const what = `${JSON.stringify(price)} × ${JSON.stringify(shape)}`;
      assert.equal(maxOutputOf(planInfo, call), row.max_output, `output cap: ${what}`);
      assert.equal(ts, Number(row.hold), what);
    }
  }
});

gatewayTest(
  "streams sent one byte at a time with CRLF line ends are forwarded intact and metered exactly",
  async (fake) => {
    await ensureUnitModels(sql);
    const planId = await plan();
    fake.setScript({ inputTokens: 77, outputTokens: 33, chunks: 6, byteChunks: true, crlf: true });
    for (const p of PROVIDERS) {
      const u = await user(planId, 1_000_000);
      const { url, body } = request(p, UNIT_MODEL, { stream: true, text: "Grüße, 世界 🚀" });
      const res = await call(u, body, url);
      assert.equal(res.status, 200, `${p}: ${res.text}`);
      const reply = fake.calls.at(-1)!.reply;
      // Every piece of the reply reached the client, split anywhere by the provider's bytes.
      const pieces = splitReply(reply, 6).filter(Boolean);
      let at = 0;
      for (const piece of pieces) {
        const found = res.text.indexOf(JSON.stringify(piece).slice(1, -1), at);
        assert.ok(found >= 0, `${p}: "${piece}" reached the client in order`);
        at = found;
      }
      const row = await usageRow(res.headers.get("x-request-id")!);
      assert.deepEqual(
        [row.status, row.input_tokens, row.output_tokens, row.tokens_estimated, row.debited_tokens],
        ["ok", 77, 33, false, 110],
        p,
      );
    }
  },
);

Deno.test("gateway billing test teardown", async () => {
  await deleteTestUsers(sql, users);
  if (plans.length) await sql`delete from public.subscription_plans where id = any(${plans})`;
  await sql.end();
});
