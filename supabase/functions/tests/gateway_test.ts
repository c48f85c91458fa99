// The LLM gateway over HTTP, through the test functions server, with the official SDKs as clients: each SDK
// pointed at its proxy with the user's Supabase access token as its API key. The providers are the fake
// (tests/_lib/fake-llm.ts on 127.0.0.1:12112, where .env.test points every *_BASE_URL). Covered: round trips,
// exact metering (tokens, cost at the price in force, one debit, the hold released), stream usage hidden from
// clients that did not ask, unpriced models, authentication, validation, plan caps and allowed models,
// provider errors and timeouts, and clients that leave mid-stream.
import assert from "node:assert/strict";
import OpenAI from "npm:openai@7.57.0";
import Anthropic from "npm:@anthropic-ai/sdk@1.13.0";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { type FakeLlmScript, reportedUsage, splitReply } from "./_lib/fake-llm.ts";
import { chargeOf, priceInForce, rateInForce, requestFee, type Tokens, tokens } from "./_lib/charges.ts";
import {
  anthropicClient,
  ask,
  assertGatewayError,
  assertNoKey,
  F,
  gatewayKit,
  gatewayTest,
  googleClient,
  type Gw,
  type GwUser,
  jsonHeaders,
  MODEL,
  openaiClient,
  perplexityClient,
  post,
  PROVIDERS,
  RAW,
  sdkStatus,
  Seen,
  sleep,
  sseData,
  thrown,
  userText,
} from "./_lib/gateway.ts";
import { stack } from "./_lib/stack.ts";
import { es256, hs256, unsigned, userClaims } from "./_lib/tokens.ts";

const sql = testSql();
const users: TestUser[] = [];
const unpricedModels: string[] = [];

const { newUser, usageRow, balanceOf, heldSettles, ledgerFor } = gatewayKit(sql, users);

/** What the gateway must record, from the usage object the fake reported (provider's own fields). */
function expectedTokens(p: Gw, script: FakeLlmScript): Tokens {
  const u = reportedUsage(p, script) as Record<string, number | undefined> & {
    prompt_tokens_details?: { cached_tokens?: number };
    completion_tokens_details?: { reasoning_tokens?: number };
  };
  const n = (v: number | undefined) => v ?? 0;
  switch (p) {
    case "openai":
    case "perplexity":
      return tokens({
        input: n(u.prompt_tokens),
        cached: n(u.prompt_tokens_details?.cached_tokens),
        output: n(u.completion_tokens),
        reasoning: n(u.completion_tokens_details?.reasoning_tokens),
      });
    case "anthropic":
      return tokens({
        input: n(u.input_tokens) + n(u.cache_read_input_tokens) + n(u.cache_creation_input_tokens),
        cached: n(u.cache_read_input_tokens),
        cacheWrite: n(u.cache_creation_input_tokens),
        output: n(u.output_tokens),
      });
    case "google":
      return tokens({
        input: n(u.promptTokenCount),
        cached: n(u.cachedContentTokenCount),
        output: n(u.candidatesTokenCount) + n(u.thoughtsTokenCount),
        reasoning: n(u.thoughtsTokenCount),
      });
  }
}

// ----------------------------------------------------------------------------------- 1. round trips

gatewayTest(
  "gateway: every provider's official SDK gets the reply intact through its proxy, plain and streamed",
  async (fake) => {
    fake.setScript({ chunks: 7 });
    for (const p of PROVIDERS) {
      const user = await newUser(); // one user per provider: the free plan allows 10 requests a minute
      for (const stream of [false, true]) {
        const before = fake.calls.length;
        const prompt = `${userText} (${p}, ${stream ? "stream" : "plain"})`;
        const reply = await ask(p, user.token, prompt, stream);
        assert.equal(reply.text, `echo: ${prompt}`, `${p} ${stream ? "stream" : "plain"}`);
        assert.equal(fake.calls.length, before + 1, "one upstream call per client call");
        const call = fake.calls[before];
        assert.equal(call.provider, p);
        assert.equal(call.model, MODEL[p]);
        assert.equal(call.stream, stream);
        assert.equal(call.reply, reply.text, "the client got exactly what the provider sent");
        assert.equal(call.chunksSent, 7);
      }
    }
  },
);

