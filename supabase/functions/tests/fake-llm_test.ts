// The fake LLM upstreams speak the providers' real wire formats: the official SDKs, pointed straight at the fake
// (only base URL and key changed), parse its answers, streams, usage, errors and tool calls (OpenAI chat and
// Responses, Anthropic, Gemini); the AI SDK runs a tool loop against it for each. No stack, no env vars.
import assert from "node:assert/strict";
import OpenAI from "npm:openai@7.57.0";
import Anthropic from "npm:@anthropic-ai/sdk@1.13.0";
import { ApiError, GoogleGenAI } from "npm:@google/genai@3.3.0";
import { generateText, jsonSchema, type LanguageModel, stepCountIs, streamText, tool } from "npm:ai@7.0.173";
import { createOpenAI } from "npm:@ai-sdk/openai@4.0.118";
import { createAnthropic } from "npm:@ai-sdk/anthropic@4.0.105";
import { createGoogleGenerativeAI } from "npm:@ai-sdk/google@4.0.121";
import {
  FAKE_LLM_API_KEY,
  type FakeLlm,
  type FakeLlmScript,
  lastUserText,
  lastUserTextIn,
  LLM_PROVIDERS,
  type LlmProvider,
  reportedUsage,
  splitReply,
  startFakeLlm,
  toolResultsIn,
} from "./_lib/fake-llm.ts";

const KEY = FAKE_LLM_API_KEY;
const WRONG = "sk-this-key-is-wrong-1234";

const openai = (fake: FakeLlm, apiKey = KEY) =>
  new OpenAI({ apiKey, baseURL: fake.baseUrls.openai, maxRetries: 0 });
const perplexity = (fake: FakeLlm, apiKey = KEY) => new OpenAI({ apiKey, baseURL: fake.url, maxRetries: 0 });
const anthropic = (fake: FakeLlm, apiKey = KEY) =>
  new Anthropic({ apiKey, baseURL: fake.url, maxRetries: 0 });
const google = (fake: FakeLlm, apiKey = KEY) =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: fake.url } });

const userSays = (content: string) => [{ role: "user" as const, content }];
const googleSays = (text: string) => [{ role: "user", parts: [{ text }] }];

/** Runs `fn` and returns what it threw (fails if it did not throw). */
async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail("expected an error");
}

// ------------------------------------------------------------------------------------------ OpenAI

Deno.test("openai SDK: a chat completion has the echo reply and exactly the scripted usage", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 120, outputTokens: 45, cachedTokens: 20, reasoningTokens: 5 });
  const completion = await openai(fake).chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "system", content: "be brief" }, ...userSays("Hello fake")],
  });
  assert.equal(completion.object, "chat.completion");
  assert.match(completion.id, /^chatcmpl-/);
  assert.equal(completion.model, "gpt-4o-mini");
  assert.equal(completion.choices[0].message.content, "echo: Hello fake");
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.equal(completion.usage?.prompt_tokens, 120);
  assert.equal(completion.usage?.completion_tokens, 45);
  assert.equal(completion.usage?.total_tokens, 165);
  assert.equal(completion.usage?.prompt_tokens_details?.cached_tokens, 20);
  assert.equal(completion.usage?.completion_tokens_details?.reasoning_tokens, 5);
  assert.deepEqual(
    completion.usage,
    reportedUsage("openai", { inputTokens: 120, outputTokens: 45, cachedTokens: 20, reasoningTokens: 5 }),
  );

  assert.equal(fake.calls.length, 1);
  const call = fake.calls[0];
  assert.equal(call.provider, "openai");
  assert.equal(call.method, "POST");
  assert.equal(call.path, "/v1/chat/completions");
  assert.equal(call.headers.authorization, `Bearer ${KEY}`);
  assert.equal(call.model, "gpt-4o-mini");
  assert.equal(call.stream, false);
  assert.deepEqual((call.body as { messages: unknown }).messages, [
    { role: "system", content: "be brief" },
    { role: "user", content: "Hello fake" },
  ]);
  assert.equal(await call.settled, "completed");
});

Deno.test("openai SDK: a stream without stream_options sends content chunks and no usage chunk", async () => {
  await using fake = await startFakeLlm();
  const stream = await openai(fake).chat.completions.create({
    model: "gpt-4o-mini",
    messages: userSays("stream me"),
    stream: true,
  });
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  // role chunk, 5 content chunks, finish chunk
  assert.equal(chunks.length, 7);
  assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id));
  assert.ok(chunks.every((c) => !("usage" in c)), "no usage field at all unless asked for");
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const pieces = chunks.slice(1, 6).map((c) => c.choices[0].delta.content);
  assert.deepEqual(pieces, splitReply("echo: stream me", 5));
  assert.equal(pieces.join(""), "echo: stream me");
  assert.equal(chunks.at(-1)?.choices[0].finish_reason, "stop");
  assert.equal(fake.calls[0].stream, true);
  assert.equal(fake.calls[0].chunksSent, 5);
});

Deno.test("openai SDK: stream_options.include_usage adds a last chunk with empty choices and the usage", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 120, outputTokens: 45, cachedTokens: 20, chunks: 3 });
  const stream = await openai(fake).chat.completions.create({
    model: "gpt-4o",
    messages: userSays("count me"),
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 1 + 3 + 1 + 1);
  const last = chunks.at(-1)!;
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage?.prompt_tokens, 120);
  assert.equal(last.usage?.completion_tokens, 45);
  assert.equal(last.usage?.total_tokens, 165);
  assert.equal(last.usage?.prompt_tokens_details?.cached_tokens, 20);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null), "usage: null on every other chunk");
  assert.equal(chunks.at(-2)?.choices[0].finish_reason, "stop");
});

Deno.test("openai SDK: the chat-completion stream helper yields the final content and usage", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "a fixed reply", inputTokens: 30, outputTokens: 4 });
  const runner = openai(fake).chat.completions.stream({
    model: "gpt-4o-mini",
    messages: userSays("ignored"),
    stream_options: { include_usage: true },
  });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, "a fixed reply");
  assert.equal(final.usage?.prompt_tokens, 30);
  assert.equal(final.usage?.completion_tokens, 4);
});

// -------------------------------------------------------------------------------------- Perplexity

Deno.test("perplexity via the openai SDK (base URL without /v1): a completion has citations and search_results", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 14, outputTokens: 70 });
  const completion = await perplexity(fake).chat.completions.create({
    model: "sonar",
    messages: userSays("news?"),
  });
  assert.equal(fake.calls[0].path, "/chat/completions");
  assert.equal(fake.calls[0].provider, "perplexity");
  assert.equal(completion.choices[0].message.content, "echo: news?");
  assert.equal(completion.usage?.prompt_tokens, 14);
  assert.equal(completion.usage?.completion_tokens, 70);
  assert.equal(completion.usage?.total_tokens, 84);
  const extra = completion as unknown as { citations: string[]; search_results: { url: string }[] };
  assert.equal(extra.citations.length, 2);
  assert.deepEqual(extra.search_results.map((r) => r.url), extra.citations);
});

Deno.test("perplexity via the openai SDK: every stream chunk carries cumulative usage, the last the full count", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 14, outputTokens: 10, chunks: 4 });
  const stream = await perplexity(fake).chat.completions.create({
    model: "sonar",
    messages: userSays("tell me"),
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 4 + 1);
  assert.deepEqual(chunks.map((c) => c.usage?.completion_tokens), [2, 5, 7, 10, 10]);
  assert.ok(chunks.every((c) => c.usage?.prompt_tokens === 14));
  assert.equal(chunks.map((c) => c.choices[0].delta.content).join(""), "echo: tell me");
  assert.equal(chunks.at(-1)?.choices[0].finish_reason, "stop");
  assert.ok(chunks.every((c) => (c as unknown as { citations: string[] }).citations.length === 2));
});

// --------------------------------------------------------------------------------------- Anthropic

Deno.test("anthropic SDK: a message has the echo reply and Anthropic's split of cached input", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 120, outputTokens: 45, cachedTokens: 20, cacheCreationTokens: 30 });
  const message = await anthropic(fake).messages.create({
    model: "claude-sonnet-5-5",
    max_tokens: 1024,
    messages: userSays("Hi Claude"),
  });
  assert.equal(message.type, "message");
  assert.match(message.id, /^msg_/);
  assert.equal(message.role, "assistant");
  assert.deepEqual(message.content.map((b) => b.type === "text" ? b.text : b.type), ["echo: Hi Claude"]);
  assert.equal(message.stop_reason, "end_turn");
  assert.equal(message.usage.input_tokens, 70, "uncached input only: 120 - 20 read - 30 written");
  assert.equal(message.usage.cache_read_input_tokens, 20);
  assert.equal(message.usage.cache_creation_input_tokens, 30);
  assert.equal(message.usage.output_tokens, 45);

  const call = fake.calls[0];
  assert.equal(call.path, "/v1/messages");
  // SDK 1.x speaks API version 2026-10-21 and sends the key as a bearer token
  assert.equal(call.headers.authorization, `Bearer ${KEY}`);
  assert.equal(call.headers["anthropic-version"], "2026-10-21");
  assert.equal((call.body as { max_tokens: number }).max_tokens, 1024);
});

