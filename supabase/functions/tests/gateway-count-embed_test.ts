// google-proxy's embeddings (:embedContent, :batchEmbedContents: metered, input tokens at the embedding model's
// price, with no output held or counted) and the token counts (google-proxy :countTokens, anthropic-proxy
// /v1/messages/count_tokens: free, a usage row with no tokens, limited by the requests-per-minute limit only),
// with the official SDKs (@google/genai models.embedContent / models.countTokens, @anthropic-ai/sdk
// messages.countTokens) as the clients through the local platform and the fake providers.
import assert from "node:assert/strict";
import { chargeOf, priceInForce, rateInForce, tokens } from "./_lib/charges.ts";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import {
  anthropicClient,
  assertGatewayError,
  F,
  gatewayKit,
  gatewayTest,
  googleClient,
  googleRequestId,
  jsonHeaders,
  MODEL,
  post,
  sdkStatus,
  Seen,
  thrown,
} from "./_lib/gateway.ts";

const sql = testSql();
const users: TestUser[] = [];
const plans: string[] = [];
const { newUser, usageRow, ledgerFor, heldSettles, balanceOf } = gatewayKit(sql, users);
const EMBEDDING_MODEL = "gemini-embedding-001"; // priced by migration proxy_endpoints_pricing

/** A plan of its own for `u`: `rpm` requests a minute, a tokens-per-minute limit of `tpm`. */
async function onPlan(u: TestUser, rpm: number, tpm: number) {
  const id = `test_count_${crypto.randomUUID().replace(/-/g, "").slice(0, 10)}`;
  plans.push(id);
  await sql`insert into public.subscription_plans
              (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
               max_input_tokens, is_active)
            values (${id}, ${"Test " + id}, 0, ${rpm}, ${tpm}, 4096, 32000, false)`;
  await sql`update public.users set plan = ${id} where id = ${u.id}`;
}

gatewayTest(
  "Gemini embeddings through models.embedContent are billed once, as input tokens at the embedding price",
  async (fake) => {
    const u = await newUser();
    fake.setScript({ inputTokens: 3000 });
    const ai = googleClient(u.token);
    const r = await ai.models.embedContent({
      model: EMBEDDING_MODEL,
      contents: ["one text", "another text"],
      config: { outputDimensionality: 4, taskType: "RETRIEVAL_DOCUMENT" },
    });
    assert.equal(r.embeddings?.length, 2, "one vector per content");
    assert.equal(r.embeddings![0].values!.length, 4);
    assert.equal(fake.calls[0].path, `/v1/models/${EMBEDDING_MODEL}:batchEmbedContents`);

    const requestId = googleRequestId(r);
    const row = await usageRow(requestId);
    const charge = chargeOf(
      await priceInForce(sql, "google", EMBEDDING_MODEL),
      await rateInForce(sql),
      tokens({ input: 3000 }),
    );
    assert.deepEqual(
      [row.status, row.provider, row.model, row.input_tokens, row.output_tokens, row.tokens_estimated],
      ["ok", "google", EMBEDDING_MODEL, 3000, 0, false],
    );
    assert.ok(charge.cost > 0);
    assert.equal(row.cost_micro_usd, charge.cost);
    assert.equal(row.debited_tokens, charge.platformTokens);
    assert.deepEqual(await ledgerFor(requestId), [{ delta: -charge.platformTokens, reason: "usage" }]);
    assert.equal(await heldSettles(u.id), 0);
  },
);

