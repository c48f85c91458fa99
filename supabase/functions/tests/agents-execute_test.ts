// agents-execute end to end, through the test functions server: a hired employee runs on the server, its model
// called through the gateway pipeline in-process (the fake providers upstream, speaking tool calling in each
// wire format), its tools run server-side, every step stored, the answer written once, billed once.
import assert from "node:assert/strict";
import {
  createEmployee,
  deleteEmployee,
  execute,
  hire,
  readEvents,
  runOver,
  stepsOf,
} from "./_lib/agents.ts";
import { deleteTestUsers, testSql, type TestUser } from "./_lib/db.ts";
import { toolResultsIn } from "./_lib/fake-llm.ts";
import { gatewayKit, gatewayTest, MODEL } from "./_lib/gateway.ts";

const sql = testSql(4);
const users: TestUser[] = [];
const kit = gatewayKit(sql, users);

type Flavour = { name: string; provider: string; model: string; settings?: Record<string, unknown> };
const FLAVOURS: Flavour[] = [
  { name: "openai chat completions", provider: "openai", model: MODEL.openai },
  {
    name: "openai responses",
    provider: "openai",
    model: MODEL.openai,
    settings: { openai_api: "responses" },
  },
  { name: "anthropic", provider: "anthropic", model: MODEL.anthropic },
  { name: "google", provider: "google", model: MODEL.google },
];

for (const flavour of FLAVOURS) {
  for (const stream of [false, true]) {
    gatewayTest(
      `${flavour.name}: a run with two tool calls ends completed, every step stored and billed once (stream: ${stream})`,
      async (fake) => {
        const employee = await createEmployee(sql, { ...flavour, tools: ["calculator", "current_time"] });
        try {
          const user = await kit.newUser();
          const hireId = await hire(sql, user, employee);
          fake.setScript({ reply: "It is 42, and I know the time." });
          fake.setScript({
            times: 1,
            reply: "Let me compute.",
            toolCalls: [
              { name: "calculator", arguments: { expression: "6*7" } },
              { name: "current_time", arguments: { timezone: "Europe/Paris" } },
            ],
          });
          const res = await execute(user.token, {
            hire_id: hireId,
            message: "What is 6*7, and the time?",
            stream,
          });
          assert.equal(res.status, 200, stream ? "" : await res.clone().text());
          let runId: string;
          if (stream) {
            const events = await readEvents(res);
            const types = events.map((e) => e.type);
            assert.equal(types[0], "run.created");
            assert.equal(types.at(-1), "done");
            assert.ok(types.includes("run.completed"), types.join(","));
            assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i + 1));
            assert.equal(types.filter((t) => t === "tool_call.completed").length, 2);
            runId = String(events[0].run_id);
          } else {
            const body = await res.json();
            runId = body.run.id;
            assert.equal(body.run.status, "completed");
            // Every step's text, in order: the answer is the whole turn.
            assert.equal(body.message.content, "Let me compute.\n\nIt is 42, and I know the time.");
          }
          const run = await runOver(sql, runId);
          assert.equal(run.status, "completed");
          const steps = await stepsOf(sql, runId);
          assert.deepEqual(
            steps.map((s) => s.kind),
            ["model_call", "tool_call", "tool_call", "model_call"],
            JSON.stringify(steps),
          );
          assert.deepEqual(steps.map((s) => s.tool_name), [null, "calculator", "current_time", null]);
          const calc = steps[1].output as { result: number };
          assert.equal(calc.result, 42);
          // The second model call carried both results back, in the provider's own format.
          const modelCalls = fake.calls.filter((c) => c.provider === flavour.provider);
          assert.equal(modelCalls.length, 2);
          assert.equal(toolResultsIn(modelCalls[1]).length, 2);
          // Billed once per model call, attributed to the run and its session; the run's total is their sum.
          const usage = await sql`select request_id, debited_tokens::float8 as debited, run_id, session_id
                                  from public.token_usage where run_id = ${runId}`;
          assert.equal(usage.length, 2);
          assert.deepEqual(
            usage.map((u) => u.request_id).sort(),
            steps.filter((s) => s.kind === "model_call").map((s) => s.gateway_request_id).sort(),
          );
          const total = usage.reduce((a, u) => a + u.debited, 0);
          assert.equal((await runOver(sql, runId)).cost_tokens, total);
          // Each model call's step knows what its call was billed (stored before its usage settled, or after).
          const billedBy = new Map(usage.map((u) => [u.request_id, u.debited]));
          for (const s of steps.filter((s) => s.kind === "model_call")) {
            assert.equal(s.cost_tokens, billedBy.get(s.gateway_request_id));
          }
          const messages = await sql`select role, status, content from public.chat_messages
                                    where run_id = ${runId} or id = (select user_message_id from public.agent_runs where id = ${runId})
                                    order by created_at`;
          assert.deepEqual(messages.map((m) => [m.role, m.status]), [["user", "complete"], [
            "assistant",
            "complete",
          ]]);
        } finally {
          await deleteEmployee(sql, employee).catch(() => {});
        }
      },
    );
  }
}

for (const stream of [false, true]) {
  gatewayTest(
    `perplexity (no tool calling): a run answers in one model call (stream: ${stream})`,
    async (fake) => {
      const employee = await createEmployee(sql, { provider: "perplexity", model: MODEL.perplexity });
      try {
        const user = await kit.newUser();
        const hireId = await hire(sql, user, employee);
        fake.setScript({ reply: "Searched and answered." });
        const res = await execute(user.token, { hire_id: hireId, message: "What's new?", stream });
        const runId = stream ? String((await readEvents(res))[0].run_id) : (await res.json()).run.id;
        const run = await runOver(sql, runId);
        assert.equal(run.status, "completed");
        const [message] =
          await sql`select content from public.chat_messages where id = ${run.assistant_message_id}`;
        assert.equal(message.content, "Searched and answered.");
        const usage =
          await sql`select provider, search_context_size from public.token_usage where run_id = ${runId}`;
        assert.deepEqual(usage.map((u) => u.provider), ["perplexity"]);
        // Offered no tools: it lists none, and Perplexity has no tool calling.
        assert.equal((fake.calls[0].body as { tools?: unknown }).tools, undefined);
      } finally {
        await deleteEmployee(sql, employee).catch(() => {});
      }
    },
  );
}

Deno.test({
  name: "teardown",
  fn: async () => {
    await deleteTestUsers(sql, users);
    await sql.end();
  },
  sanitizeOps: false,
  sanitizeResources: false,
});