Deno.test("anthropic SDK: stream: true yields the event sequence with usage in message_start and message_delta", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 50, outputTokens: 12, chunks: 3 });
  const stream = await anthropic(fake).messages.create({
    model: "claude-haiku-5-5",
    max_tokens: 100,
    messages: userSays("stream"),
    stream: true,
  });
  const events = [];
  for await (const event of stream) events.push(event);
  assert.deepEqual(events.map((e) => e.type), [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
  ]); // the ping between them is swallowed by the SDK, as with the real API
  const start = events[0];
  assert.ok(start.type === "message_start");
  assert.equal(start.message.usage.input_tokens, 50);
  assert.equal(start.message.usage.output_tokens, 1);
  const text = events.map((e) =>
    e.type === "content_block_delta" && e.delta.type === "text_delta" ? e.delta.text : ""
  )
    .join("");
  assert.equal(text, "echo: stream");
  const delta = events[6];
  assert.ok(delta.type === "message_delta");
  assert.equal(delta.usage.output_tokens, 12);
  assert.equal(delta.delta.stop_reason, "end_turn");
});

Deno.test("anthropic SDK: messages.stream() finalMessage has the full text and final usage", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 120, outputTokens: 45, cachedTokens: 20, stopReason: "length" });
  const stream = anthropic(fake).messages.stream({
    model: "claude-sonnet-5-5",
    max_tokens: 45,
    messages: userSays("long story"),
  });
  const texts: string[] = [];
  stream.on("text", (t) => texts.push(t));
  const final = await stream.finalMessage();
  assert.equal(texts.length, 5);
  assert.equal(texts.join(""), "echo: long story");
  assert.deepEqual(final.content.map((b) => b.type === "text" ? b.text : b.type), ["echo: long story"]);
  assert.equal(final.stop_reason, "max_tokens");
  assert.equal(final.usage.input_tokens, 100);
  assert.equal(final.usage.cache_read_input_tokens, 20);
  assert.equal(final.usage.output_tokens, 45);
});

// ------------------------------------------------------------------------------------------ Gemini

Deno.test("genai SDK: generateContent has the echo reply and usageMetadata with cached and thought tokens", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 120, outputTokens: 45, cachedTokens: 20, reasoningTokens: 15 });
  const response = await google(fake).models.generateContent({
    model: "gemini-2.5-flash",
    contents: "Hi Gemini",
  });
  assert.equal(response.text, "echo: Hi Gemini");
  assert.equal(response.candidates?.[0].finishReason, "STOP");
  assert.equal(response.usageMetadata?.promptTokenCount, 120);
  assert.equal(response.usageMetadata?.candidatesTokenCount, 30, "output minus thoughts");
  assert.equal(response.usageMetadata?.thoughtsTokenCount, 15);
  assert.equal(response.usageMetadata?.cachedContentTokenCount, 20);
  assert.equal(response.usageMetadata?.totalTokenCount, 165);

  const call = fake.calls[0];
  assert.equal(call.provider, "google");
  assert.equal(call.path, "/v1/models/gemini-2.5-flash:generateContent");
  assert.equal(call.model, "gemini-2.5-flash");
  assert.equal(call.headers["x-goog-api-key"], KEY);
  assert.equal(call.stream, false);
});

Deno.test("genai SDK: without cache or thoughts usageMetadata omits those counts", async () => {
  await using fake = await startFakeLlm();
  const response = await google(fake).models.generateContent({ model: "gemini-2.5-flash", contents: "x" });
  assert.equal(response.usageMetadata?.promptTokenCount, 11);
  assert.equal(response.usageMetadata?.candidatesTokenCount, 7);
  assert.equal(response.usageMetadata?.totalTokenCount, 18);
  assert.equal(response.usageMetadata?.cachedContentTokenCount, undefined);
  assert.equal(response.usageMetadata?.thoughtsTokenCount, undefined);
});

Deno.test("genai SDK: generateContentStream chunks carry cumulative usage and the last one STOP", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 40, outputTokens: 9, chunks: 3 });
  const stream = await google(fake).models.generateContentStream({
    model: "gemini-2.5-pro",
    contents: googleSays("stream please"),
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.equal(chunks.length, 3);
  assert.equal(chunks.map((c) => c.text).join(""), "echo: stream please");
  assert.deepEqual(chunks.map((c) => c.usageMetadata?.candidatesTokenCount), [3, 6, 9]);
  assert.deepEqual(chunks.map((c) => c.usageMetadata?.totalTokenCount), [43, 46, 49]);
  assert.deepEqual(chunks.map((c) => c.candidates?.[0].finishReason), [undefined, undefined, "STOP"]);
  const call = fake.calls[0];
  assert.equal(call.path, "/v1/models/gemini-2.5-pro:streamGenerateContent");
  assert.equal(call.query.alt, "sse");
  assert.equal(call.stream, true);
});

// ------------------------------------------------------------------------------------------ errors

Deno.test("a wrong key makes each SDK throw its own authentication error", async () => {
  await using fake = await startFakeLlm();
  const oa = await thrown(() =>
    openai(fake, WRONG).chat.completions.create({ model: "gpt-4o", messages: userSays("x") })
  );
  assert.ok(oa instanceof OpenAI.AuthenticationError);
  assert.equal(oa.status, 401);
  assert.equal(oa.code, "invalid_api_key");
  assert.equal(oa.type, "invalid_request_error");

  const px = await thrown(() =>
    perplexity(fake, WRONG).chat.completions.create({ model: "sonar", messages: userSays("x") })
  );
  assert.ok(px instanceof OpenAI.AuthenticationError);
  assert.equal(px.status, 401);

  const an = await thrown(() =>
    anthropic(fake, WRONG).messages.create({ model: "claude-x", max_tokens: 10, messages: userSays("x") })
  );
  assert.ok(an instanceof Anthropic.AuthenticationError);
  assert.equal(an.status, 401);
  assert.deepEqual((an.error as { error: unknown }).error, {
    type: "authentication_error",
    message: "invalid x-api-key",
  });

  const ge = await thrown(() =>
    google(fake, WRONG).models.generateContent({ model: "gemini-2.5-flash", contents: "x" })
  );
  assert.ok(ge instanceof ApiError);
  assert.equal(ge.status, 400);
  assert.match(ge.message, /API_KEY_INVALID/);

  assert.equal(fake.calls.length, 4, "refused requests are recorded too");
  assert.ok(fake.calls.every((c) => c.status === (c.provider === "google" ? 400 : 401)));
});

Deno.test("an injected status reaches each SDK as its error for that status, in the provider's shape", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ status: 429, retryAfter: 7, errorMessage: "slow down" });
  const oa = await thrown(() =>
    openai(fake).chat.completions.create({ model: "gpt-4o", messages: userSays("x") })
  );
  assert.ok(oa instanceof OpenAI.RateLimitError);
  assert.equal(oa.headers?.get("retry-after"), "7");
  assert.equal(oa.message, "429 slow down");

  fake.setScript({ status: 529 });
  const an = await thrown(() =>
    anthropic(fake).messages.create({ model: "claude-x", max_tokens: 10, messages: userSays("x") })
  );
  assert.ok(an instanceof Anthropic.APIError);
  assert.equal(an.status, 529);
  assert.equal((an.error as { error: { type: string } }).error.type, "overloaded_error");

  fake.setScript({ status: 503 });
  const ge = await thrown(() =>
    google(fake).models.generateContent({ model: "gemini-2.5-flash", contents: "x" })
  );
  assert.ok(ge instanceof ApiError);
  assert.equal(ge.status, 503);
  assert.match(ge.message, /UNAVAILABLE/);

  fake.setScript({ status: 500 });
  const px = await thrown(() =>
    perplexity(fake).chat.completions.create({ model: "sonar", messages: userSays("x") })
  );
  assert.ok(px instanceof OpenAI.InternalServerError);
  assert.equal(px.status, 500);
});

Deno.test("a script with times applies to the next matching requests only, then the standing script is back", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "standing" });
  fake.setScript({ status: 500, times: 2, provider: "openai" });
  const client = openai(fake);
  const ask = () => client.chat.completions.create({ model: "gpt-4o", messages: userSays("x") });
  assert.ok(await thrown(ask) instanceof OpenAI.InternalServerError);
  // another provider is not affected
  const message = await anthropic(fake).messages.create({
    model: "c",
    max_tokens: 5,
    messages: userSays("x"),
  });
  assert.deepEqual(message.content.map((b) => b.type === "text" ? b.text : ""), ["standing"]);
  assert.ok(await thrown(ask) instanceof OpenAI.InternalServerError);
  assert.equal((await ask()).choices[0].message.content, "standing");
  assert.deepEqual(fake.calls.map((c) => c.status), [500, 200, 500, 200]);
});

