// Steps 3 and 4 of the settlement chain, when the database does not commit within SETTLE_DEADLINE_MS (down,
// frozen, reconnecting — the driver would queue the query in this process's memory, lost if the instance stops):
// a Redis list (aie:usage_outbox), moved into the database outbox once it answers again (drainRedisOutbox); if
// even that fails, an error log line that carries the whole record, which `npm run usage:replay` applies.
import { db } from "../../platform/db.ts";
import { withTimeout } from "../../platform/deadline.ts";
import type { Logger } from "../../platform/log.ts";
import { redis } from "../../platform/redis.ts";
import { errorMessage, type Recorded, SETTLE_DEADLINE_MS, type UsageRecord } from "./record.ts";

export const REDIS_OUTBOX_KEY = "aie:usage_outbox";
/** The message of the log line that keeps a record when nothing else could: what usage:replay looks for. */
export const KEPT_IN_LOG = "usage record not stored: kept in this log line for replay";

const REDIS_DEADLINE_MS = 2_000;

let redisOutboxMayHaveItems = true; // unknown after a cold start: check once
let draining = false;

/** Steps 3 and 4: Redis, else the log line. */
export async function keepOutsideTheDatabase(
  record: UsageRecord,
  log: Logger,
  why: unknown,
): Promise<Recorded> {
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
        error: errorMessage(why),
      });
      return { outcome: "redis" };
    } catch (e) {
      log.error("redis outbox unavailable", { request_id: record.request_id, error: errorMessage(e) });
    }
  }
  log.error(KEPT_IN_LOG, { usage_record: record, error: errorMessage(why) });
  return { outcome: "log" };
}

/** After the database took a record: moves what Redis may still hold into it, in the background. */
export function drainIfParked(log: Logger): void {
  if (redisOutboxMayHaveItems) void drainRedisOutbox(log);
}

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
    log.warn("could not drain the redis usage outbox", { error: errorMessage(e) });
  } finally {
    draining = false;
  }
  return moved;
}
