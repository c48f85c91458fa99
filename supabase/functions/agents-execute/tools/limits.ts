// Runs one tool call within its limits, the one place they are enforced: the raw input (as the model wrote it)
// is validated with the tool's zod schema, the call gets its own signal (aborted when the run's signal is, or
// when the tool's time limit passes), and the JSON of what it returns is bounded to the tool's maxOutputBytes.
// Never throws: every outcome is a result the model can be shown,
//   { ok: true,  output }                                            the tool's output (cut: { truncated, partial })
//   { ok: false, output: { error: { code, message } }, errorCode }   invalid_tool_input · tool_timeout ·
//                                                                    tool_cancelled · tool_failed · a ToolError's code
// A thrown error other than a ToolError is "tool_failed" with its message redacted and cut (never a stack).
import { describeIssues } from "../../_shared/http/validation.ts";
import { redact } from "../../_shared/platform/log.ts";
import type { AgentTool, ToolContext } from "./tool.ts";
import { ToolError } from "./tool-error.ts";

export type ToolResult = { ok: boolean; output: unknown; errorCode?: string };

/** The longest message of a failure the model is shown. */
const MAX_ERROR_MESSAGE = 300;

const failure = (code: string, message: string): ToolResult => ({
  ok: false,
  output: { error: { code, message } },
  errorCode: code,
});

export async function runWithLimits<Input>(
  tool: AgentTool<Input>,
  rawInput: unknown,
  ctx: ToolContext,
): Promise<ToolResult> {
  const parsed = tool.input.safeParse(rawInput);
  if (!parsed.success) return failure("invalid_tool_input", describeIssues(parsed.error));
  if (ctx.signal.aborted) return failure("tool_cancelled", "The run was cancelled");

  const controller = new AbortController();
  const outcome = Promise.withResolvers<ToolResult>();
  const onCancel = () => {
    controller.abort(ctx.signal.reason);
    outcome.resolve(failure("tool_cancelled", "The run was cancelled"));
  };
  ctx.signal.addEventListener("abort", onCancel, { once: true });
  const timer = setTimeout(() => {
    controller.abort(new DOMException(`${tool.name} timed out`, "TimeoutError"));
    outcome.resolve(failure("tool_timeout", `${tool.name} did not finish within ${tool.timeoutMs} ms`));
  }, tool.timeoutMs);

  const toolCtx: ToolContext = {
    userId: ctx.userId,
    runId: ctx.runId,
    sessionId: ctx.sessionId,
    signal: controller.signal,
    callProvider: (provider, path, body, signal) =>
      ctx.callProvider(
        provider,
        path,
        body,
        signal ? AbortSignal.any([signal, controller.signal]) : controller.signal,
      ),
  };
  Promise.resolve()
    .then(() => tool.run(parsed.data, toolCtx))
    .then((output) => outcome.resolve(bounded(output, tool.maxOutputBytes)))
    .catch((e) => outcome.resolve(thrownResult(e)));
  try {
    return await outcome.promise;
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onCancel);
  }
}

function thrownResult(e: unknown): ToolResult {
  if (e instanceof ToolError) return failure(e.code, cut(e.message));
  const message = e instanceof Error ? e.message : String(e);
  return failure("tool_failed", cut(redact(message)) || "The tool failed");
}

const cut = (text: string) =>
  text.length > MAX_ERROR_MESSAGE ? `${[...text.slice(0, MAX_ERROR_MESSAGE)].join("")}…` : text;

const encoder = new TextEncoder();
const bytesOf = (text: string) => encoder.encode(text).byteLength;

/**
 * The output as it is when its JSON fits in maxBytes; otherwise `{ truncated: true, partial }`, where partial is
 * the longest prefix of that JSON text (never splitting a character) that keeps the whole result within maxBytes.
 */
export function bounded(output: unknown, maxBytes: number): ToolResult {
  let json: string | undefined;
  try {
    json = JSON.stringify(output);
  } catch {
    return failure("tool_failed", "The tool's output is not JSON");
  }
  if (json === undefined) return { ok: true, output: null };
  if (bytesOf(json) <= maxBytes) return { ok: true, output: JSON.parse(json) };

  const wrap = (partial: string) => ({ truncated: true, partial });
  const fits = (n: number) => bytesOf(JSON.stringify(wrap(prefix(json, n)))) <= maxBytes;
  // A prefix of n code units has at least n bytes, so none longer than maxBytes can fit.
  let lo = 0;
  let hi = Math.min(json.length, maxBytes);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return { ok: true, output: wrap(prefix(json, lo)) };
}

/** The first n UTF-16 code units, one fewer when the nth would split a surrogate pair. */
function prefix(text: string, n: number): string {
  const code = text.charCodeAt(n - 1);
  return n > 0 && code >= 0xd800 && code <= 0xdbff ? text.slice(0, n - 1) : text.slice(0, n);
}