Deno.test("an error after some chunks reaches each SDK as a mid-stream error", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ errorAfterChunks: 2, streamErrorStatus: 529, provider: "anthropic" });
  fake.setScript({ errorAfterChunks: 2, streamErrorStatus: 503, provider: ["openai", "google"] });

  let texts = "";
  const oa = await thrown(async () => {
    const stream = await openai(fake).chat.completions.create({
      model: "gpt-4o",
      messages: userSays("abcdefghij"),
      stream: true,
    });
    for await (const c of stream) texts += c.choices[0]?.delta.content ?? "";
  });
  assert.ok(oa instanceof OpenAI.APIError);
  assert.equal(texts, splitReply("echo: abcdefghij", 5).slice(0, 2).join(""));

  const an = await thrown(async () => {
    const stream = anthropic(fake).messages.stream({ model: "c", max_tokens: 5, messages: userSays("x") });
    await stream.finalMessage();
  });
  assert.ok(an instanceof Anthropic.APIError);
  assert.equal((an.error as { error: { type: string } }).error.type, "overloaded_error");

  const ge = await thrown(async () => {
    const stream = await google(fake).models.generateContentStream({ model: "g", contents: "x" });
    for await (const _ of stream) { /* drain */ }
  });
  assert.ok(ge instanceof ApiError);
  assert.equal(ge.status, 503);
  assert.deepEqual(fake.calls.map((c) => c.chunksSent), [2, 2, 2]);
});

// ------------------------------------------------------------------------------------------ aborts

Deno.test("openai SDK: breaking out of a hanging stream is observed by the fake as an abort", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ hangAfterChunks: 2 });
  const stream = await openai(fake).chat.completions.create({
    model: "gpt-4o",
    messages: userSays("hang on"),
    stream: true,
  });
  let content = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) content++;
    if (content === 2) break;
  }
  const call = fake.calls[0];
  assert.equal(await call.settled, "aborted");
  assert.equal(call.aborted, true);
  assert.equal(call.completed, false);
  assert.equal(call.chunksSent, 2);
});

Deno.test("anthropic SDK: aborting a slow stream mid-way is observed by the fake", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ chunkDelayMs: 20, chunks: 50 });
  const stream = anthropic(fake).messages.stream({ model: "c", max_tokens: 5, messages: userSays("x") });
  let deltas = 0;
  stream.on("text", () => {
    if (++deltas === 3) stream.abort();
  });
  await assert.rejects(stream.finalMessage(), Anthropic.APIUserAbortError);
  const call = fake.calls[0];
  assert.equal(await call.settled, "aborted");
  assert.ok(call.chunksSent >= 3 && call.chunksSent < 50, `sent ${call.chunksSent}`);
});

Deno.test("genai SDK: an abortSignal fired mid-stream is observed by the fake", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ hangAfterChunks: 1 });
  const controller = new AbortController();
  const stream = await google(fake).models.generateContentStream({
    model: "gemini-2.5-flash",
    contents: "x",
    config: { abortSignal: controller.signal },
  });
  await assert.rejects(async () => {
    for await (const _ of stream) controller.abort();
  });
  assert.equal(await fake.calls[0].settled, "aborted");
  assert.equal(fake.calls[0].chunksSent, 1);
});

Deno.test("delayMs holds the answer back: an SDK timeout fires first and nothing was answered", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ delayMs: 60_000 });
  const client = new OpenAI({ apiKey: KEY, baseURL: fake.baseUrls.openai, maxRetries: 0, timeout: 100 });
  const e = await thrown(() => client.chat.completions.create({ model: "gpt-4o", messages: userSays("x") }));
  assert.ok(e instanceof OpenAI.APIConnectionTimeoutError);
  const call = fake.calls[0];
  assert.equal(call.status, 0);
  assert.equal(call.completed, false);
  // Whether Deno notices this client going away before any header is sent depends on the request's size, so
  // the exchange is only certain to end (as aborted) when the fake stops.
  await fake.stop();
  assert.equal(await call.settled, "aborted");
});

