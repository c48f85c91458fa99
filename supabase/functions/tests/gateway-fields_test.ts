// Each provider's allow-list of request fields (providers/*.ts), field by field: every field it accepts passes
// with a value of its kind, every field it refuses (billed beyond tokens, or fetching what cannot be bounded) is a
// 400 naming it, in both spellings where the provider accepts both, and a field not on the list is a 400 naming
// it. The tables below must name every field of each list, so a field added without a test here fails.
// Then, over HTTP: a property test (fast-check) over every provider's numeric fields proves only 2xx and 4xx come
// back, nothing refused reaches the provider, and everything served is billed.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.10.2";
import { anthropic, messagesFields } from "../_shared/gateway/providers/anthropic.ts";
import {
  generateContentFields,
  generationConfigFields,
  google,
  toolFields,
} from "../_shared/gateway/providers/google.ts";
import { openai, openAiChatFields } from "../_shared/gateway/providers/openai.ts";
import {
  perplexity,
  perplexityChatFields,
  webSearchOptionsFields,
} from "../_shared/gateway/providers/perplexity.ts";
import { HttpError } from "../_shared/http/errors.ts";
import { parseWith } from "../_shared/http/validation.ts";
import { ensureUnitModels, UNIT_MODEL } from "./_lib/charges.ts";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { F, gatewayKit, gatewayTest, type Gw, jsonHeaders, post } from "./_lib/gateway.ts";
import { hs256, userClaims } from "./_lib/tokens.ts";

// A value the field accepts (the key: the field, exactly as it is spelled in the request).
type Accepts = Record<string, unknown>;

const chatAccepts: Accepts = {
  model: "m",
  messages: [{ role: "user", content: "hi" }],
  stream: true,
  stream_options: { include_usage: true },
  max_tokens: 100,
  temperature: 0.5,
  top_p: 0.9,
  presence_penalty: 0.1,
  frequency_penalty: -0.1,
  response_format: { type: "json_object" },
};

const openaiAccepts: Accepts = {
  ...chatAccepts,
  max_completion_tokens: 100,
  n: 2,
  seed: 42,
  logprobs: true,
  top_logprobs: 3,
  logit_bias: { "50256": -100 },
  stop: ["\n"],
  tools: [{ type: "function", function: { name: "f", parameters: {} } }],
  tool_choice: "auto",
  parallel_tool_calls: false,
  functions: [{ name: "f" }],
  function_call: "auto",
  reasoning_effort: "low",
  verbosity: "low",
  modalities: ["text"],
  prediction: { type: "content", content: "x" },
  metadata: { k: "v" },
  store: false,
  user: "u-1",
  safety_identifier: "s-1",
  prompt_cache_key: "k",
  prompt_cache_retention: "24h",
  prompt_cache_options: {},
  service_tier: "flex",
};
const openaiRefuses = ["audio", "moderation", "web_search_options"];

const perplexityAccepts: Accepts = {
  ...chatAccepts,
  max_completion_tokens: 100,
  top_k: 5,
  web_search_options: { search_context_size: "medium" },
  search_mode: "academic",
  search_domain_filter: ["example.com"],
  search_recency_filter: "week",
  search_after_date_filter: "1/1/2026",
  search_before_date_filter: "12/1/2026",
  last_updated_after_filter: "1/1/2026",
  last_updated_before_filter: "12/1/2026",
  return_images: false,
  return_related_questions: false,
  enable_search_classifier: true,
  disable_search: false,
  language_preference: "en",
};
const webSearchAccepts: Accepts = {
  search_context_size: "high",
  search_type: "fast",
  user_location: { country: "US" },
  image_search_relevance_enhanced: true,
};

const anthropicAccepts: Accepts = {
  model: "m",
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 100,
  stream: true,
  system: "be brief",
  stop_sequences: ["\n\n"],
  temperature: 0.5,
  top_k: 5,
  top_p: 0.9,
  metadata: { user_id: "u-1" },
  thinking: { type: "enabled", budget_tokens: 1024 },
  tool_choice: { type: "auto" },
  tools: [{ name: "f", input_schema: { type: "object" } }],
  cache_control: { type: "ephemeral" },
  output_config: {},
  diagnostics: {},
  service_tier: "auto",
  speed: "standard",
};
const anthropicRefuses = ["container", "inference_geo", "mcp_servers"];

