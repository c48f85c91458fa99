// agents-execute's guarantees, each through the test functions server with the fake providers upstream: the
// same Idempotency-Key is the same run; one run at a time per session (409); every stop a status with a reason
// (max steps, cost cap, repeated tool call, output cut at max tokens); a provider failure mid-run fails the run
// with what it produced, billing only what was called; cancel stops it and aborts the call in flight (billed what
// it produced); a client that disconnects replays what it missed; only the tools the pinned version lists run;
// 20 concurrent runs on a small balance never overdraw; and the run tables are each user's own under RLS.
import assert from "node:assert/strict";
import {
  type AgentEvent,
  AGENTS,
  createEmployee,
  deleteEmployee,
  type Employee,
  execute,
  hire,
  readEvents,
  runOver,
  stepsOf,
} from "./_lib/agents.ts";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { type FakeLlm, lastUserTextIn, toolResultsIn } from "./_lib/fake-llm.ts";
import { gatewayKit, gatewayTest, type GwUser, MODEL, sleep } from "./_lib/gateway.ts";
import { anonClient, clientWithToken } from "./_lib/supabase.ts";
import { hs256, userClaims } from "./_lib/tokens.ts";

const sql = testSql(6);
const users: TestUser[] = [];
const kit = gatewayKit(sql, users);
const TOOLS = ["calculator", "current_time"];

/** A test with an OpenAI employee (calculator, current_time) hired by a user with tokens. */
function agentTest(
  name: string,
  fn: (t: { fake: FakeLlm; user: GwUser; hireId: string; employee: Employee }) => Promise<void>,
  employeeFields: {
    tools?: string[];
    provider?: string;
    model?: string;
    settings?: Record<string, unknown>;
  } = {},
  credit?: number,
) {
  gatewayTest(name, async (fake) => {
    const employee = await createEmployee(sql, {
      provider: "openai",
      model: MODEL.openai,
      tools: TOOLS,
      ...employeeFields,
    });
    try {
      const user = await kit.newUser(credit);
      const hireId = await hire(sql, user, employee);
      await fn({ fake, user, hireId, employee });
    } finally {
      await deleteEmployee(sql, employee).catch(() => {});
    }
  });
}

const calc = (expression: string) => ({ name: "calculator", arguments: { expression } });

async function runJson(res: Response) {
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text) as {
    run: { id: string; status: string; incomplete_reason: string | null; error_code: string | null };
    message: { content: string; status: string; parts: unknown[] } | null;
  };
}

agentTest(
  "the same Idempotency-Key returns the same run; another request with it is a 422",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "Done." });
    const key = `agent-${crypto.randomUUID()}`;
    const first = await runJson(
      await execute(user.token, { hire_id: hireId, message: "once" }, { idempotencyKey: key }),
    );
    const again = await runJson(
      await execute(user.token, { hire_id: hireId, message: "once" }, { idempotencyKey: key }),
    );
    assert.equal(again.run.id, first.run.id);
    assert.equal(again.message?.content, "Done.");
    const [{ runs, messages, calls }] = await sql`
    select (select count(*)::int from public.agent_runs where user_id = ${user.id}) as runs,
           (select count(*)::int from public.chat_messages where user_id = ${user.id}) as messages,
           (select count(*)::int from public.token_usage where user_id = ${user.id}) as calls`;
    assert.deepEqual({ runs, messages, calls }, { runs: 1, messages: 2, calls: 1 });
    const other = await execute(user.token, { hire_id: hireId, message: "something else" }, {
      idempotencyKey: key,
    });
    assert.equal(other.status, 422);
    assert.equal((await other.json()).error.code, "idempotency_key_reused");
    const bad = await execute(user.token, { hire_id: hireId, message: "x" }, { idempotencyKey: "short" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
  },
);

agentTest(
  "a second run on a session while one is active is a 409 with the active run's id",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "slow answer", chunks: 4, chunkDelayMs: 300 });
    const res = await execute(user.token, { hire_id: hireId, message: "take your time", stream: true });
    const [created] = await readEvents(res, 1);
    const runId = String(created.run_id);
    const sessionId = String(created.session_id);
    const second = await execute(user.token, { session_id: sessionId, message: "me too" });
    assert.equal(second.status, 409);
    const body = await second.json();
    assert.equal(body.error.code, "run_in_progress");
    assert.equal(body.error.details, runId);
    assert.equal((await runOver(sql, runId)).status, "completed");
    // Over: the session takes the next run.
    const third = await runJson(await execute(user.token, { session_id: sessionId, message: "now?" }));
    assert.equal(third.run.status, "completed");
  },
);