Deno.test("stop() ends requests that are still hanging, as aborted", async () => {
  const fake = await startFakeLlm();
  fake.setScript({ hangAfterChunks: 0 });
  const pending = fetch(`${fake.baseUrls.openai}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "m", messages: userSays("x") }),
  }).then((r) => r.body?.cancel(), () => undefined);
  const [call] = await fake.waitForCalls(1);
  await fake.stop();
  assert.equal(await call.settled, "aborted");
  await pending;
});

// --------------------------------------------------------------------------- wire details, raw HTTP

Deno.test("raw SSE framing: OpenAI data lines and [DONE], Anthropic event lines, Gemini CRLF events", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "ab", chunks: 2 });
  const post = (path: string, headers: Record<string, string>, body: unknown) =>
    fetch(fake.url + path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });

  const oa = await post("/v1/chat/completions", { authorization: `Bearer ${KEY}` }, {
    model: "m",
    messages: userSays("x"),
    stream: true,
  });
  assert.equal(oa.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const oaText = await oa.text();
  assert.ok(oaText.endsWith("\n\ndata: [DONE]\n\n"));
  assert.ok(oaText.split("\n\n").filter(Boolean).every((e) => e.startsWith("data: ")));

  const an = await post("/v1/messages", { "x-api-key": KEY, "anthropic-version": "2023-06-01" }, {
    model: "m",
    max_tokens: 5,
    messages: userSays("x"),
    stream: true,
  });
  const anEvents = (await an.text()).split("\n\n").filter(Boolean).map((e) => e.split("\n")[0]);
  assert.deepEqual(anEvents, [
    "event: message_start",
    "event: content_block_start",
    "event: ping",
    "event: content_block_delta",
    "event: content_block_delta",
    "event: content_block_stop",
    "event: message_delta",
    "event: message_stop",
  ]);

  const ge = await post("/v1beta/models/g:streamGenerateContent?alt=sse", { "x-goog-api-key": KEY }, {
    contents: googleSays("x"),
  });
  const geText = await ge.text();
  assert.equal(geText.split("\r\n\r\n").filter(Boolean).length, 2);
  assert.ok(geText.startsWith("data: {") && geText.endsWith("}\r\n\r\n"));
});

Deno.test("raw HTTP: Gemini accepts ?key=, refuses a missing key with 403, and requests are validated as upstream does", async () => {
  await using fake = await startFakeLlm();
  const post = (path: string, headers: Record<string, string>, body: unknown) =>
    fetch(fake.url + path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));

  const ok = await post(`/v1beta/models/g:generateContent?key=${KEY}`, {}, { contents: googleSays("q") });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.candidates[0].content.parts[0].text, "echo: q");

  const missing = await post("/v1beta/models/g:generateContent", {}, { contents: googleSays("q") });
  assert.equal(missing.status, 403);
  assert.equal(missing.body.error.status, "PERMISSION_DENIED");

  const noContents = await post("/v1beta/models/g:generateContent", { "x-goog-api-key": KEY }, {});
  assert.equal(noContents.status, 400);
  assert.equal(noContents.body.error.status, "INVALID_ARGUMENT");

  const noMaxTokens = await post("/v1/messages", { "x-api-key": KEY, "anthropic-version": "2023-06-01" }, {
    model: "c",
    messages: userSays("x"),
  });
  assert.equal(noMaxTokens.status, 400);
  assert.deepEqual(noMaxTokens.body.error, {
    type: "invalid_request_error",
    message: "max_tokens: Field required",
  });

  const noVersion = await post("/v1/messages", { "x-api-key": KEY }, {
    model: "c",
    max_tokens: 1,
    messages: [],
  });
  assert.equal(noVersion.status, 400);

  const sampling = { model: "c", max_tokens: 1, messages: userSays("x"), temperature: 1 };
  const oldVersion = await post(
    "/v1/messages",
    { "x-api-key": KEY, "anthropic-version": "2023-06-01" },
    sampling,
  );
  assert.equal(oldVersion.status, 200);
  const newVersion = await post("/v1/messages", {
    authorization: `Bearer ${KEY}`,
    "anthropic-version": "2026-10-21",
  }, sampling);
  assert.equal(newVersion.status, 400);
  assert.equal(newVersion.body.error.message, "temperature: Extra inputs are not permitted");

  const noMessages = await post("/v1/chat/completions", { authorization: `Bearer ${KEY}` }, { model: "m" });
  assert.equal(noMessages.status, 400);
  assert.equal(noMessages.body.error.code, "missing_required_parameter");

  const noKey = await post("/v1/chat/completions", {}, { model: "m", messages: [] });
  assert.equal(noKey.status, 401);
  assert.deepEqual(Object.keys(noKey.body.error).sort(), ["code", "message", "param", "type"]);

  const unknown = await fetch(`${fake.url}/v2/nothing`, { method: "POST" });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
});

Deno.test("many concurrent requests across providers all succeed with distinct ids and recorded calls", async () => {
  await using fake = await startFakeLlm();
  const oa = openai(fake);
  const an = anthropic(fake);
  const ge = google(fake);
  const px = perplexity(fake);
  const answers = await Promise.all(Array.from({ length: 200 }, async (_, i): Promise<[string, string]> => {
    const ask = `n${i}`;
    switch (i % 4) {
      case 0: {
        const r = await oa.chat.completions.create({ model: "m", messages: userSays(ask) });
        return [r.id, r.choices[0].message.content ?? ""];
      }
      case 1: {
        const r = await an.messages.create({ model: "m", max_tokens: 5, messages: userSays(ask) });
        return [r.id, r.content[0].type === "text" ? r.content[0].text : ""];
      }
      case 2: {
        const r = await ge.models.generateContent({ model: "m", contents: ask });
        return [r.responseId ?? "", r.text ?? ""];
      }
      default: {
        const r = await px.chat.completions.create({ model: "sonar", messages: userSays(ask) });
        return [r.id, r.choices[0].message.content ?? ""];
      }
    }
  }));
  assert.equal(new Set(answers.map(([id]) => id)).size, 200);
  assert.deepEqual(answers.map(([, text]) => text), answers.map((_, i) => `echo: n${i}`));
  assert.equal(fake.calls.length, 200);
  assert.deepEqual(fake.counts, { openai: 50, anthropic: 50, google: 50, perplexity: 50 });
});

Deno.test("setScript refuses inconsistent numbers", async () => {
  await using fake = await startFakeLlm();
  assert.throws(() => fake.setScript({ cachedTokens: 12 }), TypeError); // more than the default 11 input
  assert.throws(() => fake.setScript({ reasoningTokens: 8, outputTokens: 7 }), TypeError);
  assert.throws(() => fake.setScript({ chunks: 0 }), TypeError);
  assert.throws(() => fake.setScript({ status: 200 }), TypeError);
  assert.throws(() => fake.setScript({ inputTokens: 1.5 }), TypeError);
});

// ------------------------------------------------------------------- usage, byteChunks, crlf options

/** A minimal valid request to each provider, as raw HTTP (OpenAI streams ask for the usage chunk). */
function rawRequest(fake: FakeLlm, p: LlmProvider, stream: boolean, text = "x"): Promise<Response> {
  const [path, headers, body]: [string, Record<string, string>, unknown] = {
    openai: (): [string, Record<string, string>, unknown] => [
      "/v1/chat/completions",
      { authorization: `Bearer ${KEY}` },
      {
        model: "m",
        messages: userSays(text),
        stream,
        ...(stream && { stream_options: { include_usage: true } }),
      },
    ],
    perplexity: (): [string, Record<string, string>, unknown] => [
      "/chat/completions",
      { authorization: `Bearer ${KEY}` },
      { model: "sonar", messages: userSays(text), stream },
    ],
    anthropic: (): [string, Record<string, string>, unknown] => [
      "/v1/messages",
      { "x-api-key": KEY, "anthropic-version": "2023-06-01" },
      { model: "c", max_tokens: 5, messages: userSays(text), stream },
    ],
    google: (): [string, Record<string, string>, unknown] => [
      stream ? "/v1beta/models/g:streamGenerateContent?alt=sse" : "/v1beta/models/g:generateContent",
      { "x-goog-api-key": KEY },
      { contents: googleSays(text) },
    ],
  }[p]();
  return fetch(fake.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** The JSON payloads of an SSE body (either line end), without [DONE]; a non-stream body is one payload. */
function payloads(text: string, stream: boolean): Record<string, unknown>[] {
  if (!stream) return [JSON.parse(text)];
  return text.split(/\r?\n/).filter((l) => l.startsWith("data: ") && l !== "data: [DONE]")
    .map((l) => JSON.parse(l.slice(6)));
}

/** Every non-null value under a `usage` or `usageMetadata` key, at any depth. */
function usagesIn(x: unknown): Record<string, unknown>[] {
  if (!x || typeof x !== "object") return [];
  return Object.entries(x).flatMap(([k, v]) =>
    (k === "usage" || k === "usageMetadata") && v !== null ? [v as Record<string, unknown>] : usagesIn(v)
  );
}

/** The reply text a payload carries (a stream's delta, or a non-stream answer's content). */
function textIn(p: LlmProvider, stream: boolean, x: Record<string, unknown>): string {
  // deno-lint-ignore no-explicit-any
  const a = x as any;
  switch (p) {
    case "openai":
    case "perplexity":
      // Perplexity sends both in both (a non-stream delta is empty, a stream's message is the text so far)
      return (stream ? a.choices?.[0]?.delta?.content : a.choices?.[0]?.message?.content) ?? "";
    case "anthropic":
      return (stream ? a.delta?.text : a.content?.[0]?.text) ?? "";
    case "google":
      return a.candidates?.[0]?.content?.parts?.[0]?.text ?? "";
  }
}

Deno.test('usage "omit": no provider reports usage anywhere, in answers or streams (raw HTTP)', async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ usage: "omit", chunks: 3 });
  for (const p of LLM_PROVIDERS) {
    assert.equal(reportedUsage(p, { usage: "omit" }), null);
    for (const stream of [false, true]) {
      const res = await rawRequest(fake, p, stream);
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.ok(!text.includes('"usage'), `${p} stream=${stream} has no usage key: ${text}`);
      const events = payloads(text, stream);
      assert.equal(events.map((e) => textIn(p, stream, e)).join(""), "echo: x", `${p} stream=${stream}`);
    }
  }
  // OpenAI: asked for usage, the stream still ends without a usage chunk (role, 3 content, finish, [DONE])
  const oa = await (await rawRequest(fake, "openai", true)).text();
  assert.equal(payloads(oa, true).length, 1 + 3 + 1);
  assert.ok(oa.endsWith("data: [DONE]\n\n"));
});

Deno.test('usage "omit": the SDKs see no usage, and streams still parse', async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ usage: "omit" });

  const oa = await openai(fake).chat.completions.create({ model: "m", messages: userSays("q") });
  assert.equal(oa.choices[0].message.content, "echo: q");
  assert.ok(!("usage" in oa));
  const oaChunks = [];
  for await (
    const c of await openai(fake).chat.completions.create({
      model: "m",
      messages: userSays("q"),
      stream: true,
      stream_options: { include_usage: true },
    })
  ) oaChunks.push(c);
  assert.equal(oaChunks.length, 1 + 5 + 1, "no usage chunk although include_usage was asked");
  assert.ok(oaChunks.every((c) => !("usage" in c)));

  const px = await perplexity(fake).chat.completions.create({ model: "sonar", messages: userSays("q") });
  assert.ok(!("usage" in px));
  const pxChunks = [];
  for await (
    const c of await perplexity(fake).chat.completions.create({
      model: "sonar",
      messages: userSays("q"),
      stream: true,
    })
  ) pxChunks.push(c);
  assert.equal(pxChunks.length, 5 + 1);
  assert.ok(pxChunks.every((c) => !("usage" in c)));
  assert.equal(pxChunks.map((c) => c.choices[0].delta.content).join(""), "echo: q");

  const an = await anthropic(fake).messages.create({ model: "c", max_tokens: 5, messages: userSays("q") });
  assert.equal(an.usage, undefined);
  const anEvents = [];
  for await (
    const e of await anthropic(fake).messages.create({
      model: "c",
      max_tokens: 5,
      messages: userSays("q"),
      stream: true,
    })
  ) anEvents.push(e);
  const start = anEvents[0];
  assert.ok(start.type === "message_start");
  assert.ok(!("usage" in start.message));
  const delta = anEvents.find((e) => e.type === "message_delta");
  assert.ok(delta && !("usage" in delta));
  assert.equal(anEvents.at(-1)?.type, "message_stop");

  const ge = await google(fake).models.generateContent({ model: "g", contents: "q" });
  assert.equal(ge.text, "echo: q");
  assert.equal(ge.usageMetadata, undefined);
  const geChunks = [];
  for await (const c of await google(fake).models.generateContentStream({ model: "g", contents: "q" })) {
    geChunks.push(c);
  }
  assert.equal(geChunks.length, 5);
  assert.ok(geChunks.every((c) => c.usageMetadata === undefined));
  assert.equal(geChunks.map((c) => c.text).join(""), "echo: q");
});

const ODD_USAGE: Record<LlmProvider, Record<string, unknown>> = {
  openai: { prompt_tokens: 12.5 },
  perplexity: { completion_tokens: "12" },
  anthropic: { output_tokens: -1 },
  google: { candidatesTokenCount: 1e20 },
};

Deno.test("a usage object is merged into every usage object each provider sends, values as given (raw HTTP)", async () => {
  await using fake = await startFakeLlm();
  for (const p of LLM_PROVIDERS) fake.setScript({ provider: p, usage: ODD_USAGE[p], chunks: 3 });
  // usage objects per answer: non-stream 1; streams: OpenAI's usage chunk, every Perplexity chunk (3 + finish),
  // Anthropic message_start and message_delta, every Gemini chunk
  const perStream: Record<LlmProvider, number> = { openai: 1, perplexity: 4, anthropic: 2, google: 3 };
  for (const p of LLM_PROVIDERS) {
    const reported = reportedUsage(p, { usage: ODD_USAGE[p] });
    assert.deepEqual(reported, { ...reportedUsage(p), ...ODD_USAGE[p] }, "the fake's own fields stay");
    for (const stream of [false, true]) {
      const res = await rawRequest(fake, p, stream);
      const usages = payloads(await res.text(), stream).flatMap(usagesIn);
      assert.equal(usages.length, stream ? perStream[p] : 1, `${p} stream=${stream}`);
      for (const u of usages) {
        for (const [k, v] of Object.entries(ODD_USAGE[p])) assert.equal(u[k], v, `${p} ${k}`);
      }
      // the final usage object is exactly what reportedUsage says
      if (p !== "anthropic" || !stream) assert.deepEqual(usages.at(-1), reported, `${p} stream=${stream}`);
    }
  }
});

Deno.test("a usage object reaches the SDKs unchanged, streaming and not", async () => {
  await using fake = await startFakeLlm();
  for (const p of LLM_PROVIDERS) fake.setScript({ provider: p, usage: ODD_USAGE[p], chunks: 2 });

  const oa = await openai(fake).chat.completions.create({ model: "m", messages: userSays("q") });
  assert.equal(oa.usage?.prompt_tokens, 12.5);
  assert.equal(oa.usage?.completion_tokens, 7);
  assert.deepEqual(oa.usage, reportedUsage("openai", { usage: ODD_USAGE.openai }));
  const oaChunks = [];
  for await (
    const c of await openai(fake).chat.completions.create({
      model: "m",
      messages: userSays("q"),
      stream: true,
      stream_options: { include_usage: true },
    })
  ) oaChunks.push(c);
  assert.equal(oaChunks.at(-1)?.usage?.prompt_tokens, 12.5);
  assert.ok(oaChunks.slice(0, -1).every((c) => c.usage === null));

  const px = await perplexity(fake).chat.completions.create({ model: "sonar", messages: userSays("q") });
  assert.equal(px.usage?.completion_tokens, "12");
  assert.equal(px.usage?.prompt_tokens, 11);
  const pxChunks = [];
  for await (
    const c of await perplexity(fake).chat.completions.create({
      model: "sonar",
      messages: userSays("q"),
      stream: true,
    })
  ) pxChunks.push(c);
  assert.deepEqual(pxChunks.map((c) => c.usage?.completion_tokens), ["12", "12", "12"]);

  const an = await anthropic(fake).messages.create({ model: "c", max_tokens: 5, messages: userSays("q") });
  assert.equal(an.usage.output_tokens, -1);
  assert.equal(an.usage.input_tokens, 11);
  const anEvents = [];
  for await (
    const e of await anthropic(fake).messages.create({
      model: "c",
      max_tokens: 5,
      messages: userSays("q"),
      stream: true,
    })
  ) anEvents.push(e);
  const start = anEvents[0];
  assert.ok(start.type === "message_start");
  assert.equal(start.message.usage.output_tokens, -1);
  assert.equal(start.message.usage.input_tokens, 11);
  const delta = anEvents.find((e) => e.type === "message_delta");
  assert.ok(delta?.type === "message_delta");
  assert.equal(delta.usage.output_tokens, -1);
  assert.equal(delta.usage.input_tokens, 11);
  const final = await anthropic(fake).messages.stream({ model: "c", max_tokens: 5, messages: userSays("q") })
    .finalMessage();
  assert.equal(final.usage.output_tokens, -1);

  const ge = await google(fake).models.generateContent({ model: "g", contents: "q" });
  assert.equal(ge.usageMetadata?.candidatesTokenCount, 1e20);
  assert.equal(ge.usageMetadata?.promptTokenCount, 11);
  const geChunks = [];
  for await (const c of await google(fake).models.generateContentStream({ model: "g", contents: "q" })) {
    geChunks.push(c);
  }
  assert.deepEqual(geChunks.map((c) => c.usageMetadata?.candidatesTokenCount), [1e20, 1e20]);
  assert.deepEqual(geChunks.map((c) => c.usageMetadata?.promptTokenCount), [11, 11]);
});

/** Reads a body chunk by chunk: the chunk sizes and the whole text. */
async function readChunks(res: Response): Promise<{ sizes: number[]; text: string }> {
  const sizes: number[] = [];
  const bytes: number[] = [];
  for await (const chunk of res.body!) {
    sizes.push(chunk.byteLength);
    bytes.push(...chunk);
  }
  return { sizes, text: new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes)) };
}

const WIDE = "héllo wörld 🌍 ✓ 日本";

Deno.test("byteChunks: every answer arrives one byte per chunk, split inside UTF-8 characters (raw HTTP)", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: WIDE, chunks: 3, byteChunks: true });
  for (const p of LLM_PROVIDERS) {
    for (const stream of [false, true]) {
      const { sizes, text } = await readChunks(await rawRequest(fake, p, stream));
      assert.equal(
        sizes.length,
        new TextEncoder().encode(text).length,
        `${p} stream=${stream}: one chunk a byte`,
      );
      assert.ok(sizes.every((n) => n === 1), `${p} stream=${stream}`);
      assert.equal(
        payloads(text, stream).map((e) => textIn(p, stream, e)).join(""),
        WIDE,
        `${p} stream=${stream}`,
      );
    }
  }
  assert.ok(fake.calls.every((c) => c.completed && c.status === 200));
  assert.deepEqual(fake.calls.map((c) => c.chunksSent), Array(8).fill(3));
});

Deno.test("byteChunks: the SDKs reassemble streams and answers split into single bytes", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: WIDE, chunks: 4, byteChunks: true, inputTokens: 30, outputTokens: 8 });

  let oaText = "";
  let oaUsage;
  for await (
    const c of await openai(fake).chat.completions.create({
      model: "m",
      messages: userSays("q"),
      stream: true,
      stream_options: { include_usage: true },
    })
  ) {
    oaText += c.choices[0]?.delta.content ?? "";
    oaUsage = c.usage ?? oaUsage;
  }
  assert.equal(oaText, WIDE);
  assert.equal(oaUsage?.prompt_tokens, 30);
  const oa = await openai(fake).chat.completions.create({ model: "m", messages: userSays("q") });
  assert.equal(oa.choices[0].message.content, WIDE);

  let pxText = "";
  for await (
    const c of await perplexity(fake).chat.completions.create({
      model: "sonar",
      messages: userSays("q"),
      stream: true,
    })
  ) pxText += c.choices[0].delta.content ?? "";
  assert.equal(pxText, WIDE);

  const anStream = anthropic(fake).messages.stream({ model: "c", max_tokens: 5, messages: userSays("q") });
  const final = await anStream.finalMessage();
  assert.deepEqual(final.content.map((b) => b.type === "text" ? b.text : b.type), [WIDE]);
  assert.equal(final.usage.output_tokens, 8);
  const an = await anthropic(fake).messages.create({ model: "c", max_tokens: 5, messages: userSays("q") });
  assert.equal(an.usage.input_tokens, 30);

  const geChunks = [];
  for await (const c of await google(fake).models.generateContentStream({ model: "g", contents: "q" })) {
    geChunks.push(c);
  }
  assert.equal(geChunks.map((c) => c.text).join(""), WIDE);
  assert.equal(geChunks.at(-1)?.usageMetadata?.candidatesTokenCount, 8);
  const ge = await google(fake).models.generateContent({ model: "g", contents: "q" });
  assert.equal(ge.text, WIDE);
});

Deno.test("byteChunks: a client leaving mid-stream is still seen as an abort", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ byteChunks: true, hangAfterChunks: 2 });
  let content = 0;
  for await (
    const c of await openai(fake).chat.completions.create({
      model: "m",
      messages: userSays("q"),
      stream: true,
    })
  ) {
    if (c.choices[0]?.delta.content) content++;
    if (content === 2) break;
  }
  assert.equal(await fake.calls[0].settled, "aborted");
  assert.equal(fake.calls[0].chunksSent, 2);

  fake.setScript({ byteChunks: true, chunks: 200, chunkDelayMs: 1 });
  const res = await rawRequest(fake, "anthropic", true);
  const reader = res.body!.getReader();
  for (let i = 0; i < 50; i++) assert.equal((await reader.read()).value?.byteLength, 1);
  await reader.cancel();
  assert.equal(await fake.calls[1].settled, "aborted");
  assert.ok(fake.calls[1].chunksSent < 200);
});

Deno.test("crlf: OpenAI, Perplexity and Anthropic events are framed with CRLF; Gemini stays CRLF (raw HTTP)", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "ab", chunks: 2, crlf: true });
  for (const p of LLM_PROVIDERS) {
    const text = await (await rawRequest(fake, p, true)).text();
    assert.ok(!/[^\r]\n/.test(text), `${p}: every line end is CRLF`);
    assert.ok(text.endsWith("\r\n\r\n"), p);
    const events = text.split("\r\n\r\n").slice(0, -1);
    assert.ok(events.every((e) => e !== "" && !e.includes("\r\n\r\n")), p);
    assert.equal(payloads(text, true).map((e) => textIn(p, true, e)).join(""), "ab", p);
    if (p === "openai" || p === "perplexity") {
      assert.equal(events.at(-1), "data: [DONE]");
      assert.ok(events.every((e) => e.startsWith("data: ") && !e.includes("\r\n")), p);
    }
    if (p === "anthropic") {
      assert.deepEqual(events.map((e) => e.split("\r\n")[0]), [
        "event: message_start",
        "event: content_block_start",
        "event: ping",
        "event: content_block_delta",
        "event: content_block_delta",
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
      ]);
      assert.ok(events.every((e) => e.split("\r\n")[1].startsWith("data: {")));
    }
  }
  // a mid-stream error event is CRLF-framed too
  fake.setScript({ crlf: true, errorAfterChunks: 1 });
  const errored = await (await rawRequest(fake, "anthropic", true)).text();
  assert.ok(errored.endsWith('"}}\r\n\r\n') && errored.includes("event: error\r\ndata: "), errored);
  // without crlf nothing changed
  fake.setScript({});
  assert.ok(!(await (await rawRequest(fake, "openai", true)).text()).includes("\r"));
});

Deno.test("crlf, also with byteChunks (a CRLF split across reads): every SDK parses the streams", async () => {
  await using fake = await startFakeLlm();
  for (const byteChunks of [false, true]) {
    fake.setScript({ reply: WIDE, chunks: 3, crlf: true, byteChunks, outputTokens: 9 });

    const oaChunks = [];
    for await (
      const c of await openai(fake).chat.completions.create({
        model: "m",
        messages: userSays("q"),
        stream: true,
        stream_options: { include_usage: true },
      })
    ) oaChunks.push(c);
    assert.equal(oaChunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), WIDE);
    assert.equal(oaChunks.length, 1 + 3 + 1 + 1);
    assert.equal(oaChunks.at(-1)?.usage?.completion_tokens, 9);

    const pxChunks = [];
    for await (
      const c of await perplexity(fake).chat.completions.create({
        model: "sonar",
        messages: userSays("q"),
        stream: true,
      })
    ) pxChunks.push(c);
    assert.equal(pxChunks.map((c) => c.choices[0].delta.content).join(""), WIDE);
    assert.deepEqual(pxChunks.map((c) => c.usage?.completion_tokens), [3, 6, 9, 9]);

    const texts: string[] = [];
    const anStream = anthropic(fake).messages.stream({ model: "c", max_tokens: 5, messages: userSays("q") });
    anStream.on("text", (t) => texts.push(t));
    const final = await anStream.finalMessage();
    assert.deepEqual(texts, splitReply(WIDE, 3));
    assert.equal(final.usage.output_tokens, 9);
    assert.equal(final.stop_reason, "end_turn");

    const geChunks = [];
    for await (const c of await google(fake).models.generateContentStream({ model: "g", contents: "q" })) {
      geChunks.push(c);
    }
    assert.deepEqual(geChunks.map((c) => c.text), splitReply(WIDE, 3));
  }
});

Deno.test("setScript accepts odd usage values but refuses a malformed usage, byteChunks or crlf", async () => {
  await using fake = await startFakeLlm();
  for (const usage of Object.values(ODD_USAGE)) fake.setScript({ usage });
  fake.setScript({ usage: "omit", byteChunks: true, crlf: false });
  const bad = (script: unknown) => assert.throws(() => fake.setScript(script as never), TypeError);
  bad({ usage: "none" });
  bad({ usage: null });
  bad({ usage: [1] });
  bad({ usage: 5 });
  bad({ byteChunks: "yes" });
  bad({ crlf: 1 });
  // a queued script's usage replaces the standing one's (no deep merge)
  fake.setScript({ usage: { prompt_tokens: 1 } });
  fake.setScript({ usage: { completion_tokens: 2 }, times: 1 });
  const first = await openai(fake).chat.completions.create({ model: "m", messages: userSays("q") });
  const second = await openai(fake).chat.completions.create({ model: "m", messages: userSays("q") });
  assert.deepEqual([first.usage?.prompt_tokens, first.usage?.completion_tokens], [11, 2]);
  assert.deepEqual([second.usage?.prompt_tokens, second.usage?.completion_tokens], [1, 7]);
});

// ------------------------------------------------------------------------------- OpenAI Responses API

Deno.test("openai SDK: responses.create has the echo reply and the Responses usage with cached and reasoning tokens", async () => {
  await using fake = await startFakeLlm();
  const script = { inputTokens: 120, outputTokens: 45, cachedTokens: 20, reasoningTokens: 5 };
  fake.setScript(script);
  const response = await openai(fake).responses.create({
    model: "gpt-5-mini",
    instructions: "be brief",
    input: [{ role: "user", content: [{ type: "input_text", text: "Hello responses" }] }],
  });
  assert.equal(response.object, "response");
  assert.match(response.id, /^resp_/);
  assert.equal(response.status, "completed");
  assert.equal(response.model, "gpt-5-mini");
  assert.equal(response.instructions, "be brief");
  assert.equal(response.output_text, "echo: Hello responses");
  assert.deepEqual(response.usage, {
    input_tokens: 120,
    input_tokens_details: { cached_tokens: 20 },
    output_tokens: 45,
    output_tokens_details: { reasoning_tokens: 5 },
    total_tokens: 165,
  });
  assert.deepEqual(response.usage, reportedUsage("responses", script));
  const call = fake.calls[0];
  assert.equal(call.provider, "openai");
  assert.equal(call.api, "responses");
  assert.equal(call.path, "/v1/responses");
  assert.equal(call.stream, false);
  assert.equal(lastUserTextIn(call), "Hello responses");
});

Deno.test("openai SDK: responses.stream sends the event sequence in sequence_number order and ends with the usage", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ inputTokens: 30, outputTokens: 9, cachedTokens: 10, chunks: 3 });
  const stream = openai(fake).responses.stream({ model: "gpt-5-mini", input: "stream me" });
  const events: { type: string; sequence_number: number }[] = [];
  const deltas: string[] = [];
  stream.on("event", (e) => events.push(e));
  stream.on("response.output_text.delta", (e) => deltas.push(e.delta));
  const final = await stream.finalResponse();
  assert.deepEqual(events.map((e) => e.type), [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
  ]);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  assert.deepEqual(deltas, splitReply("echo: stream me", 3));
  assert.equal(final.output_text, "echo: stream me");
  assert.equal(final.status, "completed");
  assert.equal(final.usage?.input_tokens, 30);
  assert.equal(final.usage?.input_tokens_details.cached_tokens, 10);
  assert.equal(final.usage?.output_tokens, 9);
  assert.equal(fake.calls[0].stream, true);
  assert.equal(fake.calls[0].chunksSent, 3);
});

Deno.test("openai SDK: a Responses answer stopped by length is incomplete (max_output_tokens), stream and not", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ stopReason: "length" });
  const client = openai(fake);
  const response = await client.responses.create({
    model: "gpt-5-mini",
    input: "long",
    max_output_tokens: 7,
  });
  assert.equal(response.status, "incomplete");
  assert.equal(response.incomplete_details?.reason, "max_output_tokens");
  assert.equal(response.max_output_tokens, 7);
  assert.equal(response.output_text, "echo: long");
  const types: string[] = [];
  const stream = client.responses.stream({ model: "gpt-5-mini", input: "long" });
  stream.on("event", (e) => types.push(e.type));
  await stream.done().catch(() => {});
  assert.equal(types.at(-1), "response.incomplete");
  assert.ok(!types.includes("response.completed"));
});

Deno.test("openai SDK: Responses honours usage omit/merge, errors, mid-stream errors and hangs like the other endpoints", async () => {
  await using fake = await startFakeLlm();
  const client = openai(fake);
  fake.setScript({ usage: "omit", times: 1 });
  const omitted = await client.responses.create({ model: "m", input: "x" });
  assert.equal(omitted.usage, undefined);
  assert.equal(reportedUsage("responses", { usage: "omit" }), null);

  fake.setScript({ usage: { input_tokens: 12.5 }, times: 1 });
  const stream = client.responses.stream({ model: "m", input: "x" });
  assert.equal((await stream.finalResponse()).usage?.input_tokens, 12.5);

  fake.setScript({ status: 429, retryAfter: 3, times: 1 });
  const limited = await thrown(() => client.responses.create({ model: "m", input: "x" }));
  assert.ok(limited instanceof OpenAI.RateLimitError);

  fake.setScript({ errorAfterChunks: 2, streamErrorStatus: 503, times: 1 });
  let text = "";
  const midway = await thrown(async () => {
    const s = await client.responses.create({ model: "m", input: "abcdefghij", stream: true });
    for await (const e of s) if (e.type === "response.output_text.delta") text += e.delta;
  });
  assert.ok(midway instanceof OpenAI.APIError);
  assert.equal(text, splitReply("echo: abcdefghij", 5).slice(0, 2).join(""));

  fake.setScript({ hangAfterChunks: 1, times: 1 });
  const hanging = await client.responses.create({ model: "m", input: "hang", stream: true });
  for await (const e of hanging) if (e.type === "response.output_text.delta") break;
  const call = fake.calls.at(-1)!;
  assert.equal(await call.settled, "aborted");
  assert.equal(call.chunksSent, 1);
});

// ------------------------------------------------------------------------------------- tool calling

const WEATHER = { name: "get_weather", arguments: { city: "Paris", unit: "c" } };
const NOW = { name: "now", arguments: {} };

Deno.test("openai SDK: toolCalls answer message.tool_calls with finish_reason tool_calls and no text, stream and not", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ toolCalls: [WEATHER, { ...NOW, id: "call_mine" }] });
  const client = openai(fake);
  const completion = await client.chat.completions.create({
    model: "gpt-4o",
    messages: userSays("weather?"),
  });
  const choice = completion.choices[0];
  assert.equal(choice.finish_reason, "tool_calls");
  assert.equal(choice.message.content, null);
  assert.deepEqual(choice.message.tool_calls, [
    {
      id: "call_1_0",
      type: "function",
      function: { name: "get_weather", arguments: '{"city":"Paris","unit":"c"}' },
    },
    { id: "call_mine", type: "function", function: { name: "now", arguments: "{}" } },
  ]);
  assert.deepEqual(fake.calls[0].toolCalls.map((t) => t.id), ["call_1_0", "call_mine"]);

  const chunks: OpenAI.ChatCompletionChunk[] = [];
  const runner = client.chat.completions.stream({ model: "gpt-4o", messages: userSays("weather?") });
  runner.on("chunk", (c) => chunks.push(c));
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, "tool_calls");
  assert.deepEqual(
    final.choices[0].message.tool_calls?.map((t) =>
      t.type === "function" && [t.id, t.function.name, t.function.arguments]
    ),
    [["call_2_0", "get_weather", '{"city":"Paris","unit":"c"}'], ["call_mine", "now", "{}"]],
  );
  const argumentDeltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? [])
    .filter((t) => t.index === 0 && t.function?.arguments);
  assert.ok(argumentDeltas.length >= 2, "the arguments come in pieces");
  assert.ok(chunks.every((c) => !c.choices[0]?.delta.content), "no text chunks");
});

Deno.test("openai SDK: a reply with toolCalls is the text followed by the calls, in chunks the stream counts", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "Let me check.", toolCalls: [WEATHER], chunks: 2 });
  const final = await openai(fake).chat.completions.stream({ model: "gpt-4o", messages: userSays("x") })
    .finalChatCompletion();
  assert.equal(final.choices[0].message.content, "Let me check.");
  assert.equal(final.choices[0].message.tool_calls?.length, 1);
  // 2 text chunks + (id and name, two argument pieces) for the one call
  assert.equal(fake.calls[0].chunksSent, 2 + 3);
});

Deno.test("openai SDK: Responses toolCalls are function_call items, stream and not, arguments streamed in pieces", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ toolCalls: [WEATHER, NOW] });
  const client = openai(fake);
  const response = await client.responses.create({ model: "gpt-5-mini", input: "weather?" });
  assert.deepEqual(response.output, [
    {
      id: "fc_1_0",
      type: "function_call",
      status: "completed",
      arguments: '{"city":"Paris","unit":"c"}',
      call_id: "call_1_0",
      name: "get_weather",
    },
    {
      id: "fc_1_1",
      type: "function_call",
      status: "completed",
      arguments: "{}",
      call_id: "call_1_1",
      name: "now",
    },
  ]);
  assert.equal(response.output_text, "");

  const stream = client.responses.stream({ model: "gpt-5-mini", input: "weather?" });
  const types: string[] = [];
  const argumentDeltas: string[] = [];
  stream.on("event", (e) => types.push(e.type));
  stream.on(
    "response.function_call_arguments.delta",
    (e) => e.output_index === 0 && argumentDeltas.push(e.delta),
  );
  const final = await stream.finalResponse();
  assert.deepEqual(
    final.output.map((o) => o.type === "function_call" && [o.call_id, o.name, JSON.parse(o.arguments)]),
    [["call_2_0", "get_weather", WEATHER.arguments], ["call_2_1", "now", {}]],
  );
  assert.ok(argumentDeltas.length >= 2);
  assert.equal(argumentDeltas.join(""), '{"city":"Paris","unit":"c"}');
  assert.deepEqual(types.slice(0, 6), [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
  ]);
  assert.equal(types.at(-1), "response.completed");
});

Deno.test("anthropic SDK: toolCalls answer tool_use blocks with stop_reason tool_use; the stream's finalMessage parses the input", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "Checking.", toolCalls: [WEATHER, NOW] });
  const client = anthropic(fake);
  const message = await client.messages.create({
    model: "c",
    max_tokens: 50,
    messages: userSays("weather?"),
  });
  assert.equal(message.stop_reason, "tool_use");
  assert.deepEqual(message.content, [
    { type: "text", text: "Checking." },
    { type: "tool_use", id: "toolu_1_0", name: "get_weather", input: WEATHER.arguments },
    { type: "tool_use", id: "toolu_1_1", name: "now", input: {} },
  ]);

  const events: Anthropic.RawMessageStreamEvent[] = [];
  const stream = client.messages.stream({ model: "c", max_tokens: 50, messages: userSays("weather?") });
  stream.on("streamEvent", (e) => events.push(e));
  const final = await stream.finalMessage();
  assert.equal(final.stop_reason, "tool_use");
  assert.deepEqual(final.content.map((b) => b.type === "tool_use" ? [b.id, b.name, b.input] : [b.type]), [
    ["text"],
    ["toolu_2_0", "get_weather", WEATHER.arguments],
    ["toolu_2_1", "now", {}],
  ]);
  const starts = events.filter((e) => e.type === "content_block_start");
  assert.deepEqual(starts.map((e) => e.content_block.type === "tool_use" && e.content_block.input), [
    false,
    {},
    {},
  ]);
  const jsonDeltas = events.filter((e) =>
    e.type === "content_block_delta" && e.index === 1 && e.delta.type === "input_json_delta"
  );
  assert.ok(jsonDeltas.length >= 2, "the input comes in pieces");
  assert.equal(events.filter((e) => e.type === "content_block_stop").length, 3);
});

Deno.test("genai SDK: toolCalls answer functionCall parts with finishReason STOP, stream and not", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ toolCalls: [WEATHER, { ...NOW, id: "fn-1" }] });
  const client = google(fake);
  const response = await client.models.generateContent({ model: "gemini-2.5-flash", contents: "weather?" });
  assert.equal(response.candidates?.[0].finishReason, "STOP");
  assert.deepEqual(response.functionCalls, [
    { name: "get_weather", args: WEATHER.arguments },
    { id: "fn-1", name: "now", args: {} },
  ]);
  assert.equal(response.text, undefined);

  const stream = await client.models.generateContentStream({
    model: "gemini-2.5-flash",
    contents: "weather?",
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  assert.equal(chunks.length, 1, "one chunk holds every functionCall part");
  assert.deepEqual(chunks[0].functionCalls?.map((f) => f.name), ["get_weather", "now"]);
  assert.equal(chunks[0].candidates?.[0].finishReason, "STOP");
  assert.equal(chunks[0].usageMetadata?.candidatesTokenCount, 7);
});

Deno.test("perplexity ignores toolCalls (its API has no tool calling) and answers text", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ toolCalls: [WEATHER] });
  const completion = await perplexity(fake).chat.completions.create({
    model: "sonar",
    messages: userSays("q"),
  });
  assert.equal(completion.choices[0].message.content, "echo: q");
  assert.equal(completion.choices[0].finish_reason, "stop");
  assert.deepEqual(fake.calls[0].toolCalls, []);
});

Deno.test("an error after the text chunks cuts a tool-call stream before its calls complete", async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ reply: "ab", chunks: 2, toolCalls: [WEATHER], errorAfterChunks: 3 });
  const err = await thrown(() =>
    openai(fake).chat.completions.stream({ model: "gpt-4o", messages: userSays("x") }).finalChatCompletion()
  );
  assert.ok(err instanceof OpenAI.APIError);
  assert.equal(fake.calls[0].chunksSent, 3, "2 text chunks, then the call's id and name");
});

Deno.test("toolResultsIn reads the results each SDK sends back, with the call ids and the tools' names", async () => {
  await using fake = await startFakeLlm();
  const output = JSON.stringify({ sky: "sunny" });

  await openai(fake).chat.completions.create({
    model: "gpt-4o",
    messages: [
      ...userSays("weather?"),
      {
        role: "assistant",
        content: null,
        tool_calls: [{ id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
      },
      { role: "tool", tool_call_id: "c1", content: output },
    ],
  });
  await openai(fake).responses.create({
    model: "gpt-5-mini",
    input: [
      { role: "user", content: "weather?" },
      { type: "function_call", call_id: "c2", name: "get_weather", arguments: "{}" },
      { type: "function_call_output", call_id: "c2", output },
    ],
  });
  await anthropic(fake).messages.create({
    model: "c",
    max_tokens: 10,
    messages: [
      ...userSays("weather?"),
      { role: "assistant", content: [{ type: "tool_use", id: "t3", name: "get_weather", input: {} }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t3", content: output }] },
    ],
  });
  await google(fake).models.generateContent({
    model: "g",
    contents: [
      { role: "user", parts: [{ text: "weather?" }] },
      { role: "model", parts: [{ functionCall: { name: "get_weather", args: {} } }] },
      { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { sky: "sunny" } } }] },
    ],
  });
  assert.deepEqual(fake.calls.map((c) => toolResultsIn(c)), [
    [{ id: "c1", name: "get_weather", output }],
    [{ id: "c2", name: "get_weather", output }],
    [{ id: "t3", name: "get_weather", output }],
    [{ name: "get_weather", output: { sky: "sunny" } }],
  ]);
  // the user's text, not the tool-result turns after it
  assert.deepEqual(fake.calls.map((c) => lastUserTextIn(c)), [
    "weather?",
    "weather?",
    "weather?",
    "weather?",
  ]);
  assert.deepEqual(fake.calls.map((c) => c.reply), Array(4).fill("echo: weather?"));
});

Deno.test("setScript refuses malformed toolCalls", async () => {
  await using fake = await startFakeLlm();
  const bad = [
    { toolCalls: {} },
    { toolCalls: [{ name: "", arguments: {} }] },
    { toolCalls: [{ name: "f" }] },
    { toolCalls: [{ name: "f", arguments: [] }] },
    { toolCalls: [{ name: "f", arguments: "{}" }] },
    { toolCalls: [{ name: "f", arguments: {}, id: 7 }] },
  ];
  for (const script of bad) {
    assert.throws(
      () => fake.setScript(script as unknown as FakeLlmScript),
      TypeError,
      JSON.stringify(script),
    );
  }
});

// ------------------------------------------------------------------------ the AI SDK against the fake

/** A weather tool for the AI SDK that counts its executions in `runs`. */
const weatherTool = (runs: { count: number }) =>
  tool({
    description: "The weather in a city",
    inputSchema: jsonSchema<{ city: string; unit: string }>({
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string" } },
      required: ["city", "unit"],
    }),
    execute: ({ city, unit }) => {
      runs.count++;
      return Promise.resolve({ city, unit, sky: "sunny" });
    },
  });

const aiSdkModels = (fake: FakeLlm): [string, LanguageModel][] => {
  const o = createOpenAI({ apiKey: KEY, baseURL: fake.baseUrls.openai });
  return [
    ["openai.chat", o.chat("gpt-4o-mini")],
    ["openai.responses", o.responses("gpt-5-mini")],
    ["anthropic", createAnthropic({ apiKey: KEY, baseURL: `${fake.url}/v1` })("claude-haiku-4-5")],
    ["google", createGoogleGenerativeAI({ apiKey: KEY, baseURL: `${fake.url}/v1beta` })("gemini-2.5-flash")],
  ];
};

for (const streaming of [false, true]) {
  const how = streaming ? "streamText" : "generateText";
  Deno.test(`AI SDK ${how}: for each provider the tool is executed and the second request carries its result`, async () => {
    await using fake = await startFakeLlm();
    for (const [name, model] of aiSdkModels(fake)) {
      fake.reset();
      fake.setScript({ toolCalls: [WEATHER], times: 1 });
      fake.setScript({ reply: "It is sunny in Paris.", times: 1 });
      const runs = { count: 0 };
      const tools = { get_weather: weatherTool(runs) };
      const args = { model, tools, stopWhen: stepCountIs(3), prompt: "Weather in Paris?", maxRetries: 0 };
      let text: string;
      if (streaming) {
        const result = streamText(args);
        text = await result.text;
      } else {
        text = (await generateText(args)).text;
      }
      assert.equal(text, "It is sunny in Paris.", name);
      assert.equal(runs.count, 1, name);
      assert.equal(fake.calls.length, 2, name);
      assert.ok(fake.calls.every((c) => c.stream === streaming), name);
      const [result] = toolResultsIn(fake.calls[1]);
      assert.equal(result?.name, "get_weather", name);
      const sent = fake.calls[0].toolCalls[0];
      if (sent.id !== undefined) {
        assert.equal(result.id, sent.id, `${name}: the result answers the call's id`);
      }
      const output = typeof result.output === "string" ? JSON.parse(result.output) : result.output;
      assert.deepEqual(
        name === "google" ? (output as { content: unknown }).content : output,
        { city: "Paris", unit: "c", sky: "sunny" },
        name,
      );
      assert.equal(lastUserTextIn(fake.calls[1]), "Weather in Paris?", name);
    }
  });
}

