// One function instance's gateway: the provider it proxies, its lease book, the calls in flight, and its shutdown.
// Shutting down (the edge runtime's beforeunload; the local worker dispatches it on SIGTERM and allows 3 s): no
// new call is admitted, every call in flight is cut off now and settled with what it delivered, leases go back,
// and the settlements are flushed, all before the process exits. Waiting for streams to finish could outlast the
// platform's grace; cutting them at once never loses their usage.
import { HttpError } from "../http/errors.ts";
import { background } from "../platform/background.ts";
import { withTimeout } from "../platform/deadline.ts";
import type { LeaseBook } from "./admission/book.ts";
import { leaseBookFor } from "./admit.ts";
import type { GatewayOptions } from "./options.ts";
import type { ProviderAdapter } from "./providers/adapter.ts";
import { flushSettlements } from "./settlement/batch.ts";
import type { InFlight } from "./settle.ts";

export type GatewayInstance = {
  readonly adapter: ProviderAdapter;
  readonly options: GatewayOptions;
  readonly leases: LeaseBook;
  readonly inFlight: Set<InFlight>;
  shuttingDown: boolean;
};

/** The answer to a call that arrives, or is cut off, while the instance shuts down. */
export const shuttingDown = () =>
  new HttpError("service_unavailable", "This instance is shutting down; retry");

/** The instance's gateway, ready to admit calls, and set to shut down with the instance. */
export function startInstance(adapter: ProviderAdapter, options: GatewayOptions): GatewayInstance {
  const instance: GatewayInstance = {
    adapter,
    options,
    leases: leaseBookFor(adapter, options),
    inFlight: new Set(),
    shuttingDown: false,
  };
  globalThis.addEventListener("beforeunload", () => shutDown(instance));
  return instance;
}

function shutDown(instance: GatewayInstance) {
  instance.shuttingDown = true;
  const calls = [...instance.inFlight];
  for (const c of calls) c.abort();
  background((async () => {
    await withTimeout(Promise.allSettled(calls.map((c) => c.settled)), 1_000, "calls ending").catch(
      () => {},
    );
    instance.leases.closeAll();
    await flushSettlements();
  })());
}
