// Answers about a run: its events as SSE from a sequence number on (live from this instance's run when it runs
// here, else from public.agent_run_events, polled until `done`), and its end state as JSON.
import { db } from "../_shared/platform/db.ts";
import { isTerminal, type RunEvent, sseFrame } from "./events.ts";
import { liveRuns } from "./live.ts";

const POLL_MS = 250;
const KEEPALIVE_MS = 15_000;
/** A follower gives up after this long without the run's end (the sweep ends a run whose worker died). */
const FOLLOW_MAX_MS = 10 * 60_000;

/** The run's events after `after`, then the rest as they come, until `done`. The client may leave at any time. */
export function followRun(runId: string, after: number): Response {
  const encoder = new TextEncoder();
  let stop = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const send = (event: RunEvent) => {
        if (closed) return;
        controller.enqueue(encoder.encode(sseFrame(event)));
        if (isTerminal(event.type)) close();
      };
      const keepalive = setInterval(
        () => !closed && controller.enqueue(encoder.encode(": keepalive\n\n")),
        KEEPALIVE_MS,
      );
      let unsubscribe = () => {};
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(keepalive);
        unsubscribe();
        try {
          controller.close();
        } catch { /* already closed */ }
      };
      stop = () => {
        closed = true;
        clearInterval(keepalive);
        unsubscribe();
      };
      const live = liveRuns.get(runId);
      if (live) {
        unsubscribe = live.events.subscribe(after, send);
        return;
      }
      void pollEvents(runId, after, send, () => closed).then(close, (e) => {
        if (!closed) controller.error(e);
      });
    },
    cancel() {
      stop();
    },
  });
  return new Response(body, {
    headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" },
  });
}

async function pollEvents(
  runId: string,
  after: number,
  send: (e: RunEvent) => void,
  closed: () => boolean,
): Promise<void> {
  let last = after;
  const until = Date.now() + FOLLOW_MAX_MS;
  while (!closed() && Date.now() < until) {
    const rows = await db()<{ sequence_number: number; type: string; data: Record<string, unknown> }[]>`
      select sequence_number, type, data from public.agent_run_events
       where run_id = ${runId} and sequence_number > ${last} order by sequence_number limit 500`;
    for (const r of rows) {
      send({ ...r.data, type: r.type as RunEvent["type"], sequence_number: r.sequence_number });
      last = r.sequence_number;
      if (isTerminal(r.type)) return;
    }
    if (rows.length === 0) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export type RunState = {
  id: string;
  session_id: string;
  status: string;
  incomplete_reason: string | null;
  error_code: string | null;
  error_message: string | null;
  user_message_id: string | null;
  assistant_message_id: string | null;
  employee_version: number;
  provider: string;
  model: string;
  step_count: number;
  max_steps: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  cost_tokens: number;
  max_cost_tokens: number;
  created_at: string;
  ended_at: string | null;
};

/** The run as its owner sees it, and its answer once there is one. */
export async function runState(runId: string) {
  const [row] = await db()<
    (RunState & { content: string | null; parts: unknown; message_status: string | null })[]
  >`
    select r.id, r.session_id, r.status, r.incomplete_reason, r.error_code, r.error_message, r.user_message_id,
           r.assistant_message_id, r.employee_version, r.provider, r.model, r.step_count, r.max_steps,
           r.input_tokens::float8 as input_tokens, r.cached_input_tokens::float8 as cached_input_tokens,
           r.output_tokens::float8 as output_tokens, r.cost_tokens::float8 as cost_tokens,
           r.max_cost_tokens::float8 as max_cost_tokens, r.created_at, r.ended_at,
           m.content, m.parts, m.status as message_status
      from public.agent_runs r left join public.chat_messages m on m.id = r.assistant_message_id
     where r.id = ${runId}`;
  const { content, parts, message_status, ...run } = row;
  return {
    run,
    message: run.assistant_message_id
      ? { id: run.assistant_message_id, content, parts, status: message_status }
      : null,
  };
}

/** Resolves once the run is over (from this instance's run, else by polling). */
export async function runOver(runId: string): Promise<void> {
  const live = liveRuns.get(runId);
  if (live) return await live.done;
  const until = Date.now() + FOLLOW_MAX_MS;
  while (Date.now() < until) {
    const [row] = await db()<{ over: boolean }[]>`
      select status not in ('queued', 'in_progress') as over from public.agent_runs where id = ${runId}`;
    if (!row || row.over) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