// ------------------------------------------------------------------------------ prompt caches, per request

const LONG_PROMPT = "You are a careful assistant. ".repeat(200); // 5 800 characters, ~1 450 tokens

Deno.test('cachedTokens "prefix": OpenAI reports the prefix re-sent from an earlier request as cached, from 1024 tokens in 128-token steps', async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ cachedTokens: "prefix" });
  const client = openai(fake);
  const ask = (messages: { role: "system" | "user" | "assistant"; content: string }[]) =>
    client.chat.completions.create({ model: "gpt-4o-mini", messages });
  const system = { role: "system" as const, content: LONG_PROMPT };
  const first = await ask([system, ...userSays("first question")]);
  const prompt1 = JSON.stringify(system) + JSON.stringify(userSays("first question")[0]);
  assert.equal(first.usage?.prompt_tokens, Math.ceil(prompt1.length / 4), "input counted from the prompt");
  assert.equal(first.usage?.prompt_tokens_details?.cached_tokens, 0, "nothing was sent before");

  const second = await ask([system, ...userSays("first question"), {
    role: "assistant",
    content: "an answer",
  }]);
  // Shared: the whole first prompt (its last message included); 1 024 + whole 128-token steps of it.
  const shared = Math.floor(prompt1.length / 4);
  assert.equal(
    second.usage?.prompt_tokens_details?.cached_tokens,
    1024 + Math.floor((shared - 1024) / 128) * 128,
  );

  const other = await ask([
    { role: "system", content: "Another employee. " + LONG_PROMPT },
    ...userSays("hi"),
  ]);
  assert.equal(other.usage?.prompt_tokens_details?.cached_tokens, 0, "a different prefix reads nothing");

  await ask([{ role: "system", content: "Short." }, ...userSays("hi")]);
  const again = await ask([{ role: "system", content: "Short." }, ...userSays("hi")]);
  assert.equal(again.usage?.prompt_tokens_details?.cached_tokens, 0, "under 1024 tokens nothing is cached");
});

