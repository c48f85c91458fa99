// What the gateway test files share: the providers, their priced models and paths, the fake providers on the
// port the test env names, the official SDK clients pointed at the gateway, and reads of what a call left in the
// database (its usage row, the balance, the ledger). `gatewayKit(sql, users)` binds the database helpers to one
// test file's connection and user list.
import assert from "node:assert/strict";
import OpenAI from "npm:openai@7.57.0";
import Anthropic from "npm:@anthropic-ai/sdk@1.13.0";
import { ApiError, GoogleGenAI } from "npm:@google/genai@3.3.0";
import { createTestUser, type Sql, type TestUser } from "./db.ts";
import { FAKE_LLM_API_KEY, type FakeLlm, LLM_PROVIDERS, type LlmProvider, startFakeLlm } from "./fake-llm.ts";
import { stack } from "./stack.ts";
import { hs256, userClaims } from "./tokens.ts";

// Where supabase/functions/tests/.env.test points every provider (FAKE_LLM_PORT: for a functions server of one's
// own, started with an env file naming another port).
export const FAKE_PORT = Number(Deno.env.get("FAKE_LLM_PORT") ?? 12112);
export const F = stack.functionsUrl;

/** The gateway's providers, named as the fake names them. */
export type Gw = LlmProvider;
export const PROVIDERS: readonly Gw[] = LLM_PROVIDERS;
/** Priced models (see the model_pricing seed in the gateway migration). */
export const MODEL: Record<Gw, string> = {
  openai: "gpt-4o-mini",
  anthropic: "claude-haiku-4-5",
  google: "gemini-2.5-flash",
  perplexity: "sonar",
};
export const SDK_BASE: Record<Gw, string> = {
  openai: `${F}/openai-proxy/v1`,
  anthropic: `${F}/anthropic-proxy`,
  google: `${F}/google-proxy`,
  perplexity: `${F}/perplexity-proxy`,
};
export const userText = "Grüße, 世界 — is this intact? 🚀";
/** What each path style expects, for requests made without an SDK. */
export const RAW: Record<Gw, { url: string; body: Record<string, unknown> }> = {
  openai: {
    url: `${F}/openai-proxy/v1/chat/completions`,
    body: { model: MODEL.openai, messages: [{ role: "user", content: "raw hello" }] },
  },
  anthropic: {
    url: `${F}/anthropic-proxy/v1/messages`,
    body: { model: MODEL.anthropic, max_tokens: 64, messages: [{ role: "user", content: "raw hello" }] },
  },
  google: {
    url: `${F}/google-proxy/v1beta/models/${MODEL.google}:generateContent`,
    body: { contents: [{ role: "user", parts: [{ text: "raw hello" }] }] },
  },
  perplexity: {
    url: `${F}/perplexity-proxy/chat/completions`,
    body: { model: MODEL.perplexity, messages: [{ role: "user", content: "raw hello" }] },
  },
};

// ------------------------------------------------------------------------------------------ helpers

export type GwUser = TestUser & { token: string };

/**
 * The fake on FAKE_PORT. Another test file may hold the port for a while (the functions' env names one fixed
 * port): wait for it, so each test has the fake, and every gateway call it makes, to itself.
 */
export async function startFake(): Promise<FakeLlm> {
  const until = Date.now() + 120_000;
  while (true) {
    try {
      return await startFakeLlm({ port: FAKE_PORT });
    } catch (e) {
      if (!(e instanceof Deno.errors.AddrInUse) || Date.now() > until) throw e;
      await sleep(250);
    }
  }
}

