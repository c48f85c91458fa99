// Step 1 of the settlement chain: batches. One SQL call (one transaction, private.gateway_batch_settle) at a time
// per instance, carrying every call that ended in the last SETTLE_LINGER_MS (up to BATCH_MAX; full batches go out
// at once), and the leases to give back after them (private.gateway_release). The round trip, the commit and the
// batch's own work are shared, which is most of a settlement's cost.
import type { Database } from "../../database.types.ts";
import { db } from "../../platform/db.ts";
import { withTimeout } from "../../platform/deadline.ts";
import { SETTLE_DEADLINE_MS, type UsageRecord } from "./record.ts";

const BATCH_MAX = 100;
const SETTLE_LINGER_MS = 20;
/** After a batch call failed (database unreachable?), the next one waits longer. */
const RETRY_LINGER_MS = 1_000;

export type BatchResult = { outcome: "settled"; costTokens: number; balance: number } | { outcome: "outbox" };
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
let lastBatchFailed = false;

type SettleBatchRow = Database["private"]["Functions"]["gateway_batch_settle"]["Returns"][number];
/**
 * A row of private.gateway_batch_settle: `error` is null and `cost_tokens`/`balance` set (bigints, which
 * postgres.js returns as strings) for a record that settled; `error` set and the others null for one that did not.
 */
type BatchRow =
  & Pick<SettleBatchRow, "request_id">
  & { error: SettleBatchRow["error"] | null }
  & { [K in "cost_tokens" | "balance"]: `${SettleBatchRow[K]}` | null };

async function sendBatch() {
  const batch = pending.splice(0, BATCH_MAX);
  const closes = batch.length < BATCH_MAX ? closing.splice(0) : [];
  try {
    const rows = await withTimeout(
      db()<BatchRow[]>`
        select request_id, error, cost_tokens, balance from private.gateway_batch_settle(
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
    // Each record goes down the chain on its own (record-usage.ts); the leases are given back later (if never,
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

/**
 * Settles in the next batch; rejects when the batch call itself failed. An agent run's call (run_id set) goes
 * without the linger: the run's next step waits for what it cost.
 */
export function settleBatched(record: UsageRecord): Promise<BatchResult> {
  return new Promise((done, fail) => {
    pending.push({ record, done, fail });
    if (record.run_id) void sendNow();
    else scheduleFlush();
  });
}

/** Gives a lease back after the settlements already queued (the lease book calls this when it is done with one). */
export function closeLease(leaseId: string, userId: string): void {
  closing.push({ lease_id: leaseId, user_id: userId });
  scheduleFlush();
}