// ------------------------------------------------------------------------------------- 2. metering

gatewayTest(
  "gateway: each call is metered exactly — reported tokens, cost at the price in force, one debit, hold released",
  async (fake) => {
    const script: FakeLlmScript = {
      inputTokens: 1234,
      cachedTokens: 200,
      cacheCreationTokens: 100,
      outputTokens: 345,
      reasoningTokens: 45,
      chunks: 4,
    };
    fake.setScript(script);
    const rate = await rateInForce(sql);
    for (const p of PROVIDERS) {
      const user = await newUser();
      const price = await priceInForce(sql, p, MODEL[p]);
      const fee = await requestFee(sql, p, MODEL[p]);
      const expected = expectedTokens(p, script);
      const charge = chargeOf(price, rate, expected, fee);
      for (const stream of [false, true]) {
        const what = `${p} ${stream ? "stream" : "plain"}`;
        const before = await balanceOf(user.id);
        const reply = await ask(p, user.token, "meter me", stream);
        const row = await usageRow(reply.requestId);
        assert.deepEqual(
          {
            input: row.input_tokens,
            cached: row.cached_input_tokens,
            cacheWrite: row.cache_write_tokens,
            output: row.output_tokens,
            reasoning: row.reasoning_tokens,
          },
          expected,
          `${what}: tokens as the provider reported them`,
        );
        assert.deepEqual(
          {
            user_id: row.user_id,
            provider: row.provider,
            model: row.model,
            status: row.status,
            http_status: row.http_status,
            pricing_id: row.pricing_id,
            price_missing: row.price_missing,
            tokens_estimated: row.tokens_estimated,
            cost_micro_usd: row.cost_micro_usd,
            debited_tokens: row.debited_tokens,
          },
          {
            user_id: user.id,
            provider: p,
            model: MODEL[p],
            status: "ok",
            http_status: 200,
            pricing_id: price.id,
            price_missing: false,
            tokens_estimated: false,
            cost_micro_usd: charge.cost,
            debited_tokens: charge.platformTokens,
          },
          what,
        );
        const after = await balanceOf(user.id);
        assert.equal(
          before.balance - after.balance,
          charge.platformTokens,
          `${what}: debit in platform tokens`,
        );
        assert.equal(await heldSettles(user.id), 0, `${what}: the hold is released`);
        assert.deepEqual(await ledgerFor(reply.requestId), [{
          delta: -charge.platformTokens,
          reason: "usage",
        }]);
      }
      const [{ count }] = await sql`select count(*)::int from public.token_usage where user_id = ${user.id}`;
      assert.equal(count, 2, `${p}: one usage row per call`);
    }
  },
);

gatewayTest(
  "gateway: a client-chosen x-request-id cannot make a later call go unmetered",
  async (fake) => {
    // The gateway takes the caller's x-request-id as its request id (withHttp), and the request id is the
    // metering key (token_holds, token_usage, the ledger reference). A call that repeats an id must be either
    // refused before it reaches the provider, or metered like any other call — never served for free.
    fake.setScript({ inputTokens: 11, outputTokens: 7 });
    const billed = chargeOf(
      await priceInForce(sql, "openai", MODEL.openai),
      await rateInForce(sql),
      tokens({
        input: 11,
        output: 7,
      }),
    ).platformTokens;
    const user = await newUser();
    const other = await newUser();
    const requestId = `client-chosen-${crypto.randomUUID()}`;
    const call = async (u: GwUser, what: string) => {
      const before = await balanceOf(u.id);
      const calls = fake.calls.length;
      const res = await post(RAW.openai.url, {
        headers: { ...jsonHeaders(u.token), "x-request-id": requestId },
        body: JSON.stringify(RAW.openai.body),
      });
      if (res.status === 200) {
        await usageRow(res.headers.get("x-request-id")!);
        const held = await heldSettles(u.id);
        const debited = before.balance - (await balanceOf(u.id)).balance;
        assert.deepEqual({ debited, held }, { debited: billed, held: 0 }, `${what}: served, so metered`);
      } else {
        assert.ok(
          res.status >= 400 && res.status < 500,
          `${what}: refused as the caller's fault: ${res.text}`,
        );
        assert.equal(fake.calls.length, calls, `${what}: a refused call never reaches the provider`);
        assert.deepEqual(await balanceOf(u.id), { ...before, held: 0 }, `${what}: refused, nothing held`);
      }
    };
    await call(user, "first call");
    await call(user, "the same user again, same x-request-id");
    await call(other, "another user, same x-request-id");
  },
);

