// POST agents-execute: the body (zod; every field bounded), the client's Idempotency-Key, and the request's
// fingerprint (the same key with another request is refused by start_agent_run).
import { clientIdempotencyKey } from "../_shared/billing/idempotency.ts";
import { readJson, z } from "../_shared/http/validation.ts";
import { sha256Hex } from "../_shared/platform/hash.ts";
import { MAX_STEPS_LIMIT } from "./settings.ts";

const MAX_MESSAGE_CHARS = 32_000;

export const executeBody = z.object({
  session_id: z.uuid().optional(),
  hire_id: z.uuid().optional(),
  message: z.string().trim().min(1).max(MAX_MESSAGE_CHARS),
  /** The message it answers (an edit or a regeneration branches there); default: the session's newest. */
  parent_id: z.uuid().optional(),
  stream: z.boolean().default(false),
  max_steps: z.number().int().min(1).max(MAX_STEPS_LIMIT).optional(),
  max_output_tokens: z.number().int().min(16).max(1_000_000).optional(),
  max_cost_tokens: z.number().int().min(1).max(1e12).optional(),
}).strict().refine((b) => (b.session_id === undefined) !== (b.hire_id === undefined), {
  error: "send either session_id (an existing session) or hire_id (a new session with that hire)",
}).refine((b) => b.parent_id === undefined || b.session_id !== undefined, {
  error: "parent_id needs the session_id it is in",
});

export type ExecuteBody = z.output<typeof executeBody>;

export type ExecuteRequest = { body: ExecuteBody; idempotencyKey: string | null; fingerprint: string };

export async function readExecuteRequest(req: Request): Promise<ExecuteRequest> {
  const idempotencyKey = clientIdempotencyKey(req);
  const body = await readJson(req, executeBody);
  return { body, idempotencyKey, fingerprint: await fingerprintOf(body) };
}

/** SHA-256 of the body's fields in a fixed order (stream is how to answer, not what to do: left out). */
async function fingerprintOf(body: ExecuteBody): Promise<string> {
  const { stream: _stream, ...what } = body;
  const canonical = JSON.stringify(Object.keys(what).sort().map((k) => [k, what[k as keyof typeof what]]));
  return await sha256Hex(canonical);
}
