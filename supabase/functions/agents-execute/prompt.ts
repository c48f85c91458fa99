// What a model call of a run is sent: the stable prefix first (the pinned version's system prompt, the user's
// custom instructions, then, for the providers, the tools), so that the providers' prompt caches hit on every
// step and every turn (Anthropic: cache_control on the system block, which caches tools and system, and on the
// newest message, which caches the thread for the next steps and turns; OpenAI: a prompt_cache_key per stable
// prefix; Gemini caches prefixes implicitly); then a window of the visible thread, newest messages kept, within the
// token budget.
import type { ModelMessage, SystemModelMessage } from "npm:ai@7.0.173";
import { tokensForBytes, utf8Bytes } from "../_shared/gateway/providers/adapter.ts";
import { db } from "../_shared/platform/db.ts";
import { sha256Hex } from "../_shared/platform/hash.ts";
import type { BegunRun } from "./start.ts";

/** Deepest the thread is read back (the token budget usually cuts it first). */
const MAX_THREAD_MESSAGES = 200;

export function systemPrompt(run: BegunRun): string {
  const instructions = run.custom_instructions?.trim();
  return instructions
    ? `${run.system_prompt}\n\n# Instructions from the user you work for\n${instructions}`
    : run.system_prompt;
}

/** The system message, marked for the providers' prompt caches. */
export function systemMessage(run: BegunRun): SystemModelMessage {
  return {
    role: "system",
    content: systemPrompt(run),
    providerOptions: { anthropic: { cacheControl: { type: "ephemeral" } } },
  };
}

type ThreadRow = { id: string; role: "user" | "assistant"; content: string; depth: number };

/** The thread ending at the run's user message, oldest first, as many of the newest as fit in `budgetTokens`. */
export async function threadWindow(run: BegunRun, budgetTokens: number): Promise<ModelMessage[]> {
  if (!run.user_message_id) return [];
  const rows = await db()<ThreadRow[]>`
    select id, role, content, depth from private.agent_thread(${run.user_message_id}, ${MAX_THREAD_MESSAGES})`;
  const window = fitWindow(rows, budgetTokens - tokensForBytes(utf8Bytes(systemPrompt(run))));
  // Anthropic's second breakpoint: the thread up to the new message, which the next turn re-sends as its prefix
  // (the first is the system block: tools and system).
  const newest = window.at(-1);
  if (newest) newest.providerOptions = { anthropic: { cacheControl: { type: "ephemeral" } } };
  return window;
}

/** Newest first in, oldest first out; the newest message always (it is what the run answers). */
export function fitWindow(newestFirst: { role: "user" | "assistant"; content: string }[], budget: number) {
  const kept: ModelMessage[] = [];
  let used = 0;
  for (const m of newestFirst) {
    const cost = tokensForBytes(utf8Bytes(m.content)) + 4;
    if (kept.length > 0 && used + cost > budget) break;
    used += cost;
    kept.push({ role: m.role, content: m.content });
  }
  // A window starts with a user message (providers want the user to speak first).
  while (kept.length > 1 && kept[kept.length - 1].role !== "user") kept.pop();
  return kept.reverse();
}

/** The stable prefix's identity (its SHA-256, shortened): OpenAI's prompt_cache_key. */
export async function promptCacheKey(run: BegunRun): Promise<string> {
  return `aie-${await sha256Hex(`${run.model}\n${systemPrompt(run)}`, 12)}`;
}
