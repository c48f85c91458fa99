// openai-proxy's Responses API (POST /v1/responses) through the local platform with the fake providers, the
// official openai SDK as the client (`client.responses.create` / `.stream`): billed once at the price in force
// (cached input at its cached price, reasoning counted), the max output capped to the plan's, tool calls passed
// through, the refused fields a 400 that reaches nobody, no token a 401, and a stream cut off billed what was
// delivered.
import assert from "node:assert/strict";
import OpenAI from "npm:openai@7.57.0";
import { describeResponses } from "../_shared/gateway/providers/openai-responses.ts";
import { chargeOf, priceInForce, rateInForce, tokens } from "./_lib/charges.ts";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { reportedUsage, splitReply, toolResultsIn } from "./_lib/fake-llm.ts";
import {
  assertGatewayError,
  F,
  gatewayKit,
  gatewayTest,
  jsonHeaders,
  openaiClient,
  post,
  sdkStatus,
  Seen,
  thrown,
} from "./_lib/gateway.ts";

const sql = testSql();
const users: TestUser[] = [];
const { newUser, usageRow, heldSettles, ledgerFor } = gatewayKit(sql, users);
const MODEL = "gpt-5-mini";
const URL_ = `${F}/openai-proxy/v1/responses`;

/** What the call with these tokens must cost at MODEL's price in force (the tests' own oracle). */
async function expectedCharge(t: Parameters<typeof tokens>[0]) {
  return chargeOf(await priceInForce(sql, "openai", MODEL), await rateInForce(sql), tokens(t));
}

gatewayTest(
  "responses.create is billed once at the price in force, cached input at its cached price",
  async (fake) => {
    const u = await newUser();
    const script = { inputTokens: 1200, cachedTokens: 1000, outputTokens: 300, reasoningTokens: 120 };
    fake.setScript(script);
    const seen = new Seen();
    const response = await openaiClient(u.token, seen).responses.create({ model: MODEL, input: "Hello" });
    assert.equal(response.output_text, "echo: Hello");
    assert.deepEqual(
      response.usage,
      reportedUsage("responses", script),
      "the usage reaches the client unchanged",
    );
    const row = await usageRow(seen.last);
    const charge = await expectedCharge({ input: 1200, cached: 1000, output: 300, reasoning: 120 });
    assert.deepEqual(
      [
        row.provider,
        row.model,
        row.input_tokens,
        row.cached_input_tokens,
        row.output_tokens,
        row.reasoning_tokens,
      ],
      ["openai", MODEL, 1200, 1000, 300, 120],
    );
    assert.equal(row.status, "ok");
    assert.equal(row.tokens_estimated, false);
    assert.equal(row.cost_micro_usd, charge.cost);
    assert.equal(row.debited_tokens, charge.platformTokens);
    assert.deepEqual(await ledgerFor(seen.last), [{ delta: -charge.platformTokens, reason: "usage" }]);
    assert.equal(await heldSettles(u.id), 0);
    assert.equal(fake.calls[0].path, "/v1/responses");
  },
);

