// The agents' server-side tools (supabase/functions/agents-execute/tools/): the registry hands out only the
// tools a version lists; runWithLimits refuses invalid input, stops a tool at its time limit (its provider call
// too), cuts output at its size limit and never lets a stack or a secret through; the calculator's parser
// against a reference evaluation of generated expression trees (fast-check) and its precedence, associativity
// and errors (code-like payloads are syntax errors); current_time with a fixed clock; web_search with a
// recording callProvider (no fetch of its own) and through the real gateway pipeline in-process against the fake
// Perplexity (billed with its search fee, attributed to the run, a 402 when the balance is empty); usage_summary
// read as the user, so user A never sees user B's usage.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.10.2";
import { verifyUserToken } from "../_shared/auth/verify.ts";
import { createInProcessGateway } from "../_shared/gateway/handler.ts";
import { perplexity } from "../_shared/gateway/providers/perplexity.ts";
import { z } from "../_shared/http/validation.ts";
import { asUser } from "../agents-execute/tools/as-user.ts";
import { calculator } from "../agents-execute/tools/calculator.ts";
import { createCurrentTime, currentTime } from "../agents-execute/tools/current-time.ts";
import { calculate } from "../agents-execute/tools/expression.ts";
import { runWithLimits, type ToolResult } from "../agents-execute/tools/limits.ts";
import { TOOL_NAMES, toolsFor } from "../agents-execute/tools/registry.ts";
import type { AgentTool, ToolContext } from "../agents-execute/tools/tool.ts";
import { ToolError } from "../agents-execute/tools/tool-error.ts";
import { createUsageSummary, periodDays } from "../agents-execute/tools/usage-summary.ts";
import { searchRequest, webSearch } from "../agents-execute/tools/web-search.ts";
import { createTestUser, deleteTestUsers, type Sql, testSql, type TestUser } from "./_lib/db.ts";
import { FAKE_LLM_API_KEY, startFakeLlm } from "./_lib/fake-llm.ts";
import { gatewayKit, sleep } from "./_lib/gateway.ts";
import { stack } from "./_lib/stack.ts";

const USER = "00000000-0000-4000-8000-00000000a001";

/** A run's context; callProvider fails the test unless the test gives one. */
function context(over: Partial<ToolContext> = {}): ToolContext {
  return {
    userId: USER,
    runId: crypto.randomUUID(),
    sessionId: crypto.randomUUID(),
    signal: new AbortController().signal,
    callProvider: () => Promise.reject(new Error("this tool must not call a provider")),
    ...over,
  };
}

function errorOf(result: ToolResult): { code: string; message: string } {
  assert.equal(result.ok, false, `expected an error result: ${JSON.stringify(result)}`);
  const { error } = result.output as { error: { code: string; message: string } };
  assert.equal(result.errorCode, error.code);
  assert.deepEqual(Object.keys(error).sort(), ["code", "message"]);
  return error;
}

/** A tool for the limits tests: `run` is the test's. */
function testTool(
  run: AgentTool<{ n: number }>["run"],
  limits: { timeoutMs?: number; maxOutputBytes?: number } = {},
): AgentTool<{ n: number }> {
  return {
    name: "test_tool",
    description: "for tests",
    input: z.object({ n: z.number().int().min(0).max(10) }).strict(),
    timeoutMs: limits.timeoutMs ?? 1_000,
    maxOutputBytes: limits.maxOutputBytes ?? 1_024,
    run,
  };
}

/** Runs fn with globalThis.fetch replaced by one that records every use and refuses it. */
async function withoutFetch<T>(fn: () => Promise<T>): Promise<{ value: T; fetched: string[] }> {
  const original = globalThis.fetch;
  const fetched: string[] = [];
  globalThis.fetch = (input: string | URL | Request) => {
    fetched.push(input instanceof Request ? input.url : String(input));
    return Promise.reject(new Error("a tool fetched a URL"));
  };
  try {
    return { value: await fn(), fetched };
  } finally {
    globalThis.fetch = original;
  }
}

// ------------------------------------------------------------------------------------------ registry