/** Both spellings of a Gemini field, with one value. */
const both = (camel: string, snake: string, value: unknown): Accepts => ({ [camel]: value, [snake]: value });

const googleAccepts: Accepts = {
  contents: [{ role: "user", parts: [{ text: "hi" }] }],
  tools: [{ functionDeclarations: [{ name: "f" }] }],
  ...both("toolConfig", "tool_config", {}),
  ...both("safetySettings", "safety_settings", []),
  ...both("systemInstruction", "system_instruction", { parts: [{ text: "be brief" }] }),
  ...both("generationConfig", "generation_config", {}),
  ...both("cachedContent", "cached_content", "cachedContents/abc"),
};
const generationConfigAccepts: Accepts = {
  ...both("stopSequences", "stop_sequences", ["\n"]),
  ...both("responseMimeType", "response_mime_type", "application/json"),
  ...both("responseSchema", "response_schema", { type: "OBJECT" }),
  ...both("responseJsonSchema", "response_json_schema", { type: "object" }),
  ...both("responseModalities", "response_modalities", ["TEXT"]),
  ...both("candidateCount", "candidate_count", 2),
  ...both("maxOutputTokens", "max_output_tokens", 100),
  temperature: 0.5,
  ...both("topP", "top_p", 0.9),
  ...both("topK", "top_k", 5),
  seed: 7,
  ...both("presencePenalty", "presence_penalty", 0.1),
  ...both("frequencyPenalty", "frequency_penalty", 0.1),
  ...both("responseLogprobs", "response_logprobs", true),
  logprobs: 2,
  ...both("enableEnhancedCivicAnswers", "enable_enhanced_civic_answers", false),
  ...both("thinkingConfig", "thinking_config", { thinkingBudget: 0 }),
  ...both("mediaResolution", "media_resolution", "MEDIA_RESOLUTION_LOW"),
};
const generationConfigRefuses = ["speechConfig", "speech_config", "imageConfig", "image_config"];
const toolAccepts: Accepts = { ...both("functionDeclarations", "function_declarations", [{ name: "f" }]) };
const toolRefuses = [
  "googleSearch",
  "google_search",
  "googleSearchRetrieval",
  "google_search_retrieval",
  "googleMaps",
  "google_maps",
  "codeExecution",
  "code_execution",
  "urlContext",
  "url_context",
  "fileSearch",
  "file_search",
  "computerUse",
  "computer_use",
  "enterpriseWebSearch",
  "enterprise_web_search",
  "retrieval",
];

type Case = {
  what: string;
  fields: Record<string, unknown>;
  accepts: Accepts;
  refuses: string[];
  /** The smallest valid body, and how to put one field into it. */
  base: Record<string, unknown>;
  put: (base: Record<string, unknown>, field: string, value: unknown) => Record<string, unknown>;
  schema: Parameters<typeof parseWith>[0];
};

