// The agents runtime: a hired AI employee executed on the server, through the gateway.
//   POST /functions/v1/agents-execute                     { session_id | hire_id, message, parent_id?, stream?,
//                                                           max_steps?, max_output_tokens?, max_cost_tokens? }
//        with Idempotency-Key (optional): the same key returns the same run
//        → stream: SSE events (events.ts) until `done`; else 200 { run, message } once the run is over
//   GET  /functions/v1/agents-execute/runs/{id}/events?starting_after=N   replay what was missed, then follow live
//   POST /functions/v1/agents-execute/runs/{id}/cancel                    stop it (between steps, and the call in
//                                                                         flight is aborted, billed what it produced)
// User token required (the user is the token's, never the body's). 400 a bad body or key · 401 · 404 a hire,
// session, message or run that is not the caller's · 409 hire_inactive, run_in_progress (details: the active run's
// id) · 422 idempotency_key_reused · 429.
// How a run survives the hosted limits (wall clock 150-400 s, 2 s CPU per request): it runs after the answer has
// started (EdgeRuntime.waitUntil), mostly waiting on the provider (little CPU); it stores every step as it ends and
// stops itself, incomplete with time_limit, between steps once AGENT_RUN_WALL_MS (120 s) has passed. A worker that
// is killed anyway stops beating: the sweep expires the run within ~2 minutes, and the client can send the next
// message (the thread has every stored step's answer).
import { bearerOrApiKey } from "../_shared/auth/token.ts";
import { caller } from "../_shared/auth/caller.ts";
import { HttpError } from "../_shared/http/errors.ts";
import { json } from "../_shared/http/respond.ts";
import { parseWith, z } from "../_shared/http/validation.ts";
import { type RequestContext, withHttp } from "../_shared/http/with-http.ts";
import { background } from "../_shared/platform/background.ts";
import { db } from "../_shared/platform/db.ts";
import { RunEvents } from "./events.ts";
import { followRun, runOver, runState } from "./follow.ts";
import { liveRuns } from "./live.ts";
import { readExecuteRequest } from "./request.ts";
import { launchRun } from "./run.ts";
import { agentSettings } from "./settings.ts";
import { startRun } from "./start.ts";

const settings = agentSettings();
const RUNS_PER_MINUTE = { scope: "agents-execute", limit: 30, windowSeconds: 60 };
const RUN_PATH = /^\/agents-execute\/runs\/([0-9a-f-]{36})\/(events|cancel)$/;

Deno.serve(withHttp({ name: "agents-execute", methods: ["GET", "POST"] }, (req, ctx) => {
  const path = ctx.url.pathname.replace(/\/+$/, "");
  if (path === "/agents-execute" && req.method === "POST") return execute(req, ctx);
  const match = RUN_PATH.exec(path);
  if (match?.[2] === "events" && req.method === "GET") return replay(req, ctx, match[1]);
  if (match?.[2] === "cancel" && req.method === "POST") return cancel(req, ctx, match[1]);
  throw new HttpError("not_found", `No such endpoint: ${req.method} ${path}`);
}));

async function execute(req: Request, ctx: RequestContext): Promise<Response> {
  const request = await readExecuteRequest(req);
  const { user, log, headers } = await caller(req, ctx, { limit: RUNS_PER_MINUTE });
  const started = await startRun(user.id, request, settings);
  if (!started.replayed) {
    const events = new RunEvents(started.run_id, log);
    events.emit("run.created", {
      run_id: started.run_id,
      session_id: started.session_id,
      user_message_id: started.user_message_id,
    });
    background(launchRun({
      runId: started.run_id,
      sessionId: started.session_id,
      userId: user.id,
      userToken: bearerOrApiKey(req),
      user: user.claims,
      settings,
      log: log.child({ run_id: started.run_id }),
    }, events));
  }
  if (request.body.stream) {
    const res = followRun(started.run_id, 0);
    for (const [k, v] of Object.entries(headers)) res.headers.set(k, v);
    res.headers.set("x-agent-run-id", started.run_id);
    return res;
  }
  await runOver(started.run_id);
  return json(await runState(started.run_id), {
    status: 200,
    headers: { ...headers, "x-agent-run-id": started.run_id },
  });
}

const ReplayQuery = z.strictObject({
  starting_after: z.string().regex(/^\d{1,9}$/, "must be a whole number").transform(Number).optional(),
});

async function replay(req: Request, ctx: RequestContext, runId: string): Promise<Response> {
  const query = parseWith(ReplayQuery, Object.fromEntries(ctx.url.searchParams));
  const { user } = await caller(req, ctx);
  await requireOwnRun(user.id, runId);
  return followRun(runId, query.starting_after ?? 0);
}

async function cancel(req: Request, ctx: RequestContext, runId: string): Promise<Response> {
  const { user } = await caller(req, ctx);
  const [row] = await db()<{ status: string; cancel_requested: boolean }[]>`
    select * from private.request_agent_run_cancel(${user.id}, ${runId})`;
  const active = row.status === "queued" || row.status === "in_progress";
  // Here: stopped now. Elsewhere: on its worker's next heartbeat.
  if (active) liveRuns.get(runId)?.abort.abort();
  return json({ run_id: runId, status: row.status, cancel_requested: row.cancel_requested }, {
    status: active ? 202 : 200,
  });
}

async function requireOwnRun(userId: string, runId: string): Promise<void> {
  const [row] = await db()`select 1 from public.agent_runs where id = ${runId} and user_id = ${userId}`;
  if (!row) throw new HttpError("not_found", "No such agent run of yours");
}