Deno.test("registry: toolsFor returns exactly the listed tools, in order and once each, and reports unknown names", () => {
  const { tools, unknown } = toolsFor(["calculator", "web_search", "calculator", "fetch_url", "constructor"]);
  assert.deepEqual(tools.map((t) => t.name), ["calculator", "web_search"]);
  assert.deepEqual(unknown, ["fetch_url", "constructor"]);

  assert.deepEqual(toolsFor([]), { tools: [], unknown: [] });
  assert.deepEqual(toolsFor(["__proto__", "toString"]).tools, []);
  const all = toolsFor(TOOL_NAMES);
  assert.deepEqual(all.tools.map((t) => t.name), [
    "current_time",
    "calculator",
    "web_search",
    "usage_summary",
  ]);
  assert.deepEqual(all.unknown, []);
  for (const tool of all.tools) {
    assert.match(tool.name, /^[a-z][a-z0-9_]*$/);
    assert.ok(tool.description.length > 20, `${tool.name} says what it does`);
    assert.ok(tool.timeoutMs > 0 && tool.timeoutMs <= 30_000, `${tool.name} has a time limit`);
    assert.ok(tool.maxOutputBytes > 0 && tool.maxOutputBytes <= 16_384, `${tool.name} has an output limit`);
    z.toJSONSchema(tool.input); // the runtime shows the model this schema
  }
});

// ------------------------------------------------------------------------------------------ limits

Deno.test("limits: invalid input is an invalid_tool_input result naming the field, and the tool never runs", async () => {
  let ran = 0;
  const tool = testTool(() => Promise.resolve(ran++));
  for (const input of [{ n: 11 }, { n: "1" }, {}, { n: 1, extra: true }, null, "n=1"]) {
    const error = errorOf(await runWithLimits(tool, input, context()));
    assert.equal(error.code, "invalid_tool_input", JSON.stringify(input));
  }
  assert.match(errorOf(await runWithLimits(tool, { n: 11 }, context())).message, /^n: /);
  assert.equal(ran, 0);
  assert.deepEqual(await runWithLimits(tool, { n: 3 }, context()), { ok: true, output: 0 });
});

Deno.test("limits: a tool past its time limit is a tool_timeout result at the limit, and its signal is aborted", async () => {
  let seen: AbortSignal | undefined;
  // One that sleeps and honours its signal, one that ignores it and never ends.
  const honours = testTool((_input, ctx) => {
    seen = ctx.signal;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve("late"), 5_000);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    });
  }, { timeoutMs: 100 });
  const started = performance.now();
  const error = errorOf(await runWithLimits(honours, { n: 1 }, context()));
  const took = performance.now() - started;
  assert.equal(error.code, "tool_timeout");
  assert.match(error.message, /100 ms/);
  assert.ok(took >= 95 && took < 1_000, `answered at the limit (${took} ms)`);
  assert.equal(seen?.aborted, true);

  const ignores = testTool(() => new Promise(() => {}), { timeoutMs: 50 });
  assert.equal(errorOf(await runWithLimits(ignores, { n: 1 }, context())).code, "tool_timeout");
});

Deno.test("limits: the provider call of a tool past its time limit is aborted through the signal it is given", async () => {
  let providerSignal: AbortSignal | undefined;
  const tool = testTool(async (_input, ctx) => {
    const res = await ctx.callProvider("perplexity", "/chat/completions", {});
    return await res.json();
  }, { timeoutMs: 80 });
  const ctx = context({
    callProvider: (_p, _path, _body, signal) => {
      providerSignal = signal;
      return new Promise((_resolve, reject) =>
        signal?.addEventListener("abort", () => reject(signal.reason))
      );
    },
  });
  assert.equal(errorOf(await runWithLimits(tool, { n: 1 }, ctx)).code, "tool_timeout");
  assert.equal(providerSignal?.aborted, true);
});

Deno.test("limits: a run cancelled while a tool works is a tool_cancelled result at once, and the tool's signal aborts", async () => {
  const run = new AbortController();
  let seen: AbortSignal | undefined;
  const tool = testTool((_input, ctx) => {
    seen = ctx.signal;
    return new Promise((_resolve, reject) =>
      ctx.signal.addEventListener("abort", () => reject(new Error("x")))
    );
  }, { timeoutMs: 5_000 });
  const pending = runWithLimits(tool, { n: 1 }, context({ signal: run.signal }));
  await sleep(20);
  run.abort();
  assert.equal(errorOf(await pending).code, "tool_cancelled");
  assert.equal(seen?.aborted, true);
  // Already cancelled: the tool does not start.
  let started = false;
  const never = testTool(() => Promise.resolve(started = true));
  assert.equal(
    errorOf(await runWithLimits(never, { n: 1 }, context({ signal: run.signal }))).code,
    "tool_cancelled",
  );
  assert.equal(started, false);
});

