// Settling a call once it is over: its ticket ends (its hold comes off the lease), its usage record goes down the
// settlement chain after the answer is handed back (settlement/), and the lease learns what the call really cost.
// Until then the call is in flight: at shutdown each one is cut off and settled with what it delivered.
import type { Logger } from "../platform/log.ts";
import { background } from "../platform/background.ts";
import type { Ticket } from "./admission/book.ts";
import type { UpstreamCall } from "./forward.ts";
import type { Recorded, UsageRecord } from "./settlement/record.ts";
import { recordUsage } from "./settlement/record-usage.ts";

/** A call in flight in this instance: its upstream can be aborted, and `settled` resolves once it is settled. */
export type InFlight = { abort(): void; settled: Promise<void> };

/** Settles the call with its usage record; called once, when the call is over. */
export type Settle = (record: UsageRecord) => void;

/** Tracks the call among those in flight, and returns how it is settled. */
export function settlementOf(
  inFlight: Set<InFlight>,
  upstream: UpstreamCall,
  ticket: Ticket,
  log: Logger,
  onSettled?: (recorded: Recorded) => void,
): Settle {
  let markSettled!: () => void;
  const tracked: InFlight = {
    abort: () => upstream.controller.abort(new DOMException("shutdown", "AbortError")),
    settled: new Promise<void>((resolve) => markSettled = resolve),
  };
  inFlight.add(tracked);
  return (record) => {
    inFlight.delete(tracked);
    ticket.end();
    background(
      recordUsage(record, log).then((r) => {
        if (r.outcome === "settled") ticket.settled(r.costTokens, r.balance);
        onSettled?.(r);
      }),
    );
    markSettled();
  };
}
