// One run, start to end, in the worker that started it. Read top to bottom:
//   begin (in progress) → the prompt (prompt.ts) → steps until the model answers without tool calls or a stop:
//     before each model call: cancelled? (cancelled) · out of wall clock? (incomplete: time_limit) · at the cost
//     cap? (incomplete: max_cost) · out of steps? (incomplete: max_steps)
//     the model call, streamed, through the gateway in-process (models.ts); stored as a model_call step when it
//     ends, with its gateway request id, tokens and, once settled, cost
//     each tool call it asks for: the same call (tool and arguments) as an earlier one? (incomplete:
//     repeated_tool_call) · else run within the tool's limits (tools/limits.ts) and stored as a tool_call step
//   → every step's write committed → the answer, written once with the run's end (finish_agent_run), and the
//     final events.
// A heartbeat beats every few seconds meanwhile (a cancel asked on another instance arrives with it, or with a
// step's write). Every step's write is sent as it ends, write-behind (step-writer.ts), so a worker that dies leaves
// a run the sweep expires, and nothing half-written.
import {
  type ModelMessage,
  streamText,
  type SystemModelMessage,
  type ToolSet,
  zodSchema,
} from "npm:ai@7.0.173";
import type { UserClaims } from "../_shared/auth/verify.ts";
import type { InProcessCall } from "../_shared/gateway/handler.ts";
import type { Provider } from "../_shared/gateway/providers/adapter.ts";
import { withTimeout } from "../_shared/platform/deadline.ts";
import type { Logger } from "../_shared/platform/log.ts";
import { RunEvents } from "./events.ts";
import { liveRuns } from "./live.ts";
import { callProviderAs, modelFor } from "./models.ts";
import { promptCacheKey, systemMessage, threadWindow } from "./prompt.ts";
import type { AgentSettings } from "./settings.ts";
import {
  type AnswerMessage,
  beginRun,
  type BegunRun,
  finishRun,
  heartbeat,
  runCostNow,
  type RunEnd,
} from "./start.ts";
import { StepWriter } from "./step-writer.ts";
import { runWithLimits } from "./tools/limits.ts";
import { toolsFor } from "./tools/registry.ts";
import type { AgentTool, ToolContext } from "./tools/tool.ts";

export type RunInput = {
  runId: string;
  sessionId: string;
  userId: string;
  userToken: string;
  /** The user, verified from that token when the run was started (the token may expire before the run ends). */
  user: UserClaims;
  settings: AgentSettings;
  log: Logger;
};

/** The model call of one step, as it ended (what it produced so far, when it failed or was cancelled). */
type ModelStep = {
  outcome: "completed" | "failed" | "cancelled";
  error: unknown;
  text: string;
  toolCalls: { toolCallId: string; toolName: string; input: unknown }[];
  finishReason: string;
  requestId: string | null;
  responseMessages: ModelMessage[];
  usage: { input: number; cached: number; output: number };
};

class Cancelled extends Error {}

/**
 * A run as it executes: its input, the settlements of the calls it made (waited for at its end), what those that
 * settled cost, and the holds of those still settling (the most they are expected to cost).
 */
type Running = RunInput & {
  settlements: Promise<void>[];
  billed: { tokens: number };
  unsettled: { holdTokens: number };
};

/**
 * The hooks of one call: once admitted, its settlement is kept with the run's (a step never waits for it; the
 * cost cap does only when the call's hold could reach the cap, and the run's end does); `admitted` also hears its
 * request id.
 */
function settlementOf(
  running: Running,
  admitted: (requestId: string) => void = () => {},
): Pick<InProcessCall, "onAdmitted" | "onSettled"> {
  const settled = Promise.withResolvers<void>();
  let hold = 0;
  return {
    onAdmitted: (requestId, holdTokens) => {
      hold = holdTokens;
      running.unsettled.holdTokens += hold;
      running.settlements.push(settled.promise);
      admitted(requestId);
    },
    onSettled: (recorded) => {
      if (recorded.outcome === "settled") running.billed.tokens += recorded.costTokens;
      running.unsettled.holdTokens -= hold;
      settled.resolve();
    },
  };
}

/** Starts the run in the background (the client may leave; the run goes on) and registers it as live here. */
export function launchRun(input: RunInput, events: RunEvents): Promise<void> {
  const abort = new AbortController();
  const running: Running = { ...input, settlements: [], billed: { tokens: 0 }, unsettled: { holdTokens: 0 } };
  const done = execute(running, events, abort).catch((e) => {
    input.log.error("agent run crashed", {
      run_id: input.runId,
      error: e instanceof Error ? e.message : String(e),
    });
  }).finally(() => liveRuns.delete(input.runId));
  liveRuns.set(input.runId, { events, abort, done });
  return done;
}