Deno.test("limits: output of 1 MB is cut to maxOutputBytes of JSON, marked truncated, without splitting a character", async () => {
  const big = { rows: Array.from({ length: 20_000 }, (_, i) => ({ i, text: 'Grüße 世界 🚀 "quoted"' })) };
  assert.ok(new TextEncoder().encode(JSON.stringify(big)).byteLength > 1_000_000);
  for (const maxOutputBytes of [1_024, 4_096, 16_384]) {
    const tool = testTool(() => Promise.resolve(big), { maxOutputBytes });
    const result = await runWithLimits(tool, { n: 1 }, context());
    assert.equal(result.ok, true);
    const output = result.output as { truncated: boolean; partial: string };
    assert.deepEqual(Object.keys(output), ["truncated", "partial"]);
    assert.equal(output.truncated, true);
    const bytes = new TextEncoder().encode(JSON.stringify(output)).byteLength;
    assert.ok(
      bytes <= maxOutputBytes && bytes > maxOutputBytes - 16,
      `${bytes} bytes for a limit of ${maxOutputBytes}`,
    );
    assert.ok(JSON.stringify(big).startsWith(output.partial), "the partial output is the start of the JSON");
    assert.ok(!/[\ud800-\udbff]$/.test(output.partial), "no half of a surrogate pair at the cut");
  }
  // Output within the limit passes as it is (as JSON: a Date becomes its ISO string).
  const small = testTool(() => Promise.resolve({ at: new Date(0), list: [1, "two"] }));
  assert.deepEqual(await runWithLimits(small, { n: 1 }, context()), {
    ok: true,
    output: { at: "1970-01-01T00:00:00.000Z", list: [1, "two"] },
  });
});

Deno.test("limits: a thrown error is tool_failed without its stack or secrets; a ToolError keeps its code and message", async () => {
  const secret = "postgresql://postgres:hunter2-secret@db.internal:5432/postgres";
  const throws = testTool(() => {
    throw new Error(`could not connect to ${secret} with Bearer abc.def.ghi`);
  });
  const error = errorOf(await runWithLimits(throws, { n: 1 }, context()));
  assert.equal(error.code, "tool_failed");
  assert.ok(!error.message.includes("hunter2"), error.message);
  assert.ok(!error.message.includes("abc.def.ghi"), error.message);
  assert.ok(!/\bat .*\.ts:\d+/.test(error.message), "no stack");

  const rejects = testTool(() => Promise.reject("x".repeat(10_000)));
  assert.ok(errorOf(await runWithLimits(rejects, { n: 1 }, context())).message.length < 400);

  const refuses = testTool(() => Promise.reject(new ToolError("not_found", "No such thing")));
  assert.deepEqual(errorOf(await runWithLimits(refuses, { n: 1 }, context())), {
    code: "not_found",
    message: "No such thing",
  });

  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const unserialisable = testTool(() => Promise.resolve(circular));
  assert.equal(errorOf(await runWithLimits(unserialisable, { n: 1 }, context())).code, "tool_failed");
});

// ------------------------------------------------------------------------------------------ calculator

type Tree = { n: number } | { neg: Tree } | { op: "+" | "-" | "*" | "/"; l: Tree; r: Tree };
const PRECEDENCE = { "+": 1, "-": 1, "*": 2, "/": 2 } as const;

/** Text with only the parentheses the tree needs (a right operand of equal precedence needs them: 1-(2-3)). */
function render(t: Tree, extraParens: boolean[]): string {
  const maybe = (s: string) => (extraParens.shift() ? `(${s})` : s);
  if ("n" in t) return maybe(String(t.n));
  if ("neg" in t) {
    const inner = render(t.neg, extraParens);
    return maybe("op" in t.neg ? `-(${inner})` : `-${inner}`);
  }
  const side = (child: Tree, right: boolean) => {
    const text = render(child, extraParens);
    if (!("op" in child)) return text;
    const p = PRECEDENCE[child.op];
    const needs = p < PRECEDENCE[t.op] || (right && p === PRECEDENCE[t.op]);
    return needs ? `(${text})` : text;
  };
  return maybe(`${side(t.l, false)} ${t.op} ${side(t.r, true)}`);
}