// ------------------------------------------------------------------------ 3. OpenAI stream usage

gatewayTest(
  "gateway: an OpenAI stream without stream_options shows the client no usage yet is metered; include_usage shows it",
  async (fake) => {
    const script: FakeLlmScript = { inputTokens: 321, cachedTokens: 21, outputTokens: 54, chunks: 4 };
    fake.setScript(script);
    const user = await newUser();
    const expected = expectedTokens("openai", script);

    // Without stream_options, read as raw SSE.
    const res = await post(RAW.openai.url, {
      headers: jsonHeaders(user.token),
      body: JSON.stringify({ ...RAW.openai.body, stream: true }),
    });
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const data = sseData(res.text);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks.length, 1 + 4 + 1, "role chunk, 4 content chunks, finish chunk — no usage chunk");
    for (const chunk of chunks) {
      assert.ok(!("usage" in chunk), `no usage key in any chunk: ${JSON.stringify(chunk)}`);
      assert.ok(chunk.choices.length > 0, "no chunk with empty choices");
    }
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? "").join(""), "echo: raw hello");
    const upstream = fake.calls[0].body as { stream_options?: { include_usage?: boolean } };
    assert.equal(upstream.stream_options?.include_usage, true, "the gateway asked the provider for usage");
    const row = await usageRow(res.headers.get("x-request-id")!);
    assert.deepEqual(
      [row.status, row.input_tokens, row.cached_input_tokens, row.output_tokens, row.tokens_estimated],
      ["ok", expected.input, expected.cached, expected.output, false],
    );

    // With stream_options.include_usage, through the SDK: the usage chunk arrives as OpenAI sends it.
    const seen = new Seen();
    const stream = await openaiClient(user.token, seen).chat.completions.create({
      model: MODEL.openai,
      messages: [{ role: "user", content: "count me" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const sdkChunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) sdkChunks.push(chunk);
    const last = sdkChunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, reportedUsage("openai", script));
    assert.ok(sdkChunks.slice(0, -1).every((c) => c.usage === null), "usage: null on the other chunks");
    const row2 = await usageRow(seen.last);
    assert.deepEqual(
      [row2.status, row2.input_tokens, row2.cached_input_tokens, row2.output_tokens],
      ["ok", expected.input, expected.cached, expected.output],
    );
  },
);

// -------------------------------------------------------------------------------- 4. unpriced model

gatewayTest(
  "gateway: a model without a price is refused with a 400 naming it, and never reaches the provider",
  async (fake) => {
    const model = `gpt-unpriced-test-${crypto.randomUUID().slice(0, 8)}`;
    unpricedModels.push(model);
    const [{ count: prices }] =
      await sql`select count(*)::int from public.model_pricing where model = ${model}`;
    assert.equal(prices, 0);
    const user = await newUser();
    const before = await balanceOf(user.id);
    const calls = fake.calls.length;
    const err = await thrown(() =>
      openaiClient(user.token, new Seen()).chat.completions.create({
        model,
        messages: [{ role: "user", content: "who prices me?" }],
      })
    );
    assert.equal(sdkStatus(err), 400);
    assert.match((err as Error).message, new RegExp(`${model}.*no price`));
    assert.equal(fake.calls.length, calls, "never forwarded");
    assert.deepEqual(await balanceOf(user.id), { ...before, held: 0 });
  },
);

// ----------------------------------------------------------------------------------- 5. authentication

