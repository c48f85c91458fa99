// Writing a call's usage, without ever losing it. Every record goes down this chain until one step holds it:
//   1. private.gateway_batch_settle (usage row + debit + lease accounting, once per request id): batch.ts;
//   2. if the batch call fails with an error while the database answers: the record alone, then the database
//      outbox: alone.ts;
//   3. if the database does not commit in time: a Redis list, drained into the database outbox later;
//   4. if even that fails: an error log line that carries the whole record, for `npm run usage:replay`
//      (3 and 4: redis-outbox.ts).
// A record that reaches the database twice (a batch that committed after its deadline, and its Redis copy) is
// settled once: settlement and the outbox are idempotent per request id.
import type { Logger } from "../../platform/log.ts";
import { settleAlone } from "./alone.ts";
import { settleBatched } from "./batch.ts";
import type { Recorded, UsageRecord } from "./record.ts";
import { drainIfParked, keepOutsideTheDatabase } from "./redis-outbox.ts";
import { isUnreachable } from "./unreachable.ts";

export async function recordUsage(record: UsageRecord, log: Logger): Promise<Recorded> {
  let failure: unknown;
  try {
    const result = await settleBatched(record);
    if (result.outcome === "outbox") {
      log.warn("usage settlement failed; parked in the outbox", { request_id: record.request_id });
    }
    drainIfParked(log);
    return result;
  } catch (e) {
    failure = e; // the batch call itself failed
  }
  if (!isUnreachable(failure)) {
    try {
      const result = await settleAlone(record, log);
      drainIfParked(log);
      return result;
    } catch (e) {
      failure = e;
    }
  }
  return await keepOutsideTheDatabase(record, log, failure);
}
