// Writing a call's usage, without ever losing it. Every record goes down this chain until one step holds it:
//   1. private.gateway_settle_batch (usage row + debit + lease accounting, once per request id): one SQL call at
//      a time per instance, carrying every call that ended in the last SETTLE_LINGER_MS;
//   2. if the batch call fails with an error while the database answers: the record alone, through
//      private.gateway_settle, then private.enqueue_usage (the database outbox a pg_cron job applies);
//   3. if the database does not commit within SETTLE_DEADLINE_MS (down, frozen, reconnecting — the driver would
//      queue the query in this process's memory, lost if the instance stops): a Redis list (aie:usage_outbox),
//      moved into the database outbox once it answers again (drainRedisOutbox);
//   4. if even that fails: an error log line that carries the whole record, which `npm run usage:replay` applies.
// A record that reaches the database twice (a batch that committed after its deadline, and its Redis copy) is
// settled once: settlement and the outbox are idempotent per request id.
import { db } from "../db.ts";
import { Timeout, withTimeout } from "../deadline.ts";
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
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  /** Perplexity's search context size (its request fee). */
  search_context_size: string | null;
  status: "ok" | "upstream_error" | "cancelled" | "timeout";
  http_status: number | null;
  latency_ms: number;
  upstream_request_id: string | null;
  tokens_estimated: boolean;
  /** The lease the call was admitted under (lease.ts), and when: its price is the one in force then. */
  lease_id: string | null;
  admitted_at: string | null;
};

/** Where a record ended up, and (when settled) what it cost in platform tokens and the balance after. */
export type Recorded =
  | { outcome: "settled"; costTokens: number; balance: number }
  | { outcome: "outbox" | "redis" | "log" };

export const REDIS_OUTBOX_KEY = "aie:usage_outbox";
/** The message of the log line that keeps a record when nothing else could: what usage:replay looks for. */
export const KEPT_IN_LOG = "usage record not stored: kept in this log line for replay";

/** How long a settlement (or an outbox write) may take to commit before the record moves down the chain. */
export const SETTLE_DEADLINE_MS = 3_000;
const REDIS_DEADLINE_MS = 2_000;

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Errors that say the database is not answering (the record goes to Redis, not back to the database). */
function unreachable(e: unknown): boolean {
  if (e instanceof Timeout) return true;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" &&
    [
      "ECONNREFUSED",
      "ECONNRESET",
      "ETIMEDOUT",
      "CONNECT_TIMEOUT",
      "CONNECTION_CLOSED",
      "CONNECTION_ENDED",
      "CONNECTION_DESTROYED",
      "57P01",
      "57P02",
      "57P03",
    ].includes(code);
}