gatewayTest(
  "gateway: no, forged, expired, unsigned, anon, service_role or unknown-user tokens are 401 on every proxy and never reach the provider",
  async (fake) => {
    const user = await newUser();
    const claims = userClaims(user.id, user.email);
    const badTokens: Record<string, string> = {
      "forged (wrong secret)": await hs256(claims, "not-the-stack-secret-but-long-enough-for-hs256"),
      expired: await hs256(claims, stack.jwtSecret, -120),
      "alg none": unsigned(claims),
      "anon key": stack.anonKey,
      "service_role key": stack.serviceRoleKey,
      "sub not in public.users": await hs256(userClaims(crypto.randomUUID())),
    };

    // No token at all: the raw request, as each path style takes it.
    for (const p of PROVIDERS) {
      const res = await post(RAW[p].url, {
        headers: { "content-type": "application/json" },
        body: JSON.stringify(RAW[p].body),
      });
      assert.equal(res.status, 401, `${p} without a token: ${res.text}`);
      assert.equal(res.headers.get("www-authenticate"), "Bearer");
      assertGatewayError(res.text, "unauthorized", `${p} without a token`);
    }

    // Bad tokens as each SDK sends its API key.
    for (const [kind, token] of Object.entries(badTokens)) {
      const attempts: Record<Gw, () => Promise<unknown>> = {
        openai: () =>
          openaiClient(token).chat.completions.create({
            model: MODEL.openai,
            messages: [{ role: "user", content: "x" }],
          }),
        anthropic: () =>
          anthropicClient(token).messages.create({
            model: MODEL.anthropic,
            max_tokens: 16,
            messages: [{ role: "user", content: "x" }],
          }),
        google: () => googleClient(token).models.generateContent({ model: MODEL.google, contents: "x" }),
        perplexity: () =>
          perplexityClient(token).chat.completions.create({
            model: MODEL.perplexity,
            messages: [{ role: "user", content: "x" }],
          }),
      };
      for (const p of PROVIDERS) {
        const e = await thrown(attempts[p]);
        assert.equal(sdkStatus(e), 401, `${p} with ${kind} token: ${e}`);
        if (e instanceof OpenAI.APIError) assert.equal((e.error as { code?: string }).code, "unauthorized");
      }
      // And as a raw request in the other header styles.
      for (const header of ["x-api-key", "x-goog-api-key"]) {
        const res = await post(RAW.anthropic.url, {
          headers: { "content-type": "application/json", [header]: token },
          body: JSON.stringify(RAW.anthropic.body),
        });
        assert.equal(res.status, 401, `${kind} token in ${header}: ${res.text}`);
        assertGatewayError(res.text, "unauthorized", `${kind} token in ${header}`);
      }
    }
    assert.equal(fake.calls.length, 0, "no refused request reached the provider");
    const { balance, held } = await balanceOf(user.id);
    assert.deepEqual({ balance, held }, { balance: 5_000_000, held: 0 });
  },
);

gatewayTest(
  "gateway: the user token is accepted from Authorization Bearer, x-api-key and x-goog-api-key, HS256 or ES256",
  async (fake) => {
    const user = await newUser();
    const styles: [Gw, Record<string, string>][] = [
      ["openai", { authorization: `Bearer ${user.token}` }],
      ["anthropic", { "x-api-key": user.token }],
      ["google", { "x-goog-api-key": user.token }],
      ["perplexity", { authorization: `bearer ${user.token}` }],
    ];
    for (const [p, header] of styles) {
      const res = await post(RAW[p].url, {
        headers: { "content-type": "application/json", ...header },
        body: JSON.stringify(RAW[p].body),
      });
      assert.equal(res.status, 200, `${p} with ${Object.keys(header)[0]}: ${res.text}`);
      const row = await usageRow(res.headers.get("x-request-id")!);
      assert.equal(row.user_id, user.id);
    }
    assert.equal(fake.calls.length, 4);

    // ES256 (the stack's signing key, published as its JWKS), through every SDK.
    const esUser = await newUser();
    const esToken = await es256(userClaims(esUser.id, esUser.email));
    for (const p of PROVIDERS) {
      const reply = await ask(p, esToken, "signed with ES256", false);
      assert.equal(reply.text, "echo: signed with ES256", p);
      assert.equal((await usageRow(reply.requestId)).user_id, esUser.id);
    }
  },
);

// --------------------------------------------------------------------------------------- 6. validation