async function execute(input: Running, events: RunEvents, abort: AbortController): Promise<void> {
  const { runId, settings, log } = input;
  const run = await beginRun(runId);
  if (!run) return; // another worker has it, or it is over
  const started = performance.now();
  events.emit("run.in_progress", { run_id: runId });

  const beat = setInterval(async () => {
    try {
      const signals = await heartbeat(runId);
      if (!signals || signals.cancel_requested) abort.abort(new Cancelled());
    } catch (e) {
      log.warn("heartbeat failed", { run_id: runId, error: e instanceof Error ? e.message : String(e) });
    }
  }, settings.heartbeatMs);

  const answer: AnswerMessage = { content: "", parts: [], gateway_request_id: null };
  const writer = new StepWriter(runId, () => abort.abort(new Cancelled()));
  let end: RunEnd;
  try {
    end = await steps(input, run, events, abort, answer, started, writer);
  } catch (e) {
    end = abort.signal.aborted ? { status: "cancelled", errorCode: "cancelled_by_user" } : failureOf(e, log);
  } finally {
    clearInterval(beat);
  }
  // Every step is stored before the run's end is: a step that could not be is the run's failure.
  try {
    await writer.drain();
  } catch (e) {
    if (end.status !== "failed") end = failureOf(e, log);
  }

  const finished = await finishRun(runId, end, answer);
  // The final event tells what the run was billed: its calls' usage settles just after them (bounded wait; one
  // still settling then, through the outbox, adds to agent_runs.cost_tokens when it lands).
  await withTimeout(Promise.all(input.settlements), 3_000, "the run's settlements").catch(() => {});
  const status = finished?.status ?? end.status;
  const cost = await runCostNow(runId);
  events.emit(`run.${status}` as "run.completed", {
    run_id: runId,
    status,
    ...(end.status === "incomplete" ? { incomplete_reason: end.reason } : {}),
    ...(end.status === "failed" || end.status === "cancelled" ? { error_code: end.errorCode } : {}),
    ...(end.status === "failed" ? { error_message: end.message } : {}),
    message_id: finished?.assistant_message_id ?? null,
    content: answer.content,
    cost_tokens: cost,
  });
  events.emit("done");
  await events.flush();
}

