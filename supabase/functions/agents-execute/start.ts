// A run's database side, each a private function of 60_agents: start (the user message and the queued run in one
// transaction: start_agent_run), begin (in progress, with what it runs with), steps, heartbeats, the end.
import type { Database } from "../_shared/database.types.ts";
import { db } from "../_shared/platform/db.ts";
import type { AgentSettings } from "./settings.ts";
import type { ExecuteRequest } from "./request.ts";

type PrivateFunctions = Database["private"]["Functions"];
export type StartedRun = PrivateFunctions["start_agent_run"]["Returns"][number];
type BegunRow = PrivateFunctions["begin_agent_run"]["Returns"][number];
/** What a run runs with; bigint columns come as numbers. */
export type BegunRun = Omit<BegunRow, "custom_instructions" | "user_message_id"> & {
  custom_instructions: string | null;
  user_message_id: string | null;
};

export async function startRun(userId: string, request: ExecuteRequest, settings: AgentSettings) {
  const { body } = request;
  const [row] = await db()<StartedRun[]>`
    select * from private.start_agent_run(
      ${userId}, ${body.session_id ?? null}, ${body.hire_id ?? null}, ${body.message}, ${
    body.parent_id ?? null
  },
      ${request.idempotencyKey}, ${request.fingerprint}, ${body.max_steps ?? settings.maxStepsDefault},
      ${Math.min(body.max_output_tokens ?? settings.maxOutputTokens, settings.maxOutputTokens)},
      ${Math.min(body.max_cost_tokens ?? settings.maxCostTokens, settings.maxCostTokens)})`;
  return row;
}

/** queued → in_progress; null when the run is not queued any more (another worker has it, or it is over). */
export async function beginRun(runId: string): Promise<BegunRun | null> {
  const [row] = await db()<BegunRow[]>`select * from private.begin_agent_run(${runId})`;
  if (!row || row.status !== "in_progress") return null;
  return {
    ...row,
    max_cost_tokens: Number(row.max_cost_tokens),
    max_output_tokens: Number(row.max_output_tokens),
  };
}

export type RunSignals = { cancel_requested: boolean; status: string; cost_tokens: number };

export type StepRecord = {
  kind: "model_call" | "tool_call";
  tool_name?: string;
  tool_call_id?: string;
  input?: unknown;
  output?: unknown;
  status: "completed" | "failed" | "cancelled";
  error_code?: string | null;
  attempts?: number;
  gateway_request_id?: string | null;
  model?: string;
  input_tokens?: number;
  cached_input_tokens?: number;
  output_tokens?: number;
  started_at: string;
  ended_at: string;
};

/** Stores a step as it ends; says whether the user asked to cancel. */
export async function recordStep(runId: string, step: StepRecord): Promise<RunSignals> {
  const [row] = await db()<(RunSignals & { cost_tokens: string })[]>`
    select * from private.record_agent_step(${runId}, ${db().json(step as never)})`;
  return row
    ? { ...row, cost_tokens: Number(row.cost_tokens) }
    : { cancel_requested: false, status: "unknown", cost_tokens: 0 };
}

export async function heartbeat(runId: string): Promise<Omit<RunSignals, "cost_tokens"> | null> {
  const [row] = await db()<RunSignals[]>`select * from private.agent_run_heartbeat(${runId})`;
  return row ?? null;
}

/** The run's cost as billed now (token_usage's trigger keeps it). */
export async function runCostNow(runId: string): Promise<number> {
  const [row] = await db()<
    { cost_tokens: string }[]
  >`select cost_tokens from public.agent_runs where id = ${runId}`;
  return Number(row?.cost_tokens ?? 0);
}

export type RunEnd =
  | { status: "completed" }
  | {
    status: "incomplete";
    reason: "max_steps" | "max_cost" | "repeated_tool_call" | "max_output_tokens" | "time_limit";
  }
  | { status: "failed"; errorCode: string; message: string }
  | { status: "cancelled"; errorCode: "cancelled_by_user" };

export type AnswerMessage = { content: string; parts: unknown[]; gateway_request_id: string | null };

export async function finishRun(runId: string, end: RunEnd, message: AnswerMessage) {
  const [row] = await db()<{ finished: boolean; status: string; assistant_message_id: string | null }[]>`
    select * from private.finish_agent_run(
      ${runId}, ${end.status}, ${end.status === "incomplete" ? end.reason : null},
      ${end.status === "failed" || end.status === "cancelled" ? end.errorCode : null},
      ${end.status === "failed" ? end.message : null}, ${db().json(message as never)})`;
  return row;
}