gatewayTest(
  "gateway: wrong content type 415, bad JSON 400, missing messages/contents 400, over 4 MB 413, unknown path 404, GET 405 — none reaches the provider",
  async (fake) => {
    const user = await newUser();
    const auth = { authorization: `Bearer ${user.token}` };
    const missing: Record<Gw, [Record<string, unknown>, string]> = {
      openai: [{ model: MODEL.openai }, "messages"],
      anthropic: [{ model: MODEL.anthropic, max_tokens: 10 }, "messages"],
      google: [{ generationConfig: { maxOutputTokens: 10 } }, "contents"],
      perplexity: [{ model: MODEL.perplexity }, "messages"],
    };
    const unknownPath: Record<Gw, string> = {
      openai: `${F}/openai-proxy/v1/audio/speech`,
      anthropic: `${F}/anthropic-proxy/v1/complete`,
      google: `${F}/google-proxy/v1beta/models/${MODEL.google}:predict`,
      perplexity: `${F}/perplexity-proxy/v1/models`,
    };
    const huge = JSON.stringify({ ...RAW.openai.body, padding: "x".repeat(4 * 1024 * 1024) });
    for (const p of PROVIDERS) {
      const { url, body } = RAW[p];
      const wrongType = await post(url, {
        headers: { ...auth, "content-type": "text/plain" },
        body: JSON.stringify(body),
      });
      assert.equal(wrongType.status, 415, `${p}: ${wrongType.text}`);
      assertGatewayError(wrongType.text, "unsupported_media_type", `${p} 415`);

      const badJson = await post(url, { headers: jsonHeaders(user.token), body: '{"model": "gpt-4o-mini",' });
      assert.equal(badJson.status, 400, `${p}: ${badJson.text}`);
      assertGatewayError(badJson.text, "invalid_request", `${p} bad JSON`);

      const [incomplete, field] = missing[p];
      const noMessages = await post(url, {
        headers: jsonHeaders(user.token),
        body: JSON.stringify(incomplete),
      });
      assert.equal(noMessages.status, 400, `${p}: ${noMessages.text}`);
      const error = assertGatewayError(noMessages.text, "invalid_request", `${p} missing ${field}`);
      assert.match(error.message, new RegExp(`\\b${field}\\b`), `${p}: the message names ${field}`);

      const tooLarge = await post(url, { headers: jsonHeaders(user.token), body: huge });
      assert.equal(tooLarge.status, 413, `${p}: ${tooLarge.text}`);
      assertGatewayError(tooLarge.text, "payload_too_large", `${p} 413`);

      const notFound = await post(unknownPath[p], {
        headers: jsonHeaders(user.token),
        body: JSON.stringify(body),
      });
      assert.equal(notFound.status, 404, `${p}: ${notFound.text}`);
      assertGatewayError(notFound.text, "not_found", `${p} 404`);

      const get = await post(url, { method: "GET", headers: auth });
      assert.equal(get.status, 405, `${p}: ${get.text}`);
      assert.match(get.headers.get("allow") ?? "", /\bPOST\b/);
      assertGatewayError(get.text, "method_not_allowed", `${p} 405`);
    }
    // Gemini streams only in the SSE form.
    const noSse = await post(`${F}/google-proxy/v1beta/models/${MODEL.google}:streamGenerateContent`, {
      headers: jsonHeaders(user.token),
      body: JSON.stringify(RAW.google.body),
    });
    assert.equal(noSse.status, 404, noSse.text);

    assert.equal(fake.calls.length, 0, "the provider received nothing");
    const [{ count }] = await sql`select count(*)::int from public.token_usage where user_id = ${user.id}`;
    assert.equal(count, 0, "nothing metered");
  },
);

// -------------------------------------------------------------------------------------- 7. plan caps