agentTest(
  "a run outlives the token it was started with: its later calls are its user's, not refused as expired",
  async ({ fake, user, hireId }) => {
    // A token with at most two seconds left; the first model call streams for longer (its events 0.5 s apart).
    const token = await hs256(userClaims(user.id, user.email), undefined, 2);
    fake.setScript({ reply: "Done." });
    fake.setScript({
      times: 1,
      reply: "Working on it.",
      chunks: 3,
      chunkDelayMs: 500,
      toolCalls: [calc("6*7")],
    });
    const { run, message } = await runJson(await execute(token, { hire_id: hireId, message: "slow" }));
    assert.equal(run.status, "completed", JSON.stringify(run));
    assert.equal(message?.content, "Working on it.\n\nDone.");
    const steps = await stepsOf(sql, run.id);
    assert.deepEqual(steps.map((s) => [s.kind, s.status]), [
      ["model_call", "completed"],
      ["tool_call", "completed"],
      ["model_call", "completed"],
    ]);
    // The second call, made after the token expired, is billed to the run's user.
    const [usage] = await sql`
      select count(*)::int as n, count(distinct user_id)::int as users, min(user_id::text) as user_id
        from public.token_usage where run_id = ${run.id}`;
    assert.deepEqual({ ...usage }, { n: 2, users: 1, user_id: user.id });
    // And the token itself is refused now, as any expired token is.
    const late = await execute(token, { hire_id: hireId, message: "again" });
    assert.equal(late.status, 401);
    await late.body?.cancel();
  },
);

agentTest("a run stops at max_steps: incomplete with the reason", async ({ fake, user, hireId }) => {
  fake.setScript({ reply: "never reached" });
  for (const e of ["1+1", "2+2", "3+3"]) fake.setScript({ times: 1, toolCalls: [calc(e)] });
  const { run, message } = await runJson(
    await execute(user.token, { hire_id: hireId, message: "go", max_steps: 2 }),
  );
  assert.deepEqual([run.status, run.incomplete_reason], ["incomplete", "max_steps"]);
  assert.equal(message?.status, "complete");
  const steps = await stepsOf(sql, run.id);
  assert.deepEqual(steps.map((s) => s.kind), ["model_call", "tool_call", "model_call", "tool_call"]);
});

agentTest("a run stops when the model repeats an identical tool call", async ({ fake, user, hireId }) => {
  fake.setScript({ toolCalls: [{ name: "calculator", arguments: { expression: "2*21" } }] });
  const { run } = await runJson(await execute(user.token, { hire_id: hireId, message: "loop" }));
  assert.deepEqual([run.status, run.incomplete_reason], ["incomplete", "repeated_tool_call"]);
  // The call ran once; the second request was answered, not run again.
  const steps = await stepsOf(sql, run.id);
  assert.deepEqual(steps.map((s) => s.kind), ["model_call", "tool_call", "model_call"]);
});

agentTest("a run stops at its cost cap before the next model call", async ({ fake, user, hireId }) => {
  fake.setScript({ reply: "never reached" });
  fake.setScript({ times: 1, toolCalls: [calc("1+2")], inputTokens: 5000, outputTokens: 500 });
  const { run } = await runJson(
    await execute(user.token, { hire_id: hireId, message: "costly", max_cost_tokens: 1 }),
  );
  assert.deepEqual([run.status, run.incomplete_reason], ["incomplete", "max_cost"]);
  const [{ calls }] =
    await sql`select count(*)::int as calls from public.token_usage where run_id = ${run.id}`;
  assert.equal(calls, 1);
});

agentTest(
  "an answer cut at max tokens ends the run incomplete (max_output_tokens)",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "cut sh", stopReason: "length" });
    const { run, message } = await runJson(await execute(user.token, { hire_id: hireId, message: "long" }));
    assert.deepEqual([run.status, run.incomplete_reason], ["incomplete", "max_output_tokens"]);
    assert.equal(message?.content, "cut sh");
  },
);