/** Runs a test with the fake providers on FAKE_PORT, stopped afterwards whatever happens. */
export function gatewayTest(name: string, fn: (fake: FakeLlm) => Promise<void>) {
  Deno.test(name, async () => {
    const fake = await startFake();
    try {
      await fn(fake);
    } finally {
      await fake.stop();
    }
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records the gateway's x-request-id of every response an SDK receives. */
export class Seen {
  readonly requestIds: string[] = [];
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    this.requestIds.push(res.headers.get("x-request-id") ?? "");
    return res;
  };
  get last(): string {
    const id = this.requestIds.at(-1);
    assert.ok(id, "the gateway answered with an x-request-id");
    return id;
  }
}

export const openaiClient = (apiKey: string, seen = new Seen()) =>
  new OpenAI({ apiKey, baseURL: SDK_BASE.openai, maxRetries: 0, fetch: seen.fetch });
export const perplexityClient = (apiKey: string, seen = new Seen()) =>
  new OpenAI({ apiKey, baseURL: SDK_BASE.perplexity, maxRetries: 0, fetch: seen.fetch });
export const anthropicClient = (apiKey: string, seen = new Seen()) =>
  new Anthropic({ apiKey, baseURL: SDK_BASE.anthropic, maxRetries: 0, fetch: seen.fetch });
export const googleClient = (apiKey: string) =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: SDK_BASE.google, retryOptions: { attempts: 1 } } });

export type Reply = { text: string; requestId: string };

export const googleRequestId = (r: { sdkHttpResponse?: { headers?: Record<string, string> } }) => {
  const id = r.sdkHttpResponse?.headers?.["x-request-id"];
  assert.ok(id, "the gateway answered with an x-request-id");
  return id;
};

/** One call through the gateway with the provider's official SDK; the reply text as the SDK assembled it. */
export async function ask(p: Gw, token: string, prompt: string, stream: boolean): Promise<Reply> {
  const seen = new Seen();
  const messages = [{ role: "user" as const, content: prompt }];
  switch (p) {
    case "openai":
    case "perplexity": {
      const client = p === "openai" ? openaiClient(token, seen) : perplexityClient(token, seen);
      if (!stream) {
        const c = await client.chat.completions.create({ model: MODEL[p], messages });
        return { text: c.choices[0].message.content ?? "", requestId: seen.last };
      }
      const runner = client.chat.completions.stream({ model: MODEL[p], messages });
      const text = await runner.finalContent();
      return { text: text ?? "", requestId: seen.last };
    }
    case "anthropic": {
      const client = anthropicClient(token, seen);
      if (!stream) {
        const m = await client.messages.create({ model: MODEL[p], max_tokens: 256, messages });
        const text = m.content.map((b) => b.type === "text" ? b.text : "").join("");
        return { text, requestId: seen.last };
      }
      const text = await client.messages.stream({ model: MODEL[p], max_tokens: 256, messages }).finalText();
      return { text, requestId: seen.last };
    }
    case "google": {
      const ai = googleClient(token);
      if (!stream) {
        const r = await ai.models.generateContent({ model: MODEL[p], contents: prompt });
        return { text: r.text ?? "", requestId: googleRequestId(r) };
      }
      let text = "";
      let requestId = "";
      for await (
        const chunk of await ai.models.generateContentStream({ model: MODEL[p], contents: prompt })
      ) {
        requestId ||= googleRequestId(chunk);
        text += chunk.text ?? "";
      }
      return { text, requestId };
    }
  }
}

export type UsageRow = {
  user_id: string;
  provider: string;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cost_micro_usd: number | null;
  pricing_id: number | null;
  price_missing: boolean;
  tokens_estimated: boolean;
  debited_tokens: number;
  status: string;
  http_status: number | null;
};

/** Runs `fn` and returns what it threw (fails if it did not throw). */
export async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail("expected an error");
}

/** The HTTP status an SDK error carries (openai, anthropic and genai errors all have `status`). */
export function sdkStatus(e: unknown): number | undefined {
  if (e instanceof OpenAI.APIError || e instanceof Anthropic.APIError || e instanceof ApiError) {
    return e.status as number | undefined;
  }
  throw e;
}

