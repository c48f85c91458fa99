// Admission from memory: budget leases.
//
// A function instance reserves tokens for several calls of one user at once (private.gateway_lease: an
// ordinary hold, under the lease's id, so no other instance can spend them and a balance never goes below
// zero), takes the limiter headroom for those calls from Upstash (or, without Upstash, in the same SQL call),
// and then admits that user's next calls here, without a round trip, until the lease runs short. Each call
// settles on its own (settlement/) and takes what it used off the lease.
//
//   hold.ts        what a call may cost (its hold, its raw tokens, its output cap)
//   plan-cache.ts  the plan and prices admitted with, at most settings.planTtlMs old
//   headroom.ts    the limiter headroom of the current window, and the X-RateLimit-* headers
//   renewal.ts     renewing a lease (how big it is), and refreshing it ahead of need
//   release.ts     giving a lease back
//   store.ts       private.gateway_lease and the Upstash takes
//   book.ts        this: admitting a call, from the lease or after a renewal, and the shutdown
//
// What may be stale, and for how long: the plan (limits, models) and the prices of the models called are re-read
// at least every planTtlMs (1 s; in the background after half of it), so a user deleted or moved to a smaller
// plan is served at most that long from an instance's memory (a background read that finds the user gone
// forgets them at once). Limiter headroom belongs to the current fixed window and ends with it.
// A lease is given back (gateway_release, in the settlement batches) when its last call ends if it held one
// call, else after idleMs without calls, and when the instance shuts down; one left by an instance that died
// expires with its hold (the call timeout + 2 min) and the hold sweep releases it.
import { currentHeadroom, limitHeaders } from "./headroom.ts";
import { type CallShape, callTokens, holdTokens, maxOutputOf, type PlanInfo } from "./hold.ts";
import { freshPlan, freshPrice } from "./plan-cache.ts";
import { giveBack, release } from "./release.ts";
import { refreshAhead, renew, takeHeadroomAhead } from "./renewal.ts";
import { type Book, type Lease, type LeaseSettings, newBook, type UserState, userState } from "./state.ts";
import type { LeaseStore } from "./store.ts";

/** A call admitted under a lease. `end` is called once, with the tokens it used, when the call is over. */
export type Ticket = {
  leaseId: string;
  admittedAt: Date;
  /** The call's max output tokens, capped by the plan. */
  maxOutput: number;
  /** The most the call can cost, in platform tokens (what it holds of the lease). */
  hold: number;
  limitHeaders: Record<string, string>;
  /** Called once when the call is over: its hold, the most it can have cost, comes off the lease. */
  end(): void;
  /**
   * Called when the settlement says what the call did cost (platform tokens) and the user's balance after it: the
   * lease gets back what the hold did not need, or gives up an overrun; a balance at or below zero ends
   * admission from memory (the next call renews, and is refused).
   */
  settled(costTokens: number, balance: number): void;
};

/** The call's ticket, its hold and headroom taken from the lease; null when the lease cannot cover it. */
function admitFromLease(
  book: Book,
  u: UserState,
  lease: Lease,
  call: CallShape,
  now: number,
  callsAhead: number,
): Ticket | null {
  const plan = freshPlan(u, now, book.settings.planTtlMs);
  const price = plan ? freshPrice(u, call, now, book.settings.planTtlMs) : null;
  if (!plan || !price) return null;
  const hold = holdTokens(plan, price, call);
  const h = currentHeadroom(u, now);
  const rateHold = Math.min(callTokens(plan, call), plan.tpm);
  if (h.requests < 1 || h.tokens < rateHold || lease.budget - lease.reserved < hold) return null;
  h.requests -= 1;
  h.tokens -= rateHold;
  lease.reserved += hold;
  clearTimeout(lease.idleTimer);
  refreshAhead(book, u, lease, call, hold);
  if (callsAhead > 1) takeHeadroomAhead(book, u, lease, plan, call, callsAhead - 1);
  return ticket(book, u, lease, plan, call, hold, now);
}

/** The ticket of an admitted call: it keeps the lease active until the call ends. */
function ticket(
  book: Book,
  u: UserState,
  lease: Lease,
  plan: PlanInfo,
  call: CallShape,
  hold: number,
  now: number,
): Ticket {
  let ended = false;
  return {
    leaseId: lease.id,
    admittedAt: new Date(now),
    maxOutput: maxOutputOf(plan, call),
    hold,
    limitHeaders: limitHeaders(u, plan),
    end() {
      if (ended) return;
      ended = true;
      lease.reserved -= hold;
      lease.budget -= hold;
      release(book, u, lease);
    },
    settled(cost: number, balance: number) {
      if (lease.closed) return;
      // As the database's lease row: what was leased minus what settled calls cost, never below zero.
      lease.budget = Math.max(0, lease.budget + hold - Math.max(0, cost));
      if (balance <= 0) lease.budget = 0;
    },
  };
}

/**
 * Admits a call of `userId`, from the lease if it can, else after a renewal; throws the refusal. `callsAhead`: the
 * calls (this one included) the caller knows it is about to make one after another (an agent run's remaining
 * steps); a renewal leases at least that many calls' worth, within the usual bounds (renewal.ts).
 */
async function admit(book: Book, userId: string, call: CallShape, callsAhead: number): Promise<Ticket> {
  const u = userState(book, userId);
  // The lease this admission counts as active on while it waits (so it is not given back meanwhile).
  let waiting: Lease | null = null;
  try {
    for (;;) {
      const lease = u.lease;
      if (waiting !== lease) {
        if (waiting) release(book, u, waiting);
        lease.active++;
        waiting = lease;
      }
      const admitted = admitFromLease(book, u, lease, call, Date.now(), callsAhead);
      if (admitted) {
        waiting = null; // the ticket keeps the lease active until the call ends
        return admitted;
      }
      if (lease.renewing) await lease.renewing.catch(() => {});
      else await renew(book, u, lease, call, callsAhead);
    }
  } finally {
    if (waiting) release(book, u, waiting);
  }
}

/**
 * The instance is shutting down: leases with nothing running go back now, the others as soon as their last call
 * ends.
 */
function closeAll(book: Book) {
  book.shuttingDown = true;
  for (const u of book.users.values()) giveBack(book, u, u.lease);
}

export function createLeaseBook(store: LeaseStore, settings: LeaseSettings) {
  const book = newBook(store, settings);
  return {
    admit: (userId: string, call: CallShape, callsAhead = 1): Promise<Ticket> =>
      admit(book, userId, call, callsAhead),
    closeAll: () => closeAll(book),
  };
}

export type LeaseBook = ReturnType<typeof createLeaseBook>;
