// Admission for one gateway instance: its lease book (admission/), with the store the gateway uses and leases
// whose holds outlive the calls they admit, and the shape of a call as the book sees it.
import { createLeaseBook, type LeaseBook } from "./admission/book.ts";
import type { CallShape } from "./admission/hold.ts";
import { DEFAULT_LEASE_SETTINGS } from "./admission/state.ts";
import { leaseStore } from "./admission/store.ts";
import type { GatewayOptions } from "./options.ts";
import type { Described, ProviderAdapter } from "./providers/adapter.ts";

/** The instance's lease book. */
export function leaseBookFor(adapter: ProviderAdapter, options: GatewayOptions): LeaseBook {
  // A lease's hold outlives the calls it admits; only an instance that died leaves it to the sweep.
  const holdSeconds = Math.ceil(options.totalTimeoutMs / 1000) + 120;
  return createLeaseBook(leaseStore(adapter, options, holdSeconds), {
    ...DEFAULT_LEASE_SETTINGS,
    ...options.leases,
    holdSeconds,
  });
}

/** What the call asks for, as admission weighs it. */
export function callShape(described: Described, inputEstimate: number): CallShape {
  return {
    model: described.model,
    inputEstimate,
    requestedOutput: described.requestedMaxOutput,
    choices: described.choices,
    inputUnbounded: described.inputUnbounded,
    searchContextSize: described.searchContextSize ?? null,
  };
}
