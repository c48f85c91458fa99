// Step 2 of the settlement chain, when a batch call failed while the database answers: the record alone, through
// private.gateway_settle, then, if that fails too, private.enqueue_usage (the database outbox a pg_cron job
// applies). Throws when the database cannot take it at all (the record then leaves the database: redis-outbox.ts).
import type { Database } from "../../database.types.ts";
import { db } from "../../platform/db.ts";
import { withTimeout } from "../../platform/deadline.ts";
import type { Logger } from "../../platform/log.ts";
import { errorMessage, type Recorded, SETTLE_DEADLINE_MS, type UsageRecord } from "./record.ts";
import { isUnreachable } from "./unreachable.ts";

type Tables = Database["public"]["Tables"];
/** What the settlement debited and the balance after; bigints, which postgres.js returns as strings. */
type Settled = {
  debited_tokens: `${Tables["token_usage"]["Row"]["debited_tokens"]}`;
  balance: `${Tables["token_balances"]["Row"]["balance"]}`;
};

export async function settleAlone(record: UsageRecord, log: Logger): Promise<Recorded> {
  const json = JSON.stringify(record);
  try {
    const [row] = await withTimeout(
      db()<Settled[]>`
        select u.debited_tokens, b.balance
          from private.gateway_settle(p_record => ${json}::text::jsonb) u
          join public.token_balances b on b.user_id = u.user_id`,
      SETTLE_DEADLINE_MS,
      "usage settlement",
    );
    return { outcome: "settled", costTokens: Number(row.debited_tokens), balance: Number(row.balance) };
  } catch (e) {
    if (isUnreachable(e)) throw e;
    log.warn("usage settlement failed; parking it in the outbox", {
      request_id: record.request_id,
      error: errorMessage(e),
    });
    await withTimeout(
      db()`select private.enqueue_usage(p_payload => ${json}::text::jsonb, p_error => ${errorMessage(e)})`,
      SETTLE_DEADLINE_MS,
      "usage outbox",
    );
    return { outcome: "outbox" };
  }
}