/** The reference: the tree evaluated directly, left operand first, stopping at the first error as the tool does. */
function reference(t: Tree): number {
  if ("n" in t) return t.n;
  if ("neg" in t) return -reference(t.neg);
  const l = reference(t.l);
  const r = reference(t.r);
  if (t.op === "/" && r === 0) throw new ToolError("division_by_zero", "");
  const v = t.op === "+" ? l + r : t.op === "-" ? l - r : t.op === "*" ? l * r : l / r;
  if (!Number.isFinite(v)) throw new ToolError("overflow", "");
  return v;
}

const outcome = (f: () => number): { value: number } | { error: string } => {
  try {
    const value = f();
    return { value: value === 0 ? 0 : value };
  } catch (e) {
    if (e instanceof ToolError) return { error: e.code };
    throw e;
  }
};

Deno.test("calculator: any expression tree of numbers, + - * / and unary minus evaluates as the reference does", () => {
  const number = fc.oneof(
    fc.integer({ min: 0, max: 1_000_000 }),
    fc.tuple(fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 1, max: 4 })).map(([m, d]) =>
      m / 10 ** d
    ),
    fc.constantFrom(0, 1e300, 0.1, 0.2),
  );
  const { tree } = fc.letrec<{ tree: Tree }>((rec) => ({
    tree: fc.oneof(
      { maxDepth: 7, depthSize: "medium", withCrossShrink: true },
      { arbitrary: number.map((n): Tree => ({ n })), weight: 2 },
      { arbitrary: rec("tree").map((t): Tree => ({ neg: t })), weight: 1 },
      {
        arbitrary: fc.record({
          op: fc.constantFrom("+", "-", "*", "/"),
          l: rec("tree"),
          r: rec("tree"),
        }) as fc.Arbitrary<Tree>,
        weight: 4,
      },
    ),
  }));
  fc.assert(
    fc.property(tree, fc.array(fc.boolean(), { maxLength: 64 }), (t, parens) => {
      const text = render(t, [...parens]);
      assert.deepEqual(outcome(() => calculate(text)), outcome(() => reference(t)), text);
    }),
    { numRuns: 2_000 },
  );
});

Deno.test("calculator: precedence, unary minus, right-associative ^, %, functions and constants", () => {
  const cases: [string, number][] = [
    ["1 + 2 * 3", 7],
    ["(1 + 2) * 3", 9],
    ["10 - 4 - 3", 3],
    ["2 * 3 / 4", 1.5],
    ["100 / 10 / 5", 2],
    ["2 ^ 3 ^ 2", 512],
    ["(2 ^ 3) ^ 2", 64],
    ["-2 ^ 2", -4],
    ["(-2) ^ 2", 4],
    ["2 ^ -1", 0.5],
    ["2 * -3", -6],
    ["--3", 3],
    ["-(-(4))", 4],
    ["+5 - -5", 10],
    ["3 - -2 ^ 2", 7],
    ["7 % 3", 1],
    ["-7 % 3", -1],
    ["2 + 7 % 4 * 2", 8],
    ["1.5 * .5", 0.75],
    ["2e3 + 1.5E-1", 2000.15],
    ["sqrt(16) + abs(-3)", 7],
    ["round(2.5)", 3],
    ["round(7 / 9, 2)", 0.78],
    ["min(3, 1, 2) * max(4, 9)", 9],
    ["ln(e) + log10(1000)", 4],
    ["sin(0) + cos(0) + tan(0)", 1],
    ["round(cos(pi), 10)", -1],
    ["pi", Math.PI],
    ["  ( ( 1 ) )  ", 1],
    ["0 * -1", 0],
  ];
  for (const [text, expected] of cases) assert.equal(calculate(text), expected, text);
  assert.ok(Object.is(calculate("0 * -1"), 0), "no negative zero");
});

