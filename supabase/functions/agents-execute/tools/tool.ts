// What a server-side tool is: a name the employee's pinned version lists, a description and a zod input schema
// the model is shown, a time limit and an output size limit the runtime enforces (limits.ts), and `run`. Tools
// reach the outside only through what the context gives them: the gateway (billed like any call) and the
// database as the run's user. No tool fetches a URL of its own choosing.
import type { z } from "../../_shared/http/validation.ts";
import type { Provider } from "../../_shared/gateway/providers/adapter.ts";

export type ToolContext = {
  /** The run's user (from their verified token) and the run. */
  readonly userId: string;
  readonly runId: string;
  readonly sessionId: string;
  /** Aborted when the run is cancelled or the tool's time limit passes. */
  readonly signal: AbortSignal;
  /**
   * A call to a provider through the gateway pipeline in-process, as the run's user: `path` as the provider's
   * proxy routes it (e.g. "/chat/completions" for Perplexity), the body as its SDK sends it. Admitted, held,
   * limited, metered and billed like any call, and attributed to the run. `signal` aborts the call (the request's
   * signal); runWithLimits (limits.ts) always passes the tool call's own signal, so a tool past its time limit
   * or a cancelled run stops its provider call too.
   */
  callProvider(provider: Provider, path: string, body: unknown, signal?: AbortSignal): Promise<Response>;
};

export type AgentTool<Input = unknown> = {
  /** snake_case, as ai_employee_versions.tools lists it. */
  readonly name: string;
  /** What the model is told the tool does. */
  readonly description: string;
  readonly input: z.ZodType<Input>;
  /** Wall-clock limit of one call. */
  readonly timeoutMs: number;
  /** Limit of the JSON-encoded output (UTF-8 bytes); longer output is cut and marked truncated. */
  readonly maxOutputBytes: number;
  run(input: Input, ctx: ToolContext): Promise<unknown>;
};