gatewayTest(
  ":embedContent without usageMetadata is billed by its input estimate, flagged estimated",
  async (fake) => {
    const u = await newUser();
    fake.setScript({ usage: "omit" });
    const body = JSON.stringify({ content: { parts: [{ text: "x".repeat(900) }] } });
    const res = await post(`${F}/google-proxy/v1beta/models/${EMBEDDING_MODEL}:embedContent`, {
      headers: jsonHeaders(u.token),
      body,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(res.text).embedding.values.length, 8);
    const row = await usageRow(res.headers.get("x-request-id")!);
    const estimate = Math.ceil(new TextEncoder().encode(body).byteLength / 3);
    assert.deepEqual([row.status, row.input_tokens, row.tokens_estimated], ["ok", estimate, true]);
    // Whatever the answer's bytes count as output, it is at the embedding's output price of 0: the cost is the input.
    const charge = chargeOf(
      await priceInForce(sql, "google", EMBEDDING_MODEL),
      await rateInForce(sql),
      tokens({ input: estimate }),
    );
    assert.equal(row.cost_micro_usd, charge.cost);
  },
);

gatewayTest(
  "an embedding's hold and tokens-per-minute count have no output: a plan whose window fits only the input admits it",
  async (fake) => {
    const u = await newUser();
    // 2 000 tokens a minute: an embedding of ~400 input tokens fits; held with the plan's max output (4096) it
    // would not.
    await onPlan(u, 100, 2000);
    fake.setScript({ inputTokens: 300 });
    const body = JSON.stringify({ content: { parts: [{ text: "y".repeat(1200) }] } });
    const res = await post(`${F}/google-proxy/v1beta/models/${EMBEDDING_MODEL}:embedContent`, {
      headers: jsonHeaders(u.token),
      body,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal((await usageRow(res.headers.get("x-request-id")!)).input_tokens, 300);
  },
);

gatewayTest(
  "embeddings refuse a file by URI and a batch request naming another model with a 400, before the provider",
  async (fake) => {
    const u = await newUser();
    const url = (m: string) => `${F}/google-proxy/v1beta/models/${EMBEDDING_MODEL}:${m}`;
    const file = await post(url("embedContent"), {
      headers: jsonHeaders(u.token),
      body: JSON.stringify({ content: { parts: [{ fileData: { fileUri: "gs://b/f.pdf" } }] } }),
    });
    assert.equal(file.status, 400, file.text);
    assert.match(assertGatewayError(file.text, "invalid_request", "fileData").message, /fileData/);
    const other = await post(url("batchEmbedContents"), {
      headers: jsonHeaders(u.token),
      body: JSON.stringify({
        requests: [{ model: "models/gemini-2.5-pro", content: { parts: [{ text: "hi" }] } }],
      }),
    });
    assert.equal(other.status, 400, other.text);
    assert.match(assertGatewayError(other.text, "invalid_request", "model").message, /requests\[0\]\.model/);
    const extra = await post(url("embedContent"), {
      headers: jsonHeaders(u.token),
      body: JSON.stringify({ content: { parts: [{ text: "hi" }] }, stream: true }),
    });
    assert.equal(extra.status, 400, extra.text);
    assert.equal(fake.calls.length, 0, "nothing reached the provider");
    assert.deepEqual(await balanceOf(u.id), { balance: 5_000_000, held: 0 }, "and nothing was billed");
  },
);

gatewayTest(
  "token counts (Gemini models.countTokens, Anthropic messages.countTokens) are free: a usage row with no tokens",
  async (fake) => {
    const u = await newUser();
    fake.setScript({ inputTokens: 1234 });
    const ai = googleClient(u.token);
    const g = await ai.models.countTokens({ model: MODEL.google, contents: "How many tokens is this?" });
    assert.equal(g.totalTokens, 1234);
    assert.equal(fake.calls[0].path, `/v1/models/${MODEL.google}:countTokens`);

    const seen = new Seen();
    const a = await anthropicClient(u.token, seen).messages.countTokens({
      model: MODEL.anthropic,
      system: "Be brief.",
      messages: [{ role: "user", content: "How many tokens is this?" }],
    });
    assert.equal(a.input_tokens, 1234);
    assert.equal(fake.calls[1].path, "/v1/messages/count_tokens");

    for (const [provider, requestId] of [["google", googleRequestId(g)], ["anthropic", seen.last]]) {
      const row = await usageRow(requestId);
      assert.deepEqual(
        [
          row.status,
          row.provider,
          row.input_tokens,
          row.output_tokens,
          row.cost_micro_usd,
          row.debited_tokens,
        ],
        ["ok", provider, 0, 0, 0, 0],
        provider,
      );
      assert.deepEqual(await ledgerFor(requestId), [], `${provider}: no ledger row`);
    }
    assert.deepEqual(await balanceOf(u.id), { balance: 5_000_000, held: 0 });
  },
);

gatewayTest(
  "token counts need no balance but count against the requests-per-minute limit (429 past it)",
  async (fake) => {
    // No balance: a chat call is refused, a count is not (both providers).
    const broke = await newUser(0);
    await onPlan(broke, 100, 1_000_000);
    const chat = await thrown(() =>
      anthropicClient(broke.token).messages.create({
        model: MODEL.anthropic,
        max_tokens: 16,
        messages: [{ role: "user", content: "hi" }],
      })
    );
    assert.equal(sdkStatus(chat), 402);
    const messages = [{ role: "user" as const, content: "count me" }];
    assert.equal(
      (await anthropicClient(broke.token).messages.countTokens({ model: MODEL.anthropic, messages }))
        .input_tokens,
      11,
    );
    assert.equal(
      (await googleClient(broke.token).models.countTokens({ model: MODEL.google, contents: "count me" }))
        .totalTokens,
      11,
    );
    assert.deepEqual(await balanceOf(broke.id), { balance: 0, held: 0 });

    // Two requests a minute: two counts pass, the third is a 429 and never reaches the provider.
    const limited = await newUser();
    await onPlan(limited, 2, 1_000_000);
    const client = anthropicClient(limited.token);
    const before = fake.calls.length;
    for (let i = 0; i < 2; i++) await client.messages.countTokens({ model: MODEL.anthropic, messages });
    const third = await thrown(() => client.messages.countTokens({ model: MODEL.anthropic, messages }));
    assert.equal(sdkStatus(third), 429);
    assert.equal(fake.calls.length - before, 2, "only the two admitted counts reached the provider");
  },
);

gatewayTest(
  "token counts refuse a model the plan does not allow, and fields off the allow-list, before the provider",
  async (fake) => {
    const u = await newUser();
    const forbidden = await thrown(() =>
      anthropicClient(u.token).messages.countTokens({
        model: "claude-unpriced-test",
        messages: [{ role: "user", content: "x" }],
      })
    );
    assert.equal(sdkStatus(forbidden), 400, "a model without a price is refused like any call");
    const extra = await post(`${F}/anthropic-proxy/v1/messages/count_tokens`, {
      headers: { ...jsonHeaders(u.token), "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: MODEL.anthropic,
        messages: [{ role: "user", content: "x" }],
        stream: true,
      }),
    });
    assert.equal(extra.status, 400, extra.text);
    assert.match(extra.text, /stream: not accepted/);
    const both = await post(`${F}/google-proxy/v1beta/models/${MODEL.google}:countTokens`, {
      headers: jsonHeaders(u.token),
      body: JSON.stringify({
        contents: [{ parts: [{ text: "x" }] }],
        generateContentRequest: { contents: [{ parts: [{ text: "x" }] }] },
      }),
    });
    assert.equal(both.status, 400, both.text);
    const noToken = await thrown(() =>
      googleClient("not-a-token").models.countTokens({ model: MODEL.google, contents: "x" })
    );
    assert.equal(sdkStatus(noToken), 401);
    assert.equal(fake.calls.length, 0);
  },
);

Deno.test("gateway count and embed test teardown", async () => {
  await deleteTestUsers(sql, users);
  if (plans.length) await sql`delete from public.subscription_plans where id = any(${plans})`;
  await sql.end();
});