// Settlements are sent in batches: one SQL call (one transaction) at a time per instance, carrying every
// call that ended in the last SETTLE_LINGER_MS (up to BATCH_MAX; full batches go out at once), and the leases
// to give back after them. The round trip, the commit and the batch's own work are shared, which is most of a
// settlement's cost.
const BATCH_MAX = 100;
const SETTLE_LINGER_MS = 20;
type BatchResult = { outcome: "settled"; costTokens: number; balance: number } | { outcome: "outbox" };
type Pending = {
  record: UsageRecord;
  done: (result: BatchResult) => void;
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

type BatchRow = {
  request_id: string;
  error: string | null;
  cost_tokens: string | null;
  balance: string | null;
};

async function sendBatch() {
  const batch = pending.splice(0, BATCH_MAX);
  const closes = batch.length < BATCH_MAX ? closing.splice(0) : [];
  try {
    const rows = await withTimeout(
      db()<BatchRow[]>`
        select request_id, error, cost_tokens, balance from private.gateway_settle_batch(
          p_records => ${JSON.stringify(batch.map((p) => p.record))}::text::jsonb,
          p_close_leases => ${JSON.stringify(closes)}::text::jsonb)`,
      SETTLE_DEADLINE_MS,
      "usage settlement",
    );
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    for (const p of batch) {
      const row = byId.get(p.record.request_id);
      p.done(
        row && row.error === null && row.cost_tokens !== null
          ? { outcome: "settled", costTokens: Number(row.cost_tokens), balance: Number(row.balance) }
          : { outcome: "outbox" },
      );
    }
    lastBatchFailed = false;
  } catch (e) {
    lastBatchFailed = true;
    // Each record goes down the chain on its own (recordUsage); the leases are given back later (if never,
    // they expire with their holds).
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
 * a batch call failed (what it carried has gone down the chain).
 */
export async function flushSettlements(): Promise<void> {
  while (inFlight || pending.length || closing.length) {
    await (inFlight ?? sendNow());
    if (lastBatchFailed) return;
  }
}

/** Settles in the next batch; rejects when the batch call itself failed. */
function settleBatched(record: UsageRecord): Promise<BatchResult> {
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

/** Step 2: the record alone, then the database outbox; throws when the database cannot take it. */
async function settleAlone(record: UsageRecord, log: Logger): Promise<Recorded> {
  const json = JSON.stringify(record);
  try {
    const [row] = await withTimeout(
      db()<{ debited_tokens: string; balance: string }[]>`
        select u.debited_tokens, b.balance
          from private.gateway_settle(p_record => ${json}::text::jsonb) u
          join public.token_balances b on b.user_id = u.user_id`,
      SETTLE_DEADLINE_MS,
      "usage settlement",
    );
    return { outcome: "settled", costTokens: Number(row.debited_tokens), balance: Number(row.balance) };
  } catch (e) {
    if (unreachable(e)) throw e;
    log.warn("usage settlement failed; parking it in the outbox", {
      request_id: record.request_id,
      error: message(e),
    });
    await withTimeout(
      db()`select private.enqueue_usage(p_payload => ${json}::text::jsonb, p_error => ${message(e)})`,
      SETTLE_DEADLINE_MS,
      "usage outbox",
    );
    return { outcome: "outbox" };
  }
}

/** Steps 3 and 4: Redis, else the log line. */
async function keepOutsideTheDatabase(record: UsageRecord, log: Logger, why: unknown): Promise<Recorded> {
  const client = redis();
  if (client) {
    try {
      await withTimeout(
        client.rpush(REDIS_OUTBOX_KEY, JSON.stringify(record)),
        REDIS_DEADLINE_MS,
        "redis outbox",
      );
      redisOutboxMayHaveItems = true;
      log.warn("usage record parked in redis: the database did not take it", {
        request_id: record.request_id,
        error: message(why),
      });
      return { outcome: "redis" };
    } catch (e) {
      log.error("redis outbox unavailable", { request_id: record.request_id, error: message(e) });
    }
  }
  log.error(KEPT_IN_LOG, { usage_record: record, error: message(why) });
  return { outcome: "log" };
}

export async function recordUsage(record: UsageRecord, log: Logger): Promise<Recorded> {
  let failure: unknown;
  try {
    const result = await settleBatched(record);
    if (result.outcome === "outbox") {
      log.warn("usage settlement failed; parked in the outbox", { request_id: record.request_id });
    }
    if (redisOutboxMayHaveItems) void drainRedisOutbox(log);
    return result;
  } catch (e) {
    failure = e; // the batch call itself failed
  }
  if (!unreachable(failure)) {
    try {
      const result = await settleAlone(record, log);
      if (redisOutboxMayHaveItems) void drainRedisOutbox(log);
      return result;
    } catch (e) {
      failure = e;
    }
  }
  return await keepOutsideTheDatabase(record, log, failure);
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
          await withTimeout(
            db()`select private.enqueue_usage(p_payload => ${text}::text::jsonb, p_error => ${"parked in redis"})`,
            SETTLE_DEADLINE_MS,
            "usage outbox",
          );
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