agentTest(
  "a provider failure mid-run fails the run with its code; what was produced is kept and billed once",
  async ({ fake, user, hireId }) => {
    fake.setScript({ status: 500, provider: "openai" });
    // (A script with `times` applies on top of the standing one: status 0 undoes its failure for this call.)
    fake.setScript({ times: 1, status: 0, reply: "Working on it.", toolCalls: [calc("5*5")] });
    const { run, message } = await runJson(await execute(user.token, { hire_id: hireId, message: "try" }));
    assert.equal(run.status, "failed");
    assert.match(String(run.error_code), /^[a-z][a-z0-9_]*$/);
    assert.equal(message?.status, "failed");
    assert.equal(message?.content, "Working on it.");
    const usage = await sql`select status, debited_tokens::int as debited from public.token_usage
                           where run_id = ${run.id} order by created_at`;
    assert.deepEqual(usage.map((u) => u.status), ["ok", "upstream_error"]);
    assert.equal(usage[1].debited, 0);
    // The failed call is a step too, with its code.
    const steps = await stepsOf(sql, run.id);
    assert.deepEqual(steps.map((s) => [s.kind, s.status]), [
      ["model_call", "completed"],
      ["tool_call", "completed"],
      ["model_call", "failed"],
    ]);
    assert.equal(steps[2].error_code, run.error_code);
  },
);

agentTest(
  "cancel stops a run and aborts the model call in flight, billing what it produced",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "one two three four five six", chunks: 6, hangAfterChunks: 2 });
    const res = await execute(user.token, { hire_id: hireId, message: "stream forever", stream: true });
    const events: AgentEvent[] = [];
    const reader = readEvents(res);
    // Wait for the call to be in flight with output delivered.
    const until = Date.now() + 10_000;
    while (!(fake.calls.at(-1)?.chunksSent ?? 0 >= 2) && Date.now() < until) await sleep(20);
    const [run] = await sql`select id from public.agent_runs where user_id = ${user.id}`;
    const cancel = await fetch(`${AGENTS}/runs/${run.id}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}` },
    });
    assert.equal(cancel.status, 202);
    assert.equal((await cancel.json()).cancel_requested, true);
    events.push(...await reader);
    const types = events.map((e) => e.type);
    assert.ok(types.includes("run.cancelled"), types.join(","));
    assert.equal(types.at(-1), "done");
    const over = await runOver(sql, run.id);
    assert.deepEqual([over.status, over.error_code], ["cancelled", "cancelled_by_user"]);
    assert.equal(fake.calls.at(-1)?.aborted, true, "the call in flight was aborted upstream");
    const [usage] =
      await sql`select status, output_tokens::int as output from public.token_usage where run_id = ${run.id}`;
    assert.equal(usage.status, "cancelled");
    assert.ok(usage.output > 0, "what was streamed is billed");
    const [message] =
      await sql`select status, content from public.chat_messages where id = ${over.assistant_message_id}`;
    assert.equal(message.status, "cancelled");
    // What streamed before the cancel is kept, in the answer and on the cancelled step.
    const streamed = events.filter((e) => e.type === "message.delta").map((e) => e.delta).join("");
    assert.ok(streamed.length > 0);
    assert.equal(message.content, streamed);
    const steps = await stepsOf(sql, run.id);
    assert.deepEqual(steps.map((s) => [s.kind, s.status, s.error_code]), [
      ["model_call", "cancelled", "cancelled_by_user"],
    ]);
    // Cancelling a run that is over changes nothing; another user's run is not found.
    const late = await fetch(`${AGENTS}/runs/${run.id}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${user.token}` },
    });
    assert.equal(late.status, 200);
    assert.equal((await late.json()).status, "cancelled");
    const stranger = await kit.newUser(0);
    const theirs = await fetch(`${AGENTS}/runs/${run.id}/cancel`, {
      method: "POST",
      headers: { authorization: `Bearer ${stranger.token}` },
    });
    assert.equal(theirs.status, 404);
    await theirs.body?.cancel();
  },
);

agentTest(
  "a cancel asked on another instance reaches the run with its heartbeat",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "one two three four", chunks: 4, hangAfterChunks: 1 });
    const res = await execute(user.token, { hire_id: hireId, message: "hang", stream: true });
    const reader = readEvents(res);
    const until = Date.now() + 10_000;
    while (!((fake.calls.at(-1)?.chunksSent ?? 0) >= 1) && Date.now() < until) await sleep(20);
    // What request_agent_run_cancel does on an instance that does not run it: only the database knows.
    const [run] = await sql`select id from public.agent_runs where user_id = ${user.id}`;
    await sql`select * from private.request_agent_run_cancel(${user.id}, ${run.id})`;
    const events = await reader;
    assert.ok(events.some((e) => e.type === "run.cancelled"), events.map((e) => e.type).join(","));
    const over = await runOver(sql, run.id);
    assert.deepEqual([over.status, over.error_code], ["cancelled", "cancelled_by_user"]);
    assert.equal(fake.calls.at(-1)?.aborted, true, "the call in flight was aborted upstream");
  },
);