async function steps(
  input: Running,
  run: BegunRun,
  events: RunEvents,
  abort: AbortController,
  answer: AnswerMessage,
  started: number,
  writer: StepWriter,
): Promise<RunEnd> {
  const { runId, settings } = input;
  const { tools, unknown } = toolsFor(run.tools);
  if (unknown.length > 0) input.log.warn("the version lists tools that do not exist", { tools: unknown });
  const byName = new Map(tools.map((t) => [t.name, t]));
  const toolSet = aiToolsOf(tools);
  const messages: ModelMessage[] = await threadWindow(run, settings.contextTokens);
  const seenCalls = new Set<string>();
  const toolContext = contextFor(input, abort.signal);
  // What every model call of the run is made with (the stable prefix's cache key hashed once).
  const setup: ModelSetup = {
    run,
    generation: (run.generation_settings ?? {}) as Record<string, unknown>,
    tools: toolSet,
    instructions: systemMessage(run),
    cacheKey: await promptCacheKey(run),
  };

  for (let modelCalls = 0;; modelCalls++) {
    writer.check();
    if (abort.signal.aborted) throw new Cancelled();
    if (performance.now() - started > settings.runWallMs) {
      return { status: "incomplete", reason: "time_limit" };
    }
    // What its calls were billed so far: their settlements (sent at once, mostly done while its tools ran), else
    // what the last step's write read (a call that went to the outbox counts when it lands). Waited for only when
    // the holds of the calls still settling could take the run to its cap.
    const billed = () => Math.max(writer.costTokens, input.billed.tokens);
    if (billed() + input.unsettled.holdTokens >= run.max_cost_tokens) {
      await withTimeout(Promise.all(input.settlements), 3_000, "the run's settlements").catch(() => {});
    }
    if (billed() >= run.max_cost_tokens) {
      return { status: "incomplete", reason: "max_cost" };
    }
    if (modelCalls >= run.max_steps) return { status: "incomplete", reason: "max_steps" };

    const step = await modelStep(input, setup, messages, events, abort.signal, run.max_steps - modelCalls);
    answer.gateway_request_id = step.requestId;
    if (step.text) {
      answer.content += (answer.content ? "\n\n" : "") + step.text;
      answer.parts.push({ type: "text", text: step.text });
    }
    // A call that failed or was cancelled is a step too, with what it produced (and billed).
    const failed = step.outcome === "failed" ? failureOf(step.error, input.log) : null;
    writer.write({
      kind: "model_call",
      status: step.outcome,
      error_code: failed?.status === "failed"
        ? failed.errorCode
        : step.outcome === "cancelled"
        ? "cancelled_by_user"
        : null,
      model: run.model,
      gateway_request_id: step.requestId,
      input: { messages: messages.length, tools: [...byName.keys()] },
      output: { text: step.text, tool_calls: step.toolCalls, finish_reason: step.finishReason },
      input_tokens: step.usage.input,
      cached_input_tokens: step.usage.cached,
      output_tokens: step.usage.output,
      started_at: step.startedAt,
      ended_at: new Date().toISOString(),
    });
    if (failed) return failed;
    if (step.outcome === "cancelled") throw new Cancelled();
    messages.push(...step.responseMessages);

    if (step.toolCalls.length === 0) {
      return step.finishReason === "length"
        ? { status: "incomplete", reason: "max_output_tokens" }
        : { status: "completed" };
    }

    const results: ModelMessage = { role: "tool", content: [] };
    for (const call of step.toolCalls) {
      const key = `${call.toolName}:${canonicalJson(call.input)}`;
      if (seenCalls.has(key)) return { status: "incomplete", reason: "repeated_tool_call" };
      seenCalls.add(key);
      const tool = byName.get(call.toolName);
      const startedAt = new Date().toISOString();
      events.emit("tool_call.started", {
        run_id: runId,
        tool_call_id: call.toolCallId,
        tool_name: call.toolName,
        input: call.input,
      });
      const result = tool ? await runWithLimits(tool, call.input, toolContext) : {
        ok: false,
        output: { error: { code: "unknown_tool", message: `No tool ${call.toolName}` } },
        errorCode: "unknown_tool",
      };
      if (abort.signal.aborted) throw new Cancelled();
      events.emit("tool_call.completed", {
        run_id: runId,
        tool_call_id: call.toolCallId,
        tool_name: call.toolName,
        ok: result.ok,
        output: result.output,
      });
      answer.parts.push({
        type: "tool_call",
        tool_call_id: call.toolCallId,
        tool_name: call.toolName,
        input: call.input,
        output: result.output,
        ok: result.ok,
      });
      writer.write({
        kind: "tool_call",
        tool_name: tool ? call.toolName : "unknown_tool",
        tool_call_id: call.toolCallId,
        input: call.input,
        output: result.output,
        status: result.ok ? "completed" : "failed",
        error_code: result.ok ? null : result.errorCode ?? "tool_failed",
        started_at: startedAt,
        ended_at: new Date().toISOString(),
      });
      (results.content as unknown[]).push({
        type: "tool-result",
        toolCallId: call.toolCallId,
        toolName: call.toolName,
        output: { type: "json", value: (result.output ?? null) as never },
      });
    }
    messages.push(results);
    // Stored in order behind the steps, not waited for (the live stream has them; the end waits for all).
    void events.flush();
  }
}

/** What every model call of a run is made with: its model, settings, tools and stable prefix. */
type ModelSetup = {
  run: BegunRun;
  generation: Record<string, unknown>;
  tools: ToolSet;
  instructions: SystemModelMessage;
  cacheKey: string;
};