gatewayTest(
  "responses.stream is billed once from response.completed; the client sees every event",
  async (fake) => {
    const u = await newUser();
    fake.setScript({ inputTokens: 500, cachedTokens: 200, outputTokens: 40, chunks: 4 });
    const seen = new Seen();
    const stream = openaiClient(u.token, seen).responses.stream({ model: MODEL, input: "stream it" });
    const deltas: string[] = [];
    stream.on("response.output_text.delta", (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    assert.deepEqual(deltas, splitReply("echo: stream it", 4));
    assert.equal(final.usage?.input_tokens_details.cached_tokens, 200);
    const row = await usageRow(seen.last);
    const charge = await expectedCharge({ input: 500, cached: 200, output: 40 });
    assert.deepEqual([row.status, row.input_tokens, row.cached_input_tokens, row.output_tokens], [
      "ok",
      500,
      200,
      40,
    ]);
    assert.equal(row.debited_tokens, charge.platformTokens);
    assert.deepEqual(await ledgerFor(seen.last), [{ delta: -charge.platformTokens, reason: "usage" }]);
  },
);

gatewayTest(
  "the max output is capped to the plan's, and a function tool's call and result pass through",
  async (fake) => {
    const u = await newUser();
    const [{ max_output_tokens: planMax }] = await sql`
    select p.max_output_tokens from public.users us join public.subscription_plans p on p.id = us.plan
     where us.id = ${u.id}`;
    const client = openaiClient(u.token);
    fake.setScript({ toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }], times: 1 });
    const first = await client.responses.create({
      model: MODEL,
      input: "weather?",
      max_output_tokens: planMax * 10,
      tools: [{ type: "function", name: "get_weather", parameters: { type: "object" }, strict: false }],
    });
    assert.equal((fake.calls[0].body as { max_output_tokens: number }).max_output_tokens, planMax);
    const call = first.output.find((o) => o.type === "function_call");
    assert.ok(call?.type === "function_call");
    assert.equal(call.name, "get_weather");
    await client.responses.create({
      model: MODEL,
      input: [
        { role: "user", content: "weather?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: '{"sky":"sunny"}' },
      ],
    });
    assert.deepEqual(toolResultsIn(fake.calls[1]), [{
      id: call.call_id,
      name: "get_weather",
      output: '{"sky":"sunny"}',
    }]);
    assert.equal(
      (fake.calls[1].body as { max_output_tokens: number }).max_output_tokens,
      planMax,
      "always sent, so the provider never runs past the hold",
    );
  },
);

gatewayTest("without a token the SDK gets a 401 and nothing reaches the provider", async (fake) => {
  const e = await thrown(() => openaiClient("not-a-token").responses.create({ model: MODEL, input: "x" }));
  assert.ok(e instanceof OpenAI.AuthenticationError);
  assert.equal(sdkStatus(e), 401);
  assert.equal(fake.calls.length, 0);
});

gatewayTest(
  "fields billed beyond tokens or holding input the gateway cannot see are a 400 naming them",
  async (fake) => {
    const u = await newUser();
    const refused: [string, Record<string, unknown>, RegExp][] = [
      ["web search", { tools: [{ type: "web_search" }] }, /built-in tools/],
      ["file search", { tools: [{ type: "file_search", vector_store_ids: ["vs_1"] }] }, /built-in tools/],
      [
        "code interpreter",
        { tools: [{ type: "code_interpreter", container: { type: "auto" } }] },
        /built-in/,
      ],
      ["image generation", { tools: [{ type: "image_generation" }] }, /built-in tools/],
      ["background", { background: true }, /background/],
      ["previous_response_id", { previous_response_id: "resp_123" }, /previous_response_id/],
      ["conversation", { conversation: "conv_123" }, /conversation/],
      ["a stored prompt", { prompt: { id: "pmpt_1" } }, /stored prompt/],
      ["priority tier", { service_tier: "priority" }, /service_tier/],
      ["a search model", { model: "gpt-4o-search-preview" }, /search/],
      ["an unknown field", { modalities: ["audio"] }, /modalities: not accepted/],
    ];
    for (const [what, fields, message] of refused) {
      const res = await post(URL_, {
        headers: jsonHeaders(u.token),
        body: JSON.stringify({ model: MODEL, input: "x", ...fields }),
      });
      assert.equal(res.status, 400, `${what}: ${res.text}`);
      assert.match(assertGatewayError(res.text, "invalid_request", what).message, message, what);
    }
    // and through the SDK: its BadRequestError
    const e = await thrown(() =>
      openaiClient(u.token).responses.create({ model: MODEL, input: "x", background: true })
    );
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(fake.calls.length, 0, "nothing refused reaches the provider");
    const [{ n }] = await sql`select count(*)::int as n from public.token_usage where user_id = ${u.id}`;
    assert.equal(n, 0, "and nothing is billed");
  },
);

gatewayTest(
  "an image by URL or an item reference is unmeasurable input (held as the plan's max input), billed what is reported",
  async (fake) => {
    const u = await newUser();
    fake.setScript({ inputTokens: 900, outputTokens: 5 });
    const seen = new Seen();
    const input = [{
      role: "user" as const,
      content: [
        { type: "input_text" as const, text: "what is this?" },
        { type: "input_image" as const, image_url: "https://example.com/cat.png", detail: "auto" as const },
      ],
    }];
    assert.equal(describeResponses({ model: MODEL, input }).inputUnbounded, true);
    assert.equal(describeResponses({ model: MODEL, input: "text only" }).inputUnbounded, false);
    const reference = [{ type: "item_reference", id: "msg_1" }];
    assert.equal(describeResponses({ model: MODEL, input: reference }).inputUnbounded, true);
    await openaiClient(u.token, seen).responses.create({ model: MODEL, input });
    const row = await usageRow(seen.last);
    assert.deepEqual([row.status, row.input_tokens, row.tokens_estimated], ["ok", 900, false]);
  },
);

gatewayTest("a Responses stream cut off is billed what was delivered, flagged estimated", async (fake) => {
  for (const how of ["client leaves", "provider fails"] as const) {
    const u = await newUser();
    fake.setScript(
      how === "client leaves"
        ? { hangAfterChunks: 2, outputTokens: 500, chunks: 5 }
        : { errorAfterChunks: 2, outputTokens: 500, chunks: 5 },
    );
    const seen = new Seen();
    const client = openaiClient(u.token, seen);
    const text = "a fairly long prompt to stream back in pieces";
    let delivered = "";
    const stream = await client.responses.create({ model: MODEL, input: text, stream: true });
    try {
      for await (const e of stream) {
        if (e.type === "response.output_text.delta") delivered += e.delta;
        if (how === "client leaves" && delivered === splitReply(`echo: ${text}`, 5).slice(0, 2).join("")) {
          break;
        }
      }
    } catch (e) {
      assert.equal(how, "provider fails", String(e));
    }
    const row = await usageRow(seen.last);
    assert.notEqual(row.status, "ok", `${how}: recorded as cut off`);
    assert.equal(row.tokens_estimated, true, how);
    assert.equal(row.output_tokens, Math.ceil(new TextEncoder().encode(delivered).byteLength / 3), how);
    assert.ok(row.input_tokens > 0, `${how}: the input estimate`);
    assert.equal((await ledgerFor(seen.last)).length, 1, `${how}: billed once`);
    fake.reset();
  }
});

Deno.test("gateway responses test teardown", async () => {
  await deleteTestUsers(sql, users);
  await sql.end();
});