Deno.test("calculator: bad syntax, division by zero, overflow and domain errors are clear errors; code-like payloads are syntax errors", () => {
  const cases: [string, string, RegExp?][] = [
    ["constructor.constructor('return 1')()", "syntax_error", /Unexpected character "\." at position 12/],
    ["this.constructor", "syntax_error"],
    ["__proto__", "syntax_error"],
    ["Math.PI", "syntax_error"],
    ["alert(1)", "syntax_error", /Unknown name "alert" at position 1/],
    ["constructor", "syntax_error", /Unknown name "constructor"/],
    ["valueOf()", "syntax_error"],
    ["import('x')", "syntax_error"],
    ["1 + ", "syntax_error", /found end of expression at position 5/],
    ["(1 + 2", "syntax_error", /Expected "\)"/],
    ["1 + 2)", "syntax_error", /Unexpected "\)" at position 6/],
    ["2 3", "syntax_error", /Unexpected number 3 at position 3/],
    ["2e", "syntax_error"],
    ["1 ** 2", "syntax_error"],
    ["sqrt 4", "syntax_error"],
    ["sqrt(1, 2)", "syntax_error", /sqrt takes 1 argument, not 2/],
    ["max()", "syntax_error"],
    ["1; 2", "syntax_error", /Unexpected character ";"/],
    ["1 = 1", "syntax_error"],
    ["😀", "syntax_error", /Unexpected character "😀"/],
    ["", "syntax_error"],
    ["(".repeat(150) + "1" + ")".repeat(150), "syntax_error", /nested too deeply/],
    ["1 / 0", "division_by_zero"],
    ["5 % (2 - 2)", "division_by_zero"],
    ["0 ^ -1", "division_by_zero"],
    ["10 ^ 400", "overflow"],
    ["1e308 * 10", "overflow"],
    ["1e999", "overflow"],
    ["sqrt(-1)", "domain_error"],
    ["ln(0)", "domain_error"],
    ["log10(-5)", "domain_error"],
    ["(-8) ^ (1/3)", "domain_error"],
    ["round(1, 1.5)", "domain_error"],
  ];
  for (const [text, code, message] of cases) {
    try {
      calculate(text);
      assert.fail(`${text}: expected ${code}`);
    } catch (e) {
      assert.ok(e instanceof ToolError, `${text}: ${e}`);
      assert.equal(e.code, code, `${text}: ${e.message}`);
      if (message) assert.match(e.message, message, text);
    }
  }
});

Deno.test("calculator tool: the result through runWithLimits; over 500 characters is invalid input; errors are results", async () => {
  assert.deepEqual(
    await runWithLimits(calculator, { expression: "(12.5 + 3) * 2^3 / sqrt(16)" }, context()),
    {
      ok: true,
      output: { expression: "(12.5 + 3) * 2^3 / sqrt(16)", result: 31 },
    },
  );
  const long = "1+".repeat(250) + "1";
  assert.equal(
    errorOf(await runWithLimits(calculator, { expression: long }, context())).code,
    "invalid_tool_input",
  );
  assert.equal(
    errorOf(await runWithLimits(calculator, { expression: 42 }, context())).code,
    "invalid_tool_input",
  );
  assert.deepEqual(errorOf(await runWithLimits(calculator, { expression: "1/0" }, context())), {
    code: "division_by_zero",
    message: "Division by zero",
  });
});

// ------------------------------------------------------------------------------------------ current_time

Deno.test("current_time: ISO local time with the zone's offset, the zone and the weekday; UTC by default; an unknown zone is invalid input", async () => {
  const tool = createCurrentTime(() => new Date("2026-12-01T20:30:15.123Z"));
  const run = (input: unknown) => runWithLimits(tool, input, context());
  assert.deepEqual((await run({})).output, {
    iso: "2026-12-01T20:30:15.123Z",
    timezone: "UTC",
    weekday: "Tuesday",
    utc: "2026-12-01T20:30:15.123Z",
  });
  assert.deepEqual((await run({ timezone: "Asia/Kolkata" })).output, {
    iso: "2026-12-02T02:00:15.123+05:30",
    timezone: "Asia/Kolkata",
    weekday: "Wednesday",
    utc: "2026-12-01T20:30:15.123Z",
  });
  const ny = (await run({ timezone: "America/New_York" })).output as { iso: string; weekday: string };
  assert.deepEqual([ny.iso, ny.weekday], ["2026-12-01T15:30:15.123-05:00", "Tuesday"]);
  const summer = createCurrentTime(() => new Date("2026-07-01T12:00:00Z"));
  const berlin = await runWithLimits(summer, { timezone: "Europe/Berlin" }, context());
  assert.equal((berlin.output as { iso: string }).iso, "2026-07-01T14:00:00.000+02:00");

  for (const timezone of ["Mars/Olympus_Mons", "", "+05:00", "x".repeat(65), 5]) {
    assert.equal(errorOf(await run({ timezone })).code, "invalid_tool_input", String(timezone));
  }
  assert.match(errorOf(await run({ timezone: "Mars/Olympus_Mons" })).message, /Unknown time zone/);
  // The real clock.
  const now = (await runWithLimits(currentTime, {}, context())).output as { utc: string };
  assert.ok(Math.abs(Date.parse(now.utc) - Date.now()) < 5_000);
});

// ------------------------------------------------------------------------------------------ web_search