/** One model call, streamed: its deltas become message.delta events as they come. */
async function modelStep(
  input: Running,
  { run, generation, tools, instructions, cacheKey }: ModelSetup,
  messages: ModelMessage[],
  events: RunEvents,
  signal: AbortSignal,
  stepsLeft: number,
): Promise<ModelStep & { startedAt: string }> {
  const startedAt = new Date().toISOString();
  let requestId: string | null = null;
  const call = (): InProcessCall => ({
    user: input.user,
    sessionId: input.sessionId,
    runId: input.runId,
    // The steps it may still take: admitted from one lease, not one lease renewal each.
    callsAhead: stepsLeft,
    ...settlementOf(input, (id) => requestId = id),
  });
  const model = modelFor(run.provider, run.model, generation, input.userToken, call);
  const result = streamText({
    model,
    instructions,
    messages,
    tools: Object.keys(tools).length > 0 ? tools : undefined,
    maxOutputTokens: run.max_output_tokens,
    temperature: typeof generation.temperature === "number" ? generation.temperature : undefined,
    abortSignal: signal,
    // A call the gateway refused (402, 429) or that failed upstream ends the run: retrying is the client's call.
    maxRetries: 0,
    // Errors come as stream parts and end the run (failureOf); the SDK logs nothing itself.
    onError: () => {},
    // OpenAI routes calls with the same key to the same cache: the stable prefix's own hash. Nothing is stored at
    // OpenAI (store: false), so the Responses API is sent every item in full, never a reference to a stored one
    // (input the gateway could not measure).
    providerOptions: { openai: { promptCacheKey: cacheKey, store: false } },
  });
  let text = "";
  let failure: unknown = null;
  const toolCalls: ModelStep["toolCalls"] = [];
  let finishReason = "other";
  let usage = { input: 0, cached: 0, output: 0 };
  try {
    for await (const part of result.fullStream) {
      switch (part.type) {
        case "text-delta":
          text += part.text;
          events.emit("message.delta", { run_id: input.runId, delta: part.text });
          break;
        case "tool-call":
          toolCalls.push({ toolCallId: part.toolCallId, toolName: part.toolName, input: part.input });
          break;
        case "finish-step":
          finishReason = part.finishReason;
          usage = {
            input: part.usage.inputTokens ?? 0,
            cached: part.usage.inputTokenDetails?.cacheReadTokens ?? 0,
            output: part.usage.outputTokens ?? 0,
          };
          break;
        case "error":
          failure = part.error;
          break;
      }
    }
  } catch (e) {
    failure = e;
  }
  const outcome = signal.aborted ? "cancelled" : failure ? "failed" : "completed";
  const response = outcome === "completed" ? await result.response : null;
  return {
    outcome,
    error: failure,
    text,
    toolCalls,
    finishReason,
    requestId,
    // The SDK executes nothing here: a tool message it adds is its own error for a call it could not parse or
    // name; the runtime answers every call itself (unknown_tool included), once.
    responseMessages: ((response?.messages ?? []) as ModelMessage[]).filter((m) => m.role !== "tool"),
    usage,
    startedAt,
  };
}

/** The tools as the AI SDK offers them to the model; the runtime executes them itself (run within limits). */
function aiToolsOf(tools: AgentTool[]): ToolSet {
  const set: ToolSet = {};
  for (const t of tools) {
    set[t.name] = { description: t.description, inputSchema: zodSchema(t.input as never) };
  }
  return set;
}

function contextFor(input: Running, signal: AbortSignal): ToolContext {
  const call = (): InProcessCall => ({
    user: input.user,
    sessionId: input.sessionId,
    runId: input.runId,
    ...settlementOf(input),
  });
  return {
    userId: input.userId,
    runId: input.runId,
    sessionId: input.sessionId,
    signal,
    callProvider: (provider: Provider, path: string, body: unknown, signal?: AbortSignal) =>
      callProviderAs(input.userToken, call)(provider, path, body, signal),
  };
}

/** JSON with keys sorted, so that the same arguments in another order are the same call. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${
      Object.keys(value).sort().map((k) =>
        `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * Why a run failed, as the client sees it: a model call's error code (the gateway's, or the provider's), never its
 * body; anything else (the database, a bug) is internal_error, logged.
 */
function failureOf(e: unknown, log: Logger): RunEnd {
  const err = e as { statusCode?: number; responseBody?: string; message?: string };
  const fromTheModel = err?.statusCode !== undefined || (e instanceof Error && e.name.startsWith("AI_"));
  if (!fromTheModel) {
    log.error("agent run failed", { error: e instanceof Error ? e.message : String(e) });
    return { status: "failed", errorCode: "internal_error", message: "The run failed on the server" };
  }
  let code = "provider_error";
  try {
    const body = JSON.parse(err.responseBody ?? "") as { error?: { code?: unknown; type?: unknown } };
    const c = body.error?.code ?? body.error?.type;
    if (typeof c === "string" && /^[a-z][a-z0-9_]{0,63}$/.test(c)) code = c;
  } catch { /* not JSON */ }
  if (code === "provider_error" && err.statusCode === 402) code = "payment_required";
  log.warn("agent run failed", { status: err.statusCode ?? null, code });
  return {
    status: "failed",
    errorCode: code,
    message: err.statusCode ? `The model call failed (${err.statusCode} ${code})` : "The model call failed",
  };
}
