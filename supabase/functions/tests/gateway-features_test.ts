// Provider features billed beyond tokens are refused with a 400 naming the field, before anything reaches
// the provider, instead of being passed through unmetered; the same requests without them go through.
import assert from "node:assert/strict";
import { createTestUser, deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { startFakeLlm } from "./_lib/fake-llm.ts";
import { FAKE_PORT } from "./_lib/gateway.ts";
import { stack } from "./_lib/stack.ts";
import { hs256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(2);
const users: TestUser[] = [];

async function userToken(): Promise<string> {
  const user = await createTestUser(sql);
  users.push(user);
  await sql`select private.update_user_token_balance(p_user_id => ${user.id}, p_delta => 1000000,
    p_reason => 'adjustment', p_reference => ${"test-credit:" + user.id})`;
  return await hs256(userClaims(user.id, user.email));
}

type Case = { name: string; path: string; headers?: Record<string, string>; body: Record<string, unknown> };

const messages = [{ role: "user", content: "hi" }];
const contents = [{ role: "user", parts: [{ text: "hi" }] }];

const refused: (Case & { field: RegExp })[] = [
  {
    name: "OpenAI priority tier",
    path: "openai-proxy/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages, service_tier: "priority" },
    field: /service_tier/,
  },
  {
    name: "OpenAI web search",
    path: "openai-proxy/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages, web_search_options: {} },
    field: /web_search_options/,
  },
  {
    name: "Anthropic server tool",
    path: "anthropic-proxy/v1/messages",
    headers: { "anthropic-version": "2023-06-01" },
    body: {
      model: "claude-haiku-4-5",
      max_tokens: 64,
      messages,
      tools: [{ type: "web_search_20250305", name: "web_search" }],
    },
    field: /tools\[0\]\.type/,
  },
  {
    name: "Gemini Google Search grounding",
    path: "google-proxy/v1beta/models/gemini-2.5-flash:generateContent",
    body: { contents, tools: [{ googleSearch: {} }] },
    field: /tools\[0\]\.googleSearch/,
  },
];

const allowed: Case[] = [
  {
    name: "OpenAI default tier",
    path: "openai-proxy/v1/chat/completions",
    body: { model: "gpt-4o-mini", messages, service_tier: "default" },
  },
  {
    name: "Anthropic client tool",
    path: "anthropic-proxy/v1/messages",
    headers: { "anthropic-version": "2023-06-01" },
    body: {
      model: "claude-haiku-4-5",
      max_tokens: 64,
      messages,
      tools: [{ name: "lookup", description: "Look up", input_schema: { type: "object" } }],
    },
  },
  {
    name: "Gemini function declarations",
    path: "google-proxy/v1beta/models/gemini-2.5-flash:generateContent",
    body: { contents, tools: [{ functionDeclarations: [{ name: "lookup" }] }] },
  },
];

const send = (token: string, c: Case) =>
  fetch(`${stack.functionsUrl}/${c.path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...c.headers },
    body: JSON.stringify(c.body),
  });

Deno.test("features billed beyond tokens are refused with a 400 naming the field and never reach the provider", async () => {
  await using fake = await startFakeLlm({ port: FAKE_PORT });
  const token = await userToken();
  for (const c of refused) {
    const res = await send(token, c);
    const body = await res.json();
    assert.equal(res.status, 400, `${c.name}: ${JSON.stringify(body)}`);
    assert.equal(body.error.code, "invalid_request", c.name);
    assert.match(body.error.message, c.field, c.name);
  }
  assert.equal(fake.calls.length, 0);
});

Deno.test("the same requests without those features go through", async () => {
  await using fake = await startFakeLlm({ port: FAKE_PORT });
  const token = await userToken();
  for (const c of allowed) {
    const res = await send(token, c);
    const text = await res.text();
    assert.equal(res.status, 200, `${c.name}: ${text}`);
  }
  assert.equal(fake.calls.length, allowed.length);
});

Deno.test("an anthropic-beta header is not passed to the provider", async () => {
  await using fake = await startFakeLlm({ port: FAKE_PORT });
  const token = await userToken();
  const res = await send(token, {
    name: "beta",
    path: "anthropic-proxy/v1/messages",
    headers: { "anthropic-version": "2023-06-01", "anthropic-beta": "context-1m-2025-08-07" },
    body: { model: "claude-haiku-4-5", max_tokens: 64, messages },
  });
  await res.body?.cancel();
  assert.equal(res.status, 200);
  assert.equal(fake.calls[0].headers["anthropic-beta"], undefined);
  assert.equal(fake.calls[0].headers["anthropic-version"], "2023-06-01");
});

Deno.test("gateway features test teardown", async () => {
  await deleteTestUsers(sql, users);
  await sql.end();
});