const perplexityAnswer = {
  id: "pplx-1",
  model: "sonar",
  object: "chat.completion",
  created: 1,
  usage: { prompt_tokens: 10, completion_tokens: 20, total_tokens: 30 },
  citations: ["https://example.com/a", "https://example.org/b"],
  search_results: [{ title: "A", url: "https://example.com/a" }],
  choices: [{
    index: 0,
    finish_reason: "stop",
    message: { role: "assistant", content: "It is sunny [1][2]." },
  }],
};

Deno.test("web_search: one Perplexity call through callProvider that passes the gateway's allow-list; answer and citations as returned; no fetch of its own", async () => {
  const calls: { provider: string; path: string; body: unknown }[] = [];
  const ctx = context({
    callProvider: (provider, path, body) => {
      calls.push({ provider, path, body });
      return Promise.resolve(Response.json(perplexityAnswer));
    },
  });
  const { value: result, fetched } = await withoutFetch(() =>
    runWithLimits(webSearch, { query: "  weather in Lisbon  ", recency: "day" }, ctx)
  );
  assert.deepEqual(fetched, [], "web_search fetched nothing itself");
  assert.deepEqual(result, {
    ok: true,
    output: { answer: "It is sunny [1][2].", citations: ["https://example.com/a", "https://example.org/b"] },
  });
  assert.equal(calls.length, 1);
  assert.equal(calls[0].provider, "perplexity");
  assert.equal(calls[0].path, "/chat/completions");
  const body = calls[0].body as Record<string, unknown>;
  assert.equal(body.model, "sonar");
  assert.equal(body.search_recency_filter, "day");
  assert.deepEqual(body.web_search_options, { search_context_size: "low" });
  assert.deepEqual((body.messages as { role: string; content: string }[]).at(-1), {
    role: "user",
    content: "weather in Lisbon",
  });
  const allowed = perplexity.schema.safeParse(body);
  assert.ok(allowed.success, `the gateway's allow-list accepts it: ${allowed.error?.message}`);
  assert.ok(perplexity.schema.safeParse(searchRequest("q")).success);
  assert.equal("search_recency_filter" in searchRequest("q"), false);
});

Deno.test("web_search: a gateway refusal is a tool error with its code; bad input never calls the provider", async () => {
  const refusals: [number, string][] = [[402, "payment_required"], [429, "rate_limited"], [
    400,
    "invalid_request",
  ]];
  for (const [status, code] of refusals) {
    const ctx = context({
      callProvider: () =>
        Promise.resolve(Response.json({ error: { code, message: `refused ${status}` } }, { status })),
    });
    assert.deepEqual(errorOf(await runWithLimits(webSearch, { query: "q" }, ctx)), {
      code,
      message: `refused ${status}`,
    });
  }
  const html = context({
    callProvider: () => Promise.resolve(new Response("<html>bad gateway</html>", { status: 502 })),
  });
  assert.equal(errorOf(await runWithLimits(webSearch, { query: "q" }, html)).code, "upstream_error");
  const odd = context({ callProvider: () => Promise.resolve(Response.json({ choices: [] })) });
  assert.equal(errorOf(await runWithLimits(webSearch, { query: "q" }, odd)).code, "upstream_error");

  let called = 0;
  const counting = context({
    callProvider: () => {
      called++;
      return Promise.resolve(Response.json(perplexityAnswer));
    },
  });
  for (
    const input of [{ query: "" }, { query: "   " }, { query: "x".repeat(401) }, {
      query: "q",
      recency: "hour",
    }, {
      query: "q",
      url: "https://example.com",
    }]
  ) {
    assert.equal(errorOf(await runWithLimits(webSearch, input, counting)).code, "invalid_tool_input");
  }
  assert.equal(called, 0);
});