Deno.test('cachedTokens "prefix": Gemini reports the whole shared prefix; Perplexity never caches', async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ cachedTokens: "prefix", cacheMinTokens: 100 });
  const ai = google(fake);
  const config = { systemInstruction: LONG_PROMPT };
  await ai.models.generateContent({ model: "gemini-2.5-flash", contents: googleSays("one"), config });
  const next = await ai.models.generateContent({
    model: "gemini-2.5-flash",
    contents: googleSays("two"),
    config,
  });
  const body = fake.calls[1].body as Record<string, unknown>;
  const system = JSON.stringify(body.systemInstruction);
  const shared = system.length + '{"parts":[{"text":"'.length; // the contents differ from the user's text on
  assert.ok(JSON.stringify((body.contents as unknown[])[0]).startsWith('{"parts":[{"text":"two'), system);
  assert.equal(next.usageMetadata?.cachedContentTokenCount, Math.floor(shared / 4));

  const pplx = perplexity(fake);
  await pplx.chat.completions.create({
    model: "sonar",
    messages: [{ role: "system", content: LONG_PROMPT }],
  });
  const p2 = await pplx.chat.completions.create({
    model: "sonar",
    messages: [{ role: "system", content: LONG_PROMPT }],
  });
  assert.ok((p2.usage?.prompt_tokens ?? 0) > 1000);
  assert.equal(
    (p2.usage as { prompt_tokens_details?: { cached_tokens?: number } }).prompt_tokens_details
      ?.cached_tokens ?? 0,
    0,
  );
});