const top = (base: Record<string, unknown>, field: string, value: unknown) => ({ ...base, [field]: value });
const CASES: Case[] = [
  {
    what: "OpenAI chat completions",
    fields: openAiChatFields,
    accepts: openaiAccepts,
    refuses: openaiRefuses,
    base: { model: "m", messages: [{ role: "user", content: "hi" }] },
    put: top,
    schema: openai.schema,
  },
  {
    what: "Perplexity chat completions",
    fields: perplexityChatFields,
    accepts: perplexityAccepts,
    refuses: [],
    base: { model: "m", messages: [{ role: "user", content: "hi" }] },
    put: top,
    schema: perplexity.schema,
  },
  {
    what: "Perplexity web_search_options",
    fields: webSearchOptionsFields,
    accepts: webSearchAccepts,
    refuses: [],
    base: { model: "m", messages: [{ role: "user", content: "hi" }] },
    put: (base, field, value) => ({ ...base, web_search_options: { [field]: value } }),
    schema: perplexity.schema,
  },
  {
    what: "Anthropic messages",
    fields: messagesFields,
    accepts: anthropicAccepts,
    refuses: anthropicRefuses,
    base: { model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] },
    put: top,
    schema: anthropic.schema,
  },
  {
    what: "Gemini generateContent",
    fields: generateContentFields,
    accepts: googleAccepts,
    refuses: [],
    base: { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
    put: top,
    schema: google.schema,
  },
  {
    what: "Gemini generationConfig",
    fields: generationConfigFields,
    accepts: generationConfigAccepts,
    refuses: generationConfigRefuses,
    base: { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
    put: (base, field, value) => ({ ...base, generationConfig: { [field]: value } }),
    schema: google.schema,
  },
  {
    what: "a Gemini tool",
    fields: toolFields,
    accepts: toolAccepts,
    refuses: toolRefuses,
    base: { contents: [{ role: "user", parts: [{ text: "hi" }] }] },
    put: (base, field, value) => ({ ...base, tools: [{ [field]: value }] }),
    schema: google.schema,
  },
];

function refusal(schema: Case["schema"], body: unknown): string {
  try {
    parseWith(schema, body);
  } catch (e) {
    assert.ok(e instanceof HttpError && e.status === 400, String(e));
    return e.message;
  }
  assert.fail(`accepted: ${JSON.stringify(body)}`);
}

for (const c of CASES) {
  Deno.test(`allow-list of ${c.what}: the tables here name every field of the list`, () => {
    assert.deepEqual(
      Object.keys(c.fields).sort(),
      [...Object.keys(c.accepts), ...c.refuses].sort(),
      "a field of the list without a test here (or a test of a field not on the list)",
    );
  });
  for (const [field, value] of Object.entries(c.accepts)) {
    Deno.test(`allow-list of ${c.what}: ${field} is accepted`, () => {
      parseWith(c.schema, c.put(c.base, field, value));
    });
  }
  for (const field of c.refuses) {
    Deno.test(`allow-list of ${c.what}: ${field} is refused, naming it`, () => {
      const message = refusal(c.schema, c.put(c.base, field, {}));
      assert.match(message, new RegExp(field.replace(/_/g, "[_]?"), "i"));
      assert.match(message, /billed beyond tokens|not available/);
    });
  }
  Deno.test(`allow-list of ${c.what}: a field not on the list is refused, naming it`, () => {
    const message = refusal(c.schema, c.put(c.base, "surprise_field", 1));
    assert.match(message, /surprise_field: not accepted by the gateway/);
  });
}

Deno.test("Gemini: the same field in both spellings at once is refused (which one counts is not ours to guess)", () => {
  const base = { contents: [{ parts: [{ text: "hi" }] }] };
  for (
    const body of [
      { ...base, generationConfig: { candidateCount: 1, candidate_count: 8 } },
      { ...base, generationConfig: { maxOutputTokens: 1 }, generation_config: { maxOutputTokens: 9000 } },
    ]
  ) {
    assert.match(refusal(google.schema, body), /are the same field/);
  }
});

Deno.test("OpenAI: the search models bill a search per call and are refused", () => {
  assert.match(
    refusal(openai.schema, { model: "gpt-4o-search-preview", messages: [{ role: "user", content: "x" }] }),
    /search models/,
  );
});

// ------------------------------------------------------------------ numbers, over HTTP (property test)

const sql = testSql();
const users: TestUser[] = [];
const { usageRow } = gatewayKit(sql, users);
let planId = "";

/** The numeric fields of each provider, where they go in a body, and the body around them. */
const NUMERIC: Record<
  Gw,
  { url: string; base: Record<string, unknown>; fields: string[]; put: Case["put"] }
> = {
  openai: {
    url: `${F}/openai-proxy/v1/chat/completions`,
    base: { model: UNIT_MODEL, messages: [{ role: "user", content: "n" }] },
    fields: ["max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "temperature", "top_p"],
    put: top,
  },
  perplexity: {
    url: `${F}/perplexity-proxy/chat/completions`,
    base: { model: UNIT_MODEL, messages: [{ role: "user", content: "n" }] },
    fields: ["max_tokens", "max_completion_tokens", "top_k", "temperature", "presence_penalty"],
    put: top,
  },
  anthropic: {
    url: `${F}/anthropic-proxy/v1/messages`,
    base: { model: UNIT_MODEL, max_tokens: 16, messages: [{ role: "user", content: "n" }] },
    fields: ["max_tokens", "top_k", "temperature", "top_p"],
    put: top,
  },
  google: {
    url: `${F}/google-proxy/v1beta/models/${UNIT_MODEL}:generateContent`,
    base: { contents: [{ role: "user", parts: [{ text: "n" }] }] },
    fields: [
      "maxOutputTokens",
      "max_output_tokens",
      "candidateCount",
      "candidate_count",
      "topK",
      "seed",
      "temperature",
    ],
    put: (base, field, value) => ({ ...base, generationConfig: { [field]: value } }),
  },
};

const numbers = fc.oneof(
  fc.integer({ min: -5, max: 40 }),
  fc.integer(),
  fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 1e20, -(2 ** 31), 0.5, 1.5, -0.0),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

gatewayTest(
  "numbers in every provider's fields: only 2xx or 4xx, nothing refused reaches the provider, everything served is billed",
  async (fake) => {
    await ensureUnitModels(sql);
    planId = `test_fields_${crypto.randomUUID().replace(/-/g, "").slice(0, 10)}`;
    await sql`insert into public.subscription_plans
                (id, name, monthly_token_allowance, requests_per_minute, tokens_per_minute, max_output_tokens,
                 is_active)
              values (${planId}, ${"Test " + planId}, 0, 100000, 1000000000, 64, false)`;
    const u = await createTestUser(sql);
    users.push(u);
    await sql`update public.users set plan = ${planId} where id = ${u.id}`;
    await sql`select private.update_user_token_balance(${u.id}, 1000000000, 'adjustment', ${"test:" + u.id})`;
    const token = await hs256(userClaims(u.id, u.email));
    fake.setScript({ inputTokens: 3, outputTokens: 2 });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...(Object.keys(NUMERIC) as Gw[])),
        fc.nat(),
        numbers,
        async (p, pick, value) => {
          const n = NUMERIC[p];
          const field = n.fields[pick % n.fields.length];
          const calls = fake.calls.length;
          const res = await post(n.url, {
            headers: { ...jsonHeaders(token), "anthropic-version": "2023-06-01" },
            body: JSON.stringify(n.put(n.base, field, value)),
          });
          const what = `${p} ${field}=${value}: ${res.status} ${res.text.slice(0, 200)}`;
          assert.ok((res.status >= 200 && res.status < 300) || (res.status >= 400 && res.status < 500), what);
          if (res.status === 200) {
            assert.equal(fake.calls.length, calls + 1, what);
            const row = await usageRow(res.headers.get("x-request-id")!);
            assert.ok(row.debited_tokens >= 1, `${what}: billed`);
            // What reached the provider is within the plan's max output (64).
            const sent = fake.calls.at(-1)!.body as Record<string, unknown>;
            const config = (sent.generationConfig ?? {}) as Record<string, unknown>;
            for (const out of [sent.max_tokens, sent.max_completion_tokens, config.maxOutputTokens]) {
              if (out !== undefined) assert.ok(Number(out) <= 64, `${what}: capped, sent ${out}`);
            }
          } else if (res.status !== 429) {
            assert.equal(fake.calls.length, calls, `${what}: a refused call never reaches the provider`);
          }
        },
      ),
      { numRuns: 120 },
    );
  },
);

Deno.test("gateway fields test teardown", async () => {
  await deleteTestUsers(sql, users);
  if (planId) await sql`delete from public.subscription_plans where id = ${planId}`;
  await sql.end();
});
