// What a lease book remembers, per function instance: its settings, its store, and per user the plan and prices
// last read (plan-cache.ts), the limiter headroom taken (headroom.ts) and the current lease. The map of users is
// a cache, not a record: a user with nothing running and nothing to give back may be forgotten.
import { EMPTY_HEADROOM, type Headroom } from "./headroom.ts";
import type { PlanInfo, PriceInfo } from "./hold.ts";
import type { LeaseStore } from "./store.ts";

export type LeaseSettings = {
  planTtlMs: number;
  idleMs: number;
  growWindowMs: number;
  maxCalls: number;
  /** Set on every hold (the call timeout + 2 min): only an instance that died leaves a lease to the sweep. */
  holdSeconds: number;
};

export const DEFAULT_LEASE_SETTINGS: Omit<LeaseSettings, "holdSeconds"> = {
  planTtlMs: 1_000,
  idleMs: 1_000,
  growWindowMs: 1_000,
  maxCalls: 512,
};

/** One lease: tokens reserved in the database under its id, and what this instance has admitted against them. */
export class Lease {
  readonly id: string;
  readonly userId: string;
  /** Whether any top-up granted tokens (the database then holds a row to give back). */
  granted = false;
  /** Tokens granted and not yet used: the holds of calls in flight included. */
  budget = 0;
  /** The holds of calls in flight. */
  reserved = 0;
  /** Calls admitted and not ended, and admissions waiting on this lease. */
  active = 0;
  /** Calls' worth the last top-up asked for (1: this lease is given back as soon as its calls end). */
  calls = 1;
  renewing: Promise<void> | null = null;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  closed = false;

  constructor(instance: string, userId: string, seq: number) {
    this.id = `lease:${instance}:${userId}:${seq}`;
    this.userId = userId;
  }
}

export type UserState = {
  plan: PlanInfo | null;
  planAt: number;
  /** Prices by model and search context size (`model|size`). */
  prices: Map<string, PriceInfo>;
  refreshing: boolean;
  lease: Lease;
  headroom: Headroom;
  lastRenewalAt: number;
  calls: number;
};

/** One instance's lease book: every user it admits for. */
export type Book = {
  readonly store: LeaseStore;
  readonly settings: LeaseSettings;
  /** Part of every lease id: ids are never reused across instances. */
  readonly instance: string;
  readonly users: Map<string, UserState>;
  /** The last lease number: lease ids are never reused in an instance. */
  leaseSeq: number;
  shuttingDown: boolean;
};

const MAX_USERS = 10_000;

export function newBook(store: LeaseStore, settings: LeaseSettings): Book {
  return {
    store,
    settings,
    instance: crypto.randomUUID(),
    users: new Map(),
    leaseSeq: 0,
    shuttingDown: false,
  };
}

/** A new lease of the user's, with the next id. */
export const newLease = (book: Book, userId: string) => new Lease(book.instance, userId, ++book.leaseSeq);

/** The user's state, made on first sight (forgetting an idle user when the map is full). */
export function userState(book: Book, userId: string): UserState {
  let u = book.users.get(userId);
  if (!u) {
    if (book.users.size >= MAX_USERS) forgetIdleUser(book);
    u = {
      plan: null,
      planAt: 0,
      prices: new Map(),
      refreshing: false,
      lease: newLease(book, userId),
      headroom: { ...EMPTY_HEADROOM },
      lastRenewalAt: 0,
      calls: 1,
    };
    book.users.set(userId, u);
  }
  return u;
}

/** Forgets one user with nothing running and no lease to give back. */
function forgetIdleUser(book: Book) {
  for (const [id, u] of book.users) {
    if (u.lease.active === 0 && !u.lease.renewing && (!u.lease.granted || u.lease.closed)) {
      book.users.delete(id);
      return;
    }
  }
}