gatewayTest(
  "gateway: a huge max output reaches the provider capped at the plan's max_output_tokens",
  async (fake) => {
    const [{ max_output_tokens: cap }] =
      await sql`select max_output_tokens::int from public.subscription_plans
                                                   where id = 'free'`;
    assert.ok(cap < 1_000_000);
    const user = await newUser();
    const [{ plan }] = await sql`select plan from public.users where id = ${user.id}`;
    assert.equal(plan, "free");
    const huge = 1_000_000;
    const messages = [{ role: "user" as const, content: "as long as you like" }];

    await openaiClient(user.token).chat.completions.create({
      model: MODEL.openai,
      messages,
      max_tokens: huge,
    });
    await openaiClient(user.token).chat.completions.create({
      model: MODEL.openai,
      messages,
      max_completion_tokens: huge,
    });
    // The SDK refuses a non-streaming call this long unless a timeout is given explicitly.
    await anthropicClient(user.token).messages.create(
      { model: MODEL.anthropic, max_tokens: huge, messages },
      { timeout: 30_000 },
    );
    await googleClient(user.token).models.generateContent({
      model: MODEL.google,
      contents: "as long as you like",
      config: { maxOutputTokens: huge },
    });
    await perplexityClient(user.token).chat.completions.create({
      model: MODEL.perplexity,
      messages,
      max_tokens: huge,
    });

    const bodies = fake.calls.map((c) => c.body as Record<string, unknown>);
    assert.equal(bodies.length, 5);
    assert.equal(bodies[0].max_tokens, cap, "openai max_tokens");
    assert.equal(bodies[1].max_completion_tokens, cap, "openai max_completion_tokens");
    assert.equal(bodies[2].max_tokens, cap, "anthropic max_tokens");
    assert.equal((bodies[3].generationConfig as Record<string, unknown>).maxOutputTokens, cap, "google");
    assert.equal(bodies[4].max_tokens, cap, "perplexity max_tokens");
  },
);

gatewayTest(
  "gateway: a model outside the plan's allowed_models is 403 and never reaches the provider",
  async (fake) => {
    // A plan of its own (inactive, so no client lists it), so no other test's plan changes under it.
    const planId = `gw_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
    let user: GwUser | undefined;
    await sql`insert into public.subscription_plans
                (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
                 allowed_models, is_active)
              values (${planId}, 'Gateway test plan', 0, 60, 200000, 2048,
                      ${[MODEL.openai, MODEL.google]}::text[], false)`;
    try {
      user = await newUser();
      await sql`update public.users set plan = ${planId} where id = ${user.id}`;

      const refusedOpenai = await thrown(() =>
        openaiClient(user!.token).chat.completions.create({
          model: "gpt-4o",
          messages: [{ role: "user", content: "x" }],
        })
      );
      assert.ok(refusedOpenai instanceof OpenAI.PermissionDeniedError, String(refusedOpenai));
      assert.equal((refusedOpenai.error as { code?: string }).code, "forbidden");
      assert.match(refusedOpenai.message, /gpt-4o/);

      const refusedAnthropic = await thrown(() =>
        anthropicClient(user!.token).messages.create({
          model: MODEL.anthropic,
          max_tokens: 16,
          messages: [{ role: "user", content: "x" }],
        })
      );
      assert.equal(sdkStatus(refusedAnthropic), 403);

      assert.equal(fake.calls.length, 0, "refused models never reach the provider");
      const allowed = await ask("openai", user.token, "allowed", false);
      assert.equal(allowed.text, "echo: allowed");
      assert.equal(fake.calls.length, 1);
      assert.equal(fake.calls[0].model, MODEL.openai);
      assert.equal((fake.calls[0].body as { max_completion_tokens?: number }).max_completion_tokens, 2048);
    } finally {
      if (user) await deleteTestUsers(sql, [user]);
      await sql`delete from public.subscription_plans where id = ${planId}`;
    }
  },
);

// --------------------------------------------------------------------------- 8. upstream behaviour

/** The error body each fake provider sends for `status` with `message` (their own shapes). */
function providerErrorBody(p: Gw, status: number, message: string, res: { headers: Headers }) {
  switch (p) {
    case "openai":
      return {
        error: {
          message,
          type: status === 429 ? "requests" : "server_error",
          param: null,
          code: status === 429 ? "rate_limit_exceeded" : null,
        },
      };
    case "perplexity":
      return {
        error: {
          message,
          type: status === 429 ? "rate_limit_exceeded" : "internal_server_error",
          code: status,
        },
      };
    case "anthropic":
      return {
        type: "error",
        error: { type: status === 429 ? "rate_limit_error" : "api_error", message },
        request_id: res.headers.get("request-id"),
      };
    case "google":
      return { error: { code: status, message, status: status === 429 ? "RESOURCE_EXHAUSTED" : "INTERNAL" } };
  }
}

gatewayTest(
  "gateway: a provider's 429 or 500 reaches the client as the provider sent it, recorded as upstream_error and not billed",
  async (fake) => {
    for (const p of PROVIDERS) {
      const user = await newUser();
      for (const status of [429, 500]) {
        const message = `fake ${p} says ${status}`;
        fake.setScript({ status, errorMessage: message, retryAfter: 7 });

        // Raw: the exact body and headers.
        const before = await balanceOf(user.id);
        const res = await post(RAW[p].url, {
          headers: jsonHeaders(user.token),
          body: JSON.stringify(RAW[p].body),
        });
        assert.equal(res.status, status, `${p} ${status}: ${res.text}`);
        assert.deepEqual(JSON.parse(res.text), providerErrorBody(p, status, message, res), `${p} ${status}`);
        assert.equal(res.headers.get("retry-after"), "7", `${p} ${status}: the provider's retry-after`);
        assertNoKey(res, `${p} ${status}`);
        const requestId = res.headers.get("x-request-id")!;
        const row = await usageRow(requestId);
        assert.deepEqual(
          [row.status, row.http_status, row.input_tokens, row.cached_input_tokens, row.output_tokens],
          ["upstream_error", status, 0, 0, 0],
          `${p} ${status}`,
        );
        assert.equal(row.debited_tokens, 0);
        assert.deepEqual(await ledgerFor(requestId), [], `${p} ${status}: nothing debited`);
        assert.deepEqual(await balanceOf(user.id), { balance: before.balance, held: 0 }, `${p} ${status}`);

        // Through the SDK: its own error for that status, with the provider's message.
        const e = await thrown(() => ask(p, user.token, "x", false));
        assert.equal(sdkStatus(e), status, `${p} ${status} via the SDK`);
        assert.match(String((e as Error).message), new RegExp(message), `${p} ${status} via the SDK`);
      }
    }
    assert.equal(fake.calls.length, 16);
  },
);

