// Writing a call's usage, without ever losing it:
//   1. private.gateway_settle (usage row + debit + hold release, once per request id), retried once;
//   2. if that fails but the database answers: private.usage_outbox, which a pg_cron job applies;
//   3. if the database does not answer: a Redis list (aie:usage_outbox) when Upstash is configured, moved
//      into the database outbox by a later call once it is back (drainRedisOutbox);
//   4. if even that fails: an error log line that carries the whole record.
import { db } from "../db.ts";
import type { Logger } from "../log.ts";
import { redis } from "../redis.ts";
import type { Provider } from "./adapter.ts";

export type UsageRecord = {
  request_id: string;
  user_id: string;
  provider: Provider;
  model: string;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  status: "ok" | "upstream_error" | "cancelled" | "timeout";
  http_status: number | null;
  latency_ms: number;
  upstream_request_id: string | null;
  tokens_estimated: boolean;
  /** The lease the call was admitted under (lease.ts), and when: its price is the one in force then. */
  lease_id: string | null;
  admitted_at: string | null;
};

export const REDIS_OUTBOX_KEY = "aie:usage_outbox";

async function settle(r: UsageRecord): Promise<void> {
  await db()`select private.gateway_settle(
    p_request_id => ${r.request_id}, p_user_id => ${r.user_id}, p_provider => ${r.provider}, p_model => ${r.model},
    p_input_tokens => ${r.input_tokens}, p_cached_input_tokens => ${r.cached_input_tokens},
    p_output_tokens => ${r.output_tokens}, p_status => ${r.status}, p_http_status => ${r.http_status},
    p_latency_ms => ${r.latency_ms}, p_upstream_request_id => ${r.upstream_request_id},
    p_tokens_estimated => ${r.tokens_estimated}, p_lease_id => ${r.lease_id}, p_admitted_at => ${r.admitted_at})`;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

// Settlements are sent in batches: one SQL call (one transaction) at a time per instance, carrying every
// call that ended in the last SETTLE_LINGER_MS (up to BATCH_MAX; full batches go out at once), and the leases
// to give back after them. The round trip, the commit and the batch's own work are shared, which is most of a
// settlement's cost.
const BATCH_MAX = 100;
const SETTLE_LINGER_MS = 20;
type Pending = {
  record: UsageRecord;
  done: (outcome: "settled" | "outbox") => void;
  fail: (e: unknown) => void;
};
const pending: Pending[] = [];
/** Leases to give back (private.gateway_release), after the settlements queued before them. */
const closing: { lease_id: string; user_id: string }[] = [];
let inFlight: Promise<void> | null = null;
let lingering: ReturnType<typeof setTimeout> | undefined;
/** After a batch call failed (database unreachable?), the next one waits longer. */
const RETRY_LINGER_MS = 1_000;
let lastBatchFailed = false;

async function sendBatch() {
  const batch = pending.splice(0, BATCH_MAX);
  const closes = batch.length < BATCH_MAX ? closing.splice(0) : [];
  try {
    const rows = await db()<{ request_id: string; error: string | null }[]>`
      select request_id, error from private.gateway_settle_batch(
        p_records => ${JSON.stringify(batch.map((p) => p.record))}::text::jsonb,
        p_close_leases => ${JSON.stringify(closes)}::text::jsonb)`;
    const failed = new Set(rows.filter((r) => r.error !== null).map((r) => r.request_id));
    for (const p of batch) p.done(failed.has(p.record.request_id) ? "outbox" : "settled");
    lastBatchFailed = false;
  } catch (e) {
    lastBatchFailed = true;
    // Each record goes through the fallbacks on its own (recordUsage); the leases are given back later (if
    // never, they expire with their holds).
    for (const p of batch) p.fail(e);
    closing.push(...closes);
  }
}

/** Sends the next batch now, unless one is in flight (the queue is looked at again when it returns). */
function sendNow(): Promise<void> {
  clearTimeout(lingering);
  lingering = undefined;
  inFlight ??= sendBatch().finally(() => {
    inFlight = null;
    scheduleFlush();
  });
  return inFlight;
}

function scheduleFlush() {
  if (inFlight !== null || !(pending.length || closing.length)) return;
  if (pending.length >= BATCH_MAX) void sendNow();
  else if (lingering === undefined) {
    lingering = setTimeout(sendNow, lastBatchFailed ? RETRY_LINGER_MS : SETTLE_LINGER_MS);
  }
}

/**
 * Sends everything queued without waiting for the linger (shutdown); resolves when the queue is empty, or when
 * a batch call failed.
 */
export async function flushSettlements(): Promise<void> {
  while (inFlight || pending.length || closing.length) {
    await (inFlight ?? sendNow());
    if (lastBatchFailed) return; // the database is not answering: what is left waits for the retry
  }
}

/** Settles in the next batch: "settled", or "outbox" when its settlement failed and the batch parked it. */
function settleBatched(record: UsageRecord): Promise<"settled" | "outbox"> {
  return new Promise((done, fail) => {
    pending.push({ record, done, fail });
    scheduleFlush();
  });
}

/** Gives a lease back after the settlements already queued (lease.ts calls this when it is done with one). */
export function closeLease(leaseId: string, userId: string): void {
  closing.push({ lease_id: leaseId, user_id: userId });
  scheduleFlush();
}

export async function recordUsage(
  record: UsageRecord,
  log: Logger,
): Promise<"settled" | "outbox" | "redis" | "log"> {
  try {
    const outcome = await settleBatched(record);
    if (outcome === "outbox") {
      log.warn("usage settlement failed; parked in the outbox", { request_id: record.request_id });
    }
    if (redisOutboxMayHaveItems) void drainRedisOutbox(log);
    return outcome;
  } catch {
    // The batch call itself failed (database unreachable?): this record alone, through every fallback.
  }
  let error: unknown;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await settle(record);
      if (redisOutboxMayHaveItems) void drainRedisOutbox(log);
      return "settled";
    } catch (e) {
      error = e;
      if (attempt === 0) await new Promise((r) => setTimeout(r, 100));
    }
  }
  log.warn("usage settlement failed; parking it in the outbox", {
    request_id: record.request_id,
    error: message(error),
  });
  try {
    await db()`select private.enqueue_usage(p_payload => ${JSON.stringify(record)}::text::jsonb, p_error => ${
      message(error)
    })`;
    return "outbox";
  } catch (e) {
    log.error("database outbox unavailable", { request_id: record.request_id, error: message(e) });
  }
  const client = redis();
  if (client) {
    try {
      await client.rpush(REDIS_OUTBOX_KEY, JSON.stringify(record));
      redisOutboxMayHaveItems = true;
      return "redis";
    } catch (e) {
      log.error("redis outbox unavailable", { request_id: record.request_id, error: message(e) });
    }
  }
  log.error("usage record not stored: kept in this log line for replay", { usage_record: record });
  return "log";
}

