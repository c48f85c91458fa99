// What the agents-execute tests share: a test employee (catalog.ts: its model, tools and settings) hired by a test
// user with tokens, calls to agents-execute as a front end makes them (fetch, its SSE parsed), and reads of what a
// run left.
import assert from "node:assert/strict";
import type { Employee } from "./catalog.ts";
import type { Sql } from "./db.ts";
import { F, type GwUser, sleep } from "./gateway.ts";

export const AGENTS = `${F}/agents-execute`;

export { createEmployee, deleteEmployee, type Employee } from "./catalog.ts";

/** The user's hire of the employee (as hire_employee makes it: the database pins the version). */
export async function hire(sql: Sql, user: GwUser, e: Employee): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    insert into public.purchased_employees (user_id, employee_id) values (${user.id}, ${e.id}) returning id`;
  return row.id;
}

export type AgentEvent = { type: string; sequence_number: number; [k: string]: unknown };

/** POST agents-execute as the user. */
export function execute(
  token: string,
  body: Record<string, unknown>,
  init: { idempotencyKey?: string; signal?: AbortSignal } = {},
): Promise<Response> {
  return fetch(AGENTS, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      ...(init.idempotencyKey ? { "idempotency-key": init.idempotencyKey } : {}),
    },
    body: JSON.stringify(body),
    signal: init.signal,
  });
}

/** The SSE events of a body, as the client parses them (`event:` and its JSON `data:`). */
export function parseEvents(text: string): AgentEvent[] {
  return text.split(/\n\n/).map((frame) => frame.split("\n").find((l) => l.startsWith("data: ")))
    .filter((l): l is string => l !== undefined).map((l) => JSON.parse(l.slice(6)) as AgentEvent);
}

/** Reads an SSE response until `done` (or the body ends); `stopAfter` leaves after that many events. */
export async function readEvents(res: Response, stopAfter?: number): Promise<AgentEvent[]> {
  assert.equal(res.headers.get("content-type"), "text/event-stream; charset=utf-8");
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const events: AgentEvent[] = [];
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    const frames = buffer.split("\n\n");
    buffer = frames.pop() ?? "";
    for (const e of parseEvents(frames.map((f) => f + "\n\n").join(""))) {
      events.push(e);
      if (e.type === "done" || (stopAfter !== undefined && events.length >= stopAfter)) {
        await reader.cancel();
        return events;
      }
    }
  }
  return events;
}

export type RunRow = {
  id: string;
  status: string;
  incomplete_reason: string | null;
  error_code: string | null;
  step_count: number;
  cost_tokens: number;
  assistant_message_id: string | null;
};

/** The run once it is over (waits up to `timeoutMs`). */
export async function runOver(sql: Sql, runId: string, timeoutMs = 15_000): Promise<RunRow> {
  const until = Date.now() + timeoutMs;
  while (true) {
    const [row] = await sql<RunRow[]>`
      select id, status, incomplete_reason, error_code, step_count, cost_tokens::float8 as cost_tokens,
             assistant_message_id
        from public.agent_runs where id = ${runId}`;
    if (row && !["queued", "in_progress"].includes(row.status)) return { ...row };
    if (Date.now() > until) assert.fail(`run ${runId} still ${row?.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export async function stepsOf(sql: Sql, runId: string) {
  return (await sql`
    select step_index, kind, tool_name, status, error_code, gateway_request_id, output, cost_tokens::float8
      from public.agent_run_steps where run_id = ${runId} order by step_index`).map((r) => ({ ...r }));
}