gatewayTest(
  "gateway: a provider that sends no headers within UPSTREAM_HEADERS_TIMEOUT_MS is a 504 in the JSON error shape",
  async (fake) => {
    fake.setScript({ delayMs: 3000 }); // .env.test: UPSTREAM_HEADERS_TIMEOUT_MS=2000
    const user = await newUser();
    const results = await Promise.all(
      PROVIDERS.map((p) =>
        post(RAW[p].url, { headers: jsonHeaders(user.token), body: JSON.stringify(RAW[p].body) })
      ),
    );
    let billed = 0; // platform tokens
    for (const [i, res] of results.entries()) {
      const p = PROVIDERS[i];
      assert.equal(res.status, 504, `${p}: ${res.text}`);
      assertGatewayError(res.text, "upstream_timeout", `${p} 504`);
      assertNoKey(res, `${p} 504`);
      const requestId = res.headers.get("x-request-id")!;
      // The provider may have read the prompt before it stalled: the input estimate is billed, flagged.
      const row = await usageRow(requestId);
      assert.deepEqual([row.status, row.output_tokens, row.tokens_estimated], ["timeout", 0, true], p);
      assert.ok(Number(row.input_tokens) > 0, `${p}: the input estimate is billed`);
      assert.ok(row.debited_tokens > 0, `${p}: billed in platform tokens`);
      billed += row.debited_tokens;
      assert.equal((await ledgerFor(requestId)).length, 1, `${p}: one debit`);
    }
    assert.equal(fake.calls.length, 4);
    assert.deepEqual(await balanceOf(user.id), { balance: 5_000_000 - billed, held: 0 });
  },
);

// ---------------------------------------------------------------------------- 9. client disconnects

/** Reads a stream that the reader itself aborts: ending quietly or with the SDK's abort error are both fine. */
async function untilAborted(read: () => Promise<void>): Promise<void> {
  try {
    await read();
  } catch (e) {
    if (!(e instanceof OpenAI.APIUserAbortError || e instanceof Anthropic.APIUserAbortError)) throw e;
  }
}

/** Waits for the fake to see that an exchange ended (or gives up after `ms`). */
const settledWithin = (call: { settled: Promise<string> }, ms: number) =>
  Promise.race([call.settled, sleep(ms).then(() => "still running")]);