agentTest(
  "a client that disconnects does not stop the run, and replays what it missed",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "alpha beta gamma delta", chunks: 4, chunkDelayMs: 150 });
    const res = await execute(user.token, { hire_id: hireId, message: "tell me", stream: true });
    const seen = await readEvents(res, 3); // then the client goes away
    const runId = String(seen[0].run_id);
    const over = await runOver(sql, runId);
    assert.equal(over.status, "completed");
    const replay = await fetch(`${AGENTS}/runs/${runId}/events?starting_after=3`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    assert.equal(replay.status, 200);
    const rest = await readEvents(replay);
    assert.equal(rest[0].sequence_number, 4);
    assert.equal(rest.at(-1)?.type, "done");
    const all = [...seen, ...rest];
    assert.deepEqual(all.map((e) => e.sequence_number), all.map((_, i) => i + 1));
    const text = all.filter((e) => e.type === "message.delta").map((e) => e.delta).join("");
    assert.equal(text, "alpha beta gamma delta");
    // From the start, the same events; bad cursors and other users' runs are refused.
    const full = await readEvents(
      await fetch(`${AGENTS}/runs/${runId}/events`, { headers: { authorization: `Bearer ${user.token}` } }),
    );
    assert.deepEqual(full, all);
    const bad = await fetch(`${AGENTS}/runs/${runId}/events?starting_after=-1`, {
      headers: { authorization: `Bearer ${user.token}` },
    });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    const stranger = await kit.newUser(0);
    const theirs = await fetch(`${AGENTS}/runs/${runId}/events`, {
      headers: { authorization: `Bearer ${stranger.token}` },
    });
    assert.equal(theirs.status, 404);
    await theirs.body?.cancel();
  },
);

agentTest("a tool the pinned version does not list is never run", async ({ fake, user, hireId }) => {
  fake.setScript({ reply: "ok" });
  fake.setScript({ times: 1, toolCalls: [{ name: "web_search", arguments: { query: "anything" } }] });
  const { run } = await runJson(await execute(user.token, { hire_id: hireId, message: "search" }));
  assert.equal(run.status, "completed");
  const steps = await stepsOf(sql, run.id);
  assert.deepEqual(steps.map((s) => [s.kind, s.status, s.error_code]), [
    ["model_call", "completed", null],
    ["tool_call", "failed", "unknown_tool"],
    ["model_call", "completed", null],
  ]);
  // The model was offered only the listed tools, and told the unlisted one does not exist.
  const offered = (fake.calls[0].body as { tools: { function: { name: string } }[] }).tools.map((t) =>
    t.function.name
  );
  assert.deepEqual(offered.sort(), [...TOOLS].sort());
  assert.equal(fake.calls.filter((c) => c.provider === "perplexity").length, 0);
  assert.equal(toolResultsIn(fake.calls[1]).length, 1);
}, { tools: TOOLS });

agentTest(
  "a run uses the hire's pinned version, not the employee's newer one",
  async ({ fake, user, hireId, employee }) => {
    fake.setScript({ reply: "pinned" });
    await sql`update public.ai_employees set system_prompt = 'NEW PROMPT v2' where id = ${employee.id}`;
    await runJson(await execute(user.token, { hire_id: hireId, message: "who are you" }));
    const body = JSON.stringify(fake.calls[0].body);
    assert.ok(body.includes(`You are the test worker ${employee.slug}.`));
    assert.ok(!body.includes("NEW PROMPT v2"));
    assert.equal(lastUserTextIn(fake.calls[0]), "who are you");
  },
);