/** The gateway pipeline in this process for Perplexity, against a fake Perplexity, as the agents runtime calls it. */
async function withInProcessPerplexity(
  fn: (kit: {
    sql: Sql;
    callProviderAs: (
      token: string,
      call: { runId: string; sessionId: string },
    ) => ToolContext["callProvider"];
    newUser: ReturnType<typeof gatewayKit>["newUser"];
    usageRow: ReturnType<typeof gatewayKit>["usageRow"];
    requestIds: string[];
    fakeCalls: () => number;
  }) => Promise<void>,
) {
  const fake = await startFakeLlm();
  const env: Record<string, string> = {
    SUPABASE_DB_URL: stack.dbUrl,
    JWT_SECRET: stack.jwtSecret,
    PERPLEXITY_API_KEY: FAKE_LLM_API_KEY,
    PERPLEXITY_BASE_URL: fake.url,
    LOG_LEVEL: "error",
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, Deno.env.get(k)]));
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  const sql = testSql(2);
  const users: TestUser[] = [];
  const requestIds: string[] = [];
  const gateway = createInProcessGateway(perplexity, {
    upstashLimits: false,
    headersTimeoutMs: 2_000,
    totalTimeoutMs: 10_000,
  });
  const kit = gatewayKit(sql, users);
  try {
    await fn({
      sql,
      // The user verified from the token first, as agents-execute does when it starts the run.
      callProviderAs: (token, call) => async (_provider, path, body, signal) =>
        gateway(
          new Request(`http://127.0.0.1/perplexity-proxy${path}`, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify(body),
            signal,
          }),
          { ...call, user: await verifyUserToken(token), onAdmitted: (id) => requestIds.push(id) },
        ),
      newUser: kit.newUser,
      usageRow: kit.usageRow,
      requestIds,
      fakeCalls: () => fake.calls.length,
    });
  } finally {
    await fake.stop();
    await deleteTestUsers(sql, users);
    await sql.end();
    for (const [k, v] of Object.entries(saved)) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

Deno.test({
  name:
    "web_search through the real gateway pipeline: admitted and billed as the run's user with the search fee, attributed to the run; an empty balance is payment_required",
  // The gateway's lease book and db() pool live for the process, as in a function instance.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withInProcessPerplexity(async ({ sql, callProviderAs, newUser, usageRow, requestIds, fakeCalls }) => {
      const user = await newUser(5_000_000);
      const call = { runId: crypto.randomUUID(), sessionId: crypto.randomUUID() };
      const ctx = context({ userId: user.id, ...call, callProvider: callProviderAs(user.token, call) });
      const result = await runWithLimits(webSearch, { query: "What is new in Postgres 18?" }, ctx);
      assert.equal(result.ok, true, JSON.stringify(result));
      const output = result.output as { answer: string; citations: string[] };
      assert.equal(output.answer, "echo: What is new in Postgres 18?");
      assert.deepEqual(output.citations, [
        "https://example.com/fake-llm/one",
        "https://example.org/fake-llm/two",
      ]);

      assert.equal(requestIds.length, 1);
      await usageRow(requestIds[0]); // settled
      const [row] = await sql`
        select user_id, run_id, session_id, model, request_fee_micro_usd::int as fee, search_context_size,
               debited_tokens::int as debited, status
          from public.token_usage where request_id = ${requestIds[0]}`;
      assert.deepEqual({ ...row }, {
        user_id: user.id,
        run_id: call.runId,
        session_id: call.sessionId,
        model: "sonar",
        fee: 5_000,
        search_context_size: "low",
        debited: row.debited,
        status: "ok",
      });
      assert.ok(row.debited > 0, "the call was billed");

      // A user without balance: the gateway refuses before calling Perplexity, and the model sees why.
      const broke = await newUser(0);
      await sql`update public.users set plan = 'pro' where id = ${broke.id}`; // no free allowance to top up
      const before = fakeCalls();
      const brokeCall = { runId: crypto.randomUUID(), sessionId: crypto.randomUUID() };
      const refused = await runWithLimits(
        webSearch,
        { query: "anything" },
        context({ userId: broke.id, ...brokeCall, callProvider: callProviderAs(broke.token, brokeCall) }),
      );
      assert.equal(errorOf(refused).code, "payment_required");
      assert.equal(fakeCalls(), before, "no upstream call");
    }),
});

// ------------------------------------------------------------------------------------------ usage_summary

Deno.test("usage_summary: periods are UTC days, months by the calendar", () => {
  const now = new Date("2026-03-01T00:30:00Z");
  assert.deepEqual(periodDays("today", now), { from: "2026-03-01", to: "2026-03-01" });
  assert.deepEqual(periodDays("last_7_days", now), { from: "2026-02-23", to: "2026-03-01" });
  assert.deepEqual(periodDays("this_month", now), { from: "2026-03-01", to: "2026-03-01" });
  assert.deepEqual(periodDays("last_month", now), { from: "2026-02-01", to: "2026-02-28" });
  assert.deepEqual(periodDays("last_month", new Date("2026-01-15T12:00:00Z")), {
    from: "2025-12-01",
    to: "2025-12-31",
  });
});