gatewayTest(
  "gateway: a client leaving an OpenAI or Anthropic stream cancels the upstream call and is billed for what was produced",
  async (fake) => {
    const chunks = 6;
    fake.setScript({ inputTokens: 50, outputTokens: 40, chunks, chunkDelayMs: 250 });

    // OpenAI: usage comes only at the end, so what was produced is estimated.
    const user = await newUser();
    const seen = new Seen();
    const controller = new AbortController();
    const stream = await openaiClient(user.token, seen).chat.completions.create(
      { model: MODEL.openai, messages: [{ role: "user", content: "a long answer please" }], stream: true },
      { signal: controller.signal },
    );
    let received = "";
    await untilAborted(async () => {
      for await (const chunk of stream) {
        received += chunk.choices[0]?.delta?.content ?? "";
        if (received) controller.abort();
      }
    });
    assert.ok(received.length > 0);
    const openaiCall = fake.calls[0];
    assert.equal(await settledWithin(openaiCall, 5000), "aborted", "the upstream request was aborted");
    assert.ok(openaiCall.chunksSent < chunks, "the provider stopped early");
    const row = await usageRow(seen.last);
    assert.equal(row.status, "cancelled");
    assert.equal(row.tokens_estimated, true);
    assert.ok(row.input_tokens > 0, `estimated input: ${row.input_tokens}`);
    // At least what reached the client (about 3 bytes a token), at most what the provider sent.
    const bytes = (text: string) => new TextEncoder().encode(text).byteLength;
    const sentText = splitReply(openaiCall.reply, chunks).slice(0, openaiCall.chunksSent).join("");
    assert.ok(row.output_tokens >= Math.ceil(bytes(received) / 3), `estimated output: ${row.output_tokens}`);
    assert.ok(row.output_tokens <= Math.ceil(bytes(sentText) / 3), `output ${row.output_tokens}`);
    assert.equal(await heldSettles(user.id), 0, "the hold is released");
    assert.deepEqual(await ledgerFor(seen.last), [{ delta: -row.debited_tokens, reason: "usage" }]);

    // Anthropic: message_start carries the input and the output so far.
    const user2 = await newUser();
    const seen2 = new Seen();
    const controller2 = new AbortController();
    const events = await anthropicClient(user2.token, seen2).messages.create(
      {
        model: MODEL.anthropic,
        max_tokens: 256,
        messages: [{ role: "user", content: "a long answer please" }],
        stream: true,
      },
      { signal: controller2.signal },
    );
    let deltas = 0;
    await untilAborted(async () => {
      for await (const event of events) {
        if (event.type === "content_block_delta") {
          deltas++;
          controller2.abort();
        }
      }
    });
    assert.equal(deltas, 1);
    const anthropicCall = fake.calls[1];
    assert.equal(anthropicCall.provider, "anthropic");
    assert.equal(await settledWithin(anthropicCall, 5000), "aborted", "the upstream request was aborted");
    assert.ok(anthropicCall.chunksSent < chunks, "the provider stopped early");
    const row2 = await usageRow(seen2.last);
    // message_start's output_tokens is a placeholder (1): a cut-off stream is billed what was delivered.
    const sent2 = splitReply(anthropicCall.reply, chunks).slice(0, anthropicCall.chunksSent).join("");
    assert.deepEqual([row2.status, row2.tokens_estimated, row2.input_tokens], ["cancelled", true, 50]);
    assert.ok(row2.output_tokens > 1, `more than message_start's placeholder: ${row2.output_tokens}`);
    assert.ok(row2.output_tokens <= Math.max(1, Math.ceil(bytes(sent2) / 3)), `output ${row2.output_tokens}`);
    assert.equal(await heldSettles(user2.id), 0, "the hold is released");
    assert.deepEqual(await ledgerFor(seen2.last), [{ delta: -row2.debited_tokens, reason: "usage" }]);
  },
);

// ----------------------------------------------------------------------------------------- teardown

Deno.test("gateway test teardown", async () => {
  await deleteTestUsers(sql, users);
  if (unpricedModels.length) {
    await sql`delete from private.admin_alerts
               where kind = 'unpriced_model' and details ->> 'model' = any(${unpricedModels}::text[])`;
  }
  await sql.end();
});