agentTest(
  "refusals: 401 without a token, 400 a bad body, 404 another user's hire, 409 an inactive hire",
  async ({ user, hireId }) => {
    const anon = await fetch(AGENTS, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    assert.equal(anon.status, 401);
    await anon.body?.cancel();
    for (
      const body of [
        {},
        { hire_id: hireId },
        { hire_id: hireId, message: "" },
        { hire_id: "nope", message: "x" },
        { hire_id: hireId, session_id: hireId, message: "x" },
        { hire_id: hireId, message: "x", max_steps: 99 },
        { hire_id: hireId, message: "x", extra: 1 },
      ]
    ) {
      const res = await execute(user.token, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).error.code, "invalid_request");
    }
    const stranger = await kit.newUser();
    const theirs = await execute(stranger.token, { hire_id: hireId, message: "x" });
    assert.equal(theirs.status, 404);
    assert.equal((await theirs.json()).error.code, "hire_not_found");
    await sql`update public.purchased_employees set is_active = false where id = ${hireId}`;
    const inactive = await execute(user.token, { hire_id: hireId, message: "x" });
    assert.equal(inactive.status, 409);
    assert.equal((await inactive.json()).error.code, "hire_inactive");
    const [{ runs }] =
      await sql`select count(*)::int as runs from public.agent_runs where user_id in (${user.id}, ${stranger.id})`;
    assert.equal(runs, 0, "a refused request starts nothing");
  },
);

agentTest(
  "20 concurrent runs of one user on a small balance never overdraw",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "short", inputTokens: 200, outputTokens: 50 });
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => execute(user.token, { hire_id: hireId, message: `run ${i}` }).then(runJson),
      ),
    );
    const statuses = results.map((r) => r.run.status);
    assert.ok(statuses.every((s) => s === "completed" || s === "failed"), statuses.join(","));
    assert.ok(statuses.includes("failed"), "the balance runs out before 20 runs");
    assert.ok(statuses.includes("completed"), "some runs fit in the balance");
    await kit.heldSettles(user.id);
    const { balance, held } = await kit.balanceOf(user.id);
    assert.ok(balance >= 0, `balance ${balance} never below zero`);
    assert.equal(held, 0);
    const [{ ledger }] =
      await sql`select coalesce(sum(delta), 0)::float8 as ledger from public.token_transactions
                                  where user_id = ${user.id}`;
    assert.equal(ledger, balance, "the ledger equals the balance");
    const [{ billed }] =
      await sql`select coalesce(sum(cost_tokens), 0)::float8 as billed from public.agent_runs
                                  where user_id = ${user.id}`;
    const [{ used }] =
      await sql`select coalesce(sum(debited_tokens), 0)::float8 as used from public.token_usage
                                where user_id = ${user.id}`;
    assert.equal(billed, used, "the runs' totals are what was billed");
  },
  {},
  3_000,
);

agentTest(
  "runs, steps and events are their owner's alone (supabase-js, RLS)",
  async ({ fake, user, hireId }) => {
    fake.setScript({ reply: "mine" });
    fake.setScript({ times: 1, toolCalls: [calc("1+1")] });
    const { run } = await runJson(
      await execute(user.token, { hire_id: hireId, message: "private", stream: false }),
    );
    const mine = clientWithToken(user.token);
    const runs = await mine.from("agent_runs").select("id, status, cost_tokens").eq("id", run.id);
    assert.equal(runs.data?.length, 1);
    assert.equal(
      (await mine.from("agent_run_steps").select("step_index").eq("run_id", run.id)).data?.length,
      3,
    );
    assert.ok(
      ((await mine.from("agent_run_events").select("sequence_number").eq("run_id", run.id)).data?.length ??
        0) > 3,
    );
    const stranger = await kit.newUser(0);
    const theirs = clientWithToken(stranger.token);
    for (
      const table of [
        "agent_runs",
        "agent_run_steps",
        "agent_run_events",
        "chat_sessions",
        "chat_messages",
      ] as const
    ) {
      const { data, error } = await theirs.from(table).select("*").limit(100);
      assert.equal(error, null);
      assert.equal(data?.filter((r) => (r as { user_id?: string }).user_id === user.id).length, 0, table);
    }
    const anon = await anonClient().from("agent_runs").select("id");
    assert.equal(anon.data?.length ?? 0, 0);
    // Nobody but the service writes a run: the owner's own update and insert are refused.
    const update = await mine.from("agent_runs").update({ status: "completed" }).eq("id", run.id);
    assert.equal(update.status, 403);
    const insert = await mine.from("agent_run_steps").insert({ run_id: run.id, step_index: 99 } as never);
    assert.equal(insert.status, 403);
  },
);

Deno.test({
  name: "teardown",
  fn: async () => {
    await deleteTestUsers(sql, users);
    await sql.end();
  },
  sanitizeOps: false,
  sanitizeResources: false,
});
