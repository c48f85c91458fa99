// openai-proxy's embeddings (POST /v1/embeddings, metered: input tokens at the embedding model's price) and model
// list (GET /v1/models, from the database: the plan's models with a price in force), with the official openai SDK
// as the client through the local platform and the fake providers.
//
// The embedding model here is a test model of its own (`text-embedding-test`, priced like text-embedding-3-small
// at $0.02 per million input tokens, output 0), kept as harmless reference data like tests/_lib/charges.ts's.
import assert from "node:assert/strict";
import OpenAI from "npm:openai@7.57.0";
import { chargeOf, priceInForce, rateInForce, tokens } from "./_lib/charges.ts";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { gatewayKit, gatewayTest, openaiClient, sdkStatus, Seen, thrown } from "./_lib/gateway.ts";

const sql = testSql();
const users: TestUser[] = [];
const plans: string[] = [];
const { newUser, usageRow, ledgerFor, heldSettles } = gatewayKit(sql, users);
const EMBEDDING_MODEL = "text-embedding-test";

async function ensureEmbeddingModel() {
  await sql`
    insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
                                      effective_from)
    select 'openai', ${EMBEDDING_MODEL}, 20000, 0, '2026-01-01T00:00:00Z'
     where not exists (select 1 from public.model_pricing where provider = 'openai' and model = ${EMBEDDING_MODEL})`;
}

gatewayTest("embeddings are billed once, as input tokens at the embedding model's price", async (fake) => {
  await ensureEmbeddingModel();
  const u = await newUser();
  fake.setScript({ inputTokens: 4000 });
  const seen = new Seen();
  const client = openaiClient(u.token, seen);
  const result = await client.embeddings.create({
    model: EMBEDDING_MODEL,
    input: ["one text", "another text"],
  });
  assert.equal(result.data.length, 2, "one vector per input (the SDK decoded the base64 it asked for)");
  assert.equal(result.data[0].embedding.length, 8);
  assert.ok(result.data[0].embedding.every((x) => typeof x === "number"));
  assert.equal(result.usage.prompt_tokens, 4000);
  assert.equal((fake.calls[0].body as { encoding_format?: string }).encoding_format, "base64");

  const row = await usageRow(seen.last);
  const charge = chargeOf(
    await priceInForce(sql, "openai", EMBEDDING_MODEL),
    await rateInForce(sql),
    tokens({ input: 4000 }),
  );
  assert.deepEqual(
    [row.status, row.model, row.input_tokens, row.output_tokens, row.tokens_estimated],
    ["ok", EMBEDDING_MODEL, 4000, 0, false],
  );
  assert.equal(row.cost_micro_usd, charge.cost);
  assert.equal(row.debited_tokens, charge.platformTokens);
  assert.deepEqual(await ledgerFor(seen.last), [{ delta: -charge.platformTokens, reason: "usage" }]);
  assert.equal(await heldSettles(u.id), 0);
});

gatewayTest(
  "embeddings: no token is a 401, a field off the allow-list a 400, and neither reaches the provider",
  async (fake) => {
    await ensureEmbeddingModel();
    const noToken = await thrown(() =>
      openaiClient("nope").embeddings.create({ model: EMBEDDING_MODEL, input: "x" })
    );
    assert.equal(sdkStatus(noToken), 401);
    const u = await newUser();
    const bad = await thrown(() =>
      openaiClient(u.token).embeddings.create({
        model: EMBEDDING_MODEL,
        input: "x",
        ...({ stream: true } as Record<string, unknown>),
      })
    );
    assert.ok(bad instanceof OpenAI.BadRequestError);
    assert.match(String((bad.error as { message?: string })?.message ?? bad.message), /stream: not accepted/);
    const unpriced = await thrown(() =>
      openaiClient(u.token).embeddings.create({ model: "text-embedding-unpriced-test", input: "x" })
    );
    assert.equal(sdkStatus(unpriced), 400, "a model without a price cannot be billed");
    assert.equal(fake.calls.length, 0);
  },
);

gatewayTest(
  "GET /v1/models lists the plan's priced models; one without a price or not in the plan is absent",
  async (fake) => {
    await ensureEmbeddingModel();
    const u = await newUser();
    const all = await openaiClient(u.token).models.list();
    const ids = all.data.map((m) => m.id);
    const [{ priced }] = await sql`
    select array_agg(model order by model) as priced from public.model_pricing
     where provider = 'openai' and effective_from <= now() and (effective_to is null or effective_to > now())`;
    assert.deepEqual(
      ids,
      priced,
      "a free plan without allowed_models: every OpenAI model with a price in force",
    );
    assert.ok(ids.includes("gpt-4o-mini") && ids.includes(EMBEDDING_MODEL));
    assert.ok(!ids.includes("claude-haiku-4-5"), "only the provider's models");
    assert.ok(
      all.data.every((m) => m.object === "model" && m.owned_by === "openai" && Number.isInteger(m.created)),
    );

    // A price that has ended takes the model off the list.
    await sql`insert into public.model_pricing (provider, model, input_micro_usd_per_mtok, output_micro_usd_per_mtok,
                                              effective_from, effective_to)
            select 'openai', 'expired-price-test', 1, 1, '2026-01-01', '2026-02-01'
             where not exists (select 1 from public.model_pricing where model = 'expired-price-test')`;
    assert.ok(!(await openaiClient(u.token).models.list()).data.some((m) => m.id === "expired-price-test"));

    // A plan that lists its models: only those (and only if priced).
    const planId = `test_models_${crypto.randomUUID().replace(/-/g, "").slice(0, 10)}`;
    plans.push(planId);
    await sql`insert into public.subscription_plans
              (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
               max_input_tokens, is_active, allowed_models)
            values (${planId}, ${"Test " + planId}, 0, 1000, 1000000, 4096, 32000, false,
                    array['gpt-4o-mini', 'not-priced-anywhere'])`;
    await sql`update public.users set plan = ${planId} where id = ${u.id}`;
    const limited = await openaiClient(u.token).models.list();
    assert.deepEqual(limited.data.map((m) => m.id), ["gpt-4o-mini"]);

    const e = await thrown(() => openaiClient("not-a-token").models.list());
    assert.equal(sdkStatus(e), 401);
    assert.equal(fake.calls.length, 0, "the list is never forwarded");
  },
);

Deno.test("gateway openai endpoints test teardown", async () => {
  await deleteTestUsers(sql, users);
  if (plans.length) await sql`delete from public.subscription_plans where id = any(${plans})`;
  await sql.end();
});