Deno.test("as-user: the read runs as role authenticated with the user's claims, and nothing of the setting outlives it", async () => {
  const sql = testSql(1);
  try {
    const seen = await asUser(USER, { statementTimeoutMs: 1_234 }, async (tx) => {
      const [row] = await tx`select current_user as role, auth.uid()::text as uid, auth.role() as claim_role,
                                    current_setting('statement_timeout') as timeout`;
      return { ...row };
    }, sql);
    assert.deepEqual(seen, {
      role: "authenticated",
      uid: USER,
      claim_role: "authenticated",
      timeout: "1234ms",
    });
    // What the user may not read stays unreadable inside the transaction (a private table).
    await assert.rejects(
      asUser(
        USER,
        { statementTimeoutMs: 1_000 },
        (tx) => tx`select 1 from private.usage_outbox limit 1`,
        sql,
      ),
      /permission denied/,
    );
    const [after] =
      await sql`select current_user as role, current_setting('request.jwt.claims', true) as claims`;
    assert.equal(after.role, "postgres");
    assert.ok(!after.claims, "the claims were local to the transaction");
  } finally {
    await sql.end();
  }
});

Deno.test({
  name:
    "usage_summary: read as the user, A sees only A's usage (by model, with totals), B only B's, a user without usage nothing",
  // db() is a process-wide pool that stays open by design.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const before = Deno.env.get("SUPABASE_DB_URL");
    Deno.env.set("SUPABASE_DB_URL", stack.dbUrl);
    const sql = testSql(2);
    const users: TestUser[] = [];
    try {
      const [a, b, c] = [await createTestUser(sql), await createTestUser(sql), await createTestUser(sql)];
      users.push(a, b, c);
      const usage = async (user: TestUser, model: string, input: number, output: number, cost: number) =>
        await sql`insert into public.token_usage (request_id, user_id, provider, model, input_tokens, output_tokens,
                                                  cost_micro_usd, status)
                  values (${`agents-tools-test:${crypto.randomUUID()}`}, ${user.id}, 'openai', ${model}, ${input},
                          ${output}, ${cost}, 'ok')`;
      await usage(a, "gpt-4o-mini", 100, 10, 1_500);
      await usage(a, "gpt-4o-mini", 200, 20, 2_500);
      await usage(a, "gpt-4o", 50, 5, 9_000);
      await usage(b, "gpt-4o-mini", 1_000_000, 1_000_000, 7_000_000);

      const tool = createUsageSummary();
      const summaryOf = async (user: TestUser, input: unknown = {}) => {
        const result = await runWithLimits(tool, input, context({ userId: user.id }));
        assert.equal(result.ok, true, JSON.stringify(result));
        return result.output as {
          period: string;
          total: Record<string, number>;
          by_model: Record<string, unknown>[];
        };
      };

      const ofA = await summaryOf(a);
      assert.equal(ofA.period, "this_month");
      assert.deepEqual(ofA.total, {
        requests: 3,
        input_tokens: 350,
        cached_input_tokens: 0,
        output_tokens: 35,
        cost_usd: 0.013,
      });
      assert.deepEqual(ofA.by_model, [
        {
          provider: "openai",
          model: "gpt-4o",
          requests: 1,
          input_tokens: 50,
          cached_input_tokens: 0,
          output_tokens: 5,
          cost_usd: 0.009,
        },
        {
          provider: "openai",
          model: "gpt-4o-mini",
          requests: 2,
          input_tokens: 300,
          cached_input_tokens: 0,
          output_tokens: 30,
          cost_usd: 0.004,
        },
      ]);
      assert.ok(!JSON.stringify(ofA).includes("1000000"), "none of B's usage in A's summary");

      const ofB = await summaryOf(b, { period: "today" });
      assert.deepEqual(ofB.total, {
        requests: 1,
        input_tokens: 1_000_000,
        cached_input_tokens: 0,
        output_tokens: 1_000_000,
        cost_usd: 7,
      });
      assert.deepEqual((await summaryOf(c)).by_model, []);
      assert.deepEqual((await summaryOf(a, { period: "last_month" })).by_model, []);
      assert.equal(
        errorOf(await runWithLimits(tool, { period: "all_time" }, context({ userId: a.id }))).code,
        "invalid_tool_input",
      );
    } finally {
      await deleteTestUsers(sql, users);
      await sql.end();
      if (before === undefined) Deno.env.delete("SUPABASE_DB_URL");
      else Deno.env.set("SUPABASE_DB_URL", before);
    }
  },
});