Deno.test('cachedTokens "prefix": Anthropic caches up to cache_control breakpoints only: written once, then read', async () => {
  await using fake = await startFakeLlm();
  fake.setScript({ cachedTokens: "prefix" });
  const client = anthropic(fake);
  const marked = [{
    type: "text" as const,
    text: LONG_PROMPT,
    cache_control: { type: "ephemeral" as const },
  }];
  const ask = (system: typeof marked | string, question: string) =>
    client.messages.create({
      model: "claude-haiku-4-5",
      max_tokens: 64,
      system,
      messages: userSays(question),
    });
  const systemChars = JSON.stringify(marked[0]).length;

  const first = await ask(marked, "one");
  assert.equal(first.usage.cache_read_input_tokens, 0);
  assert.equal(
    first.usage.cache_creation_input_tokens,
    Math.floor(systemChars / 4),
    "the system block written",
  );
  const second = await ask(marked, "two, a different question");
  assert.equal(second.usage.cache_read_input_tokens, Math.floor(systemChars / 4), "read back");
  assert.equal(second.usage.cache_creation_input_tokens, 0);
  assert.ok(second.usage.input_tokens > 0 && second.usage.input_tokens < 20, "only the question is uncached");

  // The same system prompt without a breakpoint: Anthropic caches nothing, however much is re-sent.
  await ask(LONG_PROMPT, "one");
  const unmarked = await ask(LONG_PROMPT, "one");
  assert.equal(unmarked.usage.cache_read_input_tokens, 0);
  assert.equal(unmarked.usage.cache_creation_input_tokens, 0);
});

Deno.test("scriptFor: each request gets the script its own body calls for, over the standing one", async () => {
  await using fake = await startFakeLlm({
    scriptFor: ({ provider, body }) => {
      const text = lastUserText(provider, body);
      return text.startsWith("tool:")
        ? { toolCalls: [{ name: "calculator", arguments: { expression: text.slice(5) } }] }
        : undefined;
    },
  });
  fake.setScript({ outputTokens: 3 });
  const client = openai(fake);
  const [a, b] = await Promise.all([
    client.chat.completions.create({ model: "gpt-4o-mini", messages: userSays("tool:6*7") }),
    client.chat.completions.create({ model: "gpt-4o-mini", messages: userSays("plain") }),
  ]);
  assert.equal(a.choices[0].finish_reason, "tool_calls");
  assert.equal(
    a.choices[0].message.tool_calls?.[0].type === "function" &&
      a.choices[0].message.tool_calls[0].function.arguments,
    '{"expression":"6*7"}',
  );
  assert.equal(a.usage?.completion_tokens, 3, "the standing script still applies");
  assert.equal(b.choices[0].message.content, "echo: plain");
  assert.equal(b.choices[0].message.tool_calls, undefined);
});