export async function post(
  url: string,
  init: { headers?: Record<string, string>; body?: string; method?: string; signal?: AbortSignal } = {},
) {
  const res = await fetch(url, {
    method: init.method ?? "POST",
    headers: init.headers,
    body: init.body,
    signal: init.signal,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

export const jsonHeaders = (token: string) => ({
  authorization: `Bearer ${token}`,
  "content-type": "application/json",
});

/** The gateway's own error shape, and nothing else in it. */
export function assertGatewayError(
  text: string,
  code: string,
  what: string,
): { code: string; message: string } {
  const body = JSON.parse(text);
  assert.deepEqual(Object.keys(body), ["error"], `${what}: ${text}`);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message"], `${what}: ${text}`);
  assert.equal(body.error.code, code, `${what}: ${text}`);
  assert.equal(typeof body.error.message, "string");
  return body.error;
}

/** The server's provider key never reaches a client, in a body or in a header. */
export function assertNoKey(res: { headers: Headers; text: string }, what: string) {
  assert.ok(!res.text.includes(FAKE_LLM_API_KEY), `${what}: the provider key is in the body`);
  for (const [name, value] of res.headers) {
    assert.ok(!value.includes(FAKE_LLM_API_KEY), `${what}: the provider key is in header ${name}`);
  }
}

/** The data of each server-sent event of a raw SSE body. */
export const sseData = (text: string) =>
  text.split(/\r?\n\r?\n/).map((event) =>
    event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n")
  ).filter((d) => d !== "");

/** The database reads and the test user of one test file (its connection, its users for the teardown). */
export function gatewayKit(sql: Sql, users: TestUser[]) {
  /** A new user (free plan) with `credit` tokens, and an HS256 access token for them. */
  async function newUser(credit = 5_000_000): Promise<GwUser> {
    const user = await createTestUser(sql);
    users.push(user);
    if (credit > 0) {
      await sql`select private.update_user_token_balance(
        p_user_id => ${user.id}, p_delta => ${credit}, p_reason => 'adjustment',
        p_reference => ${`test-credit:${user.id}`})`;
    }
    return { ...user, token: await hs256(userClaims(user.id, user.email)) };
  }

  /** The call's token_usage row; settlement runs after the response, so this waits for it (up to 5 s). */
  async function usageRow(requestId: string, timeoutMs = 5000): Promise<UsageRow> {
    const until = Date.now() + timeoutMs;
    while (true) {
      const rows = await sql<UsageRow[]>`
        select user_id, provider, model, input_tokens::int, cached_input_tokens::int, cache_write_tokens::int,
               output_tokens::int, reasoning_tokens::int,
               cost_micro_usd::float8 as cost_micro_usd, pricing_id::int as pricing_id, price_missing,
               tokens_estimated, debited_tokens::int, status, http_status
          from public.token_usage where request_id = ${requestId}`;
      if (rows.length) return { ...rows[0] };
      if (Date.now() > until) {
        assert.fail(`no token_usage row for request ${requestId} after ${timeoutMs} ms`);
      }
      await sleep(100);
    }
  }

  async function balanceOf(userId: string): Promise<{ balance: number; held: number }> {
    const [row] = await sql`select balance::float8 as balance, held::float8 as held
                              from public.token_balances where user_id = ${userId}`;
    return { balance: row.balance, held: row.held };
  }

  /** Waits until nothing is held for the user any more (the hold of a call is released when it settles). */
  async function heldSettles(userId: string, timeoutMs = 5000): Promise<number> {
    const until = Date.now() + timeoutMs;
    while (true) {
      const { held } = await balanceOf(userId);
      if (held === 0 || Date.now() > until) return held;
      await sleep(100);
    }
  }

  const ledgerFor = async (requestId: string) =>
    (await sql`select delta::int, reason from public.token_transactions where reference = ${`usage:${requestId}`}`)
      .map((r) => ({ ...r }));

  return { newUser, usageRow, balanceOf, heldSettles, ledgerFor };
}