let redisOutboxMayHaveItems = true; // unknown after a cold start: check once
let draining = false;

/** Moves usage records parked in Redis into the database outbox. Safe to call concurrently. */
export async function drainRedisOutbox(log: Logger, batch = 100): Promise<number> {
  const client = redis();
  if (!client || draining) return 0;
  draining = true;
  let moved = 0;
  try {
    while (true) {
      // LPOP with a count takes the batch atomically: concurrent drainers never take the same records.
      const items = (await client.lpop<unknown[]>(REDIS_OUTBOX_KEY, batch)) ?? [];
      if (items.length === 0) break;
      for (let i = 0; i < items.length; i++) {
        const text = typeof items[i] === "string" ? items[i] as string : JSON.stringify(items[i]);
        try {
          await db()`select private.enqueue_usage(p_payload => ${text}::text::jsonb, p_error => ${"parked in redis"})`;
        } catch (e) {
          // Put back what was not moved, then stop: the database is still not there.
          const rest = items.slice(i).map((item) => typeof item === "string" ? item : JSON.stringify(item));
          await client.rpush(REDIS_OUTBOX_KEY, ...rest);
          throw e;
        }
      }
      moved += items.length;
    }
    redisOutboxMayHaveItems = false;
  } catch (e) {
    log.warn("could not drain the redis usage outbox", { error: message(e) });
  } finally {
    draining = false;
  }
  return moved;
}

/** Keeps the runtime alive for work that finishes after the response (Supabase's EdgeRuntime.waitUntil). */
export function background(promise: Promise<unknown>): void {
  const runtime = (globalThis as { EdgeRuntime?: { waitUntil?: (p: Promise<unknown>) => void } }).EdgeRuntime;
  runtime?.waitUntil?.(promise);
  promise.catch(() => {});
}
