// The agents runtime's write-behind of steps (agents-execute/step-writer.ts) on its own, with a record function
// of the test's: the steps are stored in the order they ended whatever each write takes, the loop never waits
// for one, the first failure fails the run and nothing after it is written, and what a write reads (a cancel, the
// cost billed so far) reaches the run. The runtime's own use of it against the database is proved end to end in
// agents-execute_test.ts and agents-runs_test.ts (every step stored, in order, before the run's end).
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.10.2";
import { StepWriter } from "../agents-execute/step-writer.ts";
import type { RunSignals, StepRecord } from "../agents-execute/start.ts";

const RUN = "00000000-0000-4000-8000-0000000000aa";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function step(i: number): StepRecord {
  const at = new Date(Date.UTC(2026, 11, 1, 0, 0, i)).toISOString();
  return {
    kind: i % 2 ? "tool_call" : "model_call",
    status: "completed",
    output: { i },
    started_at: at,
    ended_at: at,
  };
}

const signals = (over: Partial<RunSignals> = {}): RunSignals => ({
  cancel_requested: false,
  status: "in_progress",
  cost_tokens: 0,
  ...over,
});

Deno.test("step writer: stores steps in the order they ended, whatever each write takes, and the loop never waits", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 12 }),
      async (delays) => {
        const stored: number[] = [];
        let writing = 0;
        const writer = new StepWriter(RUN, () => {}, async (runId, s) => {
          assert.equal(runId, RUN);
          writing++;
          assert.equal(writing, 1, "one write at a time");
          await sleep(delays[(s.output as { i: number }).i]);
          stored.push((s.output as { i: number }).i);
          writing--;
          return signals();
        });
        const started = performance.now();
        for (let i = 0; i < delays.length; i++) writer.write(step(i));
        // write() only queues: none of the writes has happened yet when the loop goes on.
        assert.equal(stored.length, 0);
        assert.ok(performance.now() - started < 50);
        await writer.drain();
        assert.deepEqual(stored, delays.map((_, i) => i));
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("step writer: the first write that fails fails the run, and no later step is written", async () => {
  const stored: number[] = [];
  const writer = new StepWriter(RUN, () => {}, (_runId, s) => {
    const i = (s.output as { i: number }).i;
    if (i === 1) return Promise.reject(new Error("connection lost"));
    stored.push(i);
    return Promise.resolve(signals());
  });
  writer.write(step(0));
  writer.check(); // nothing has failed yet
  writer.write(step(1));
  writer.write(step(2));
  await assert.rejects(writer.drain(), /connection lost/);
  assert.throws(() => writer.check(), /connection lost/);
  assert.deepEqual(stored, [0], "the step after the failed one is not written out of order");
});

Deno.test("step writer: a cancel read by a write reaches the run, and the cost billed so far only grows", async () => {
  let cancels = 0;
  const replies = [
    signals({ cost_tokens: 40 }),
    signals({ cost_tokens: 25 }),
    signals({ cancel_requested: true }),
  ];
  const writer = new StepWriter(RUN, () => cancels++, () => Promise.resolve(replies.shift()!));
  writer.write(step(0));
  await writer.drain();
  assert.equal(writer.costTokens, 40);
  assert.equal(cancels, 0);
  writer.write(step(1));
  writer.write(step(2));
  await writer.drain();
  assert.equal(writer.costTokens, 40, "an older read never lowers it");
  assert.equal(cancels, 1);
});
