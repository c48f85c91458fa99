// Giving leases back: a lease goes back (store.close, queued with the settlements) once nothing runs on it —
// at once if it held one call or the instance is shutting down, else after settings.idleMs without calls — and
// the user's next call opens a new one.
import { type Book, type Lease, newLease, type UserState } from "./state.ts";

/** Gives a lease back if nothing runs on it; the user's next call opens a new one. */
export function giveBack(book: Book, u: UserState, lease: Lease) {
  if (lease.active > 0 || lease.renewing || lease.closed) return;
  clearTimeout(lease.idleTimer);
  lease.closed = true;
  if (u.lease === lease) u.lease = newLease(book, lease.userId);
  if (lease.granted) book.store.close(lease.id, lease.userId);
}

/** Called when a lease's activity drops: gives it back once nothing runs on it any more. */
export function release(book: Book, u: UserState, lease: Lease) {
  lease.active--;
  if (lease.active > 0 || lease.renewing || lease.closed) return;
  clearTimeout(lease.idleTimer);
  if (lease.calls <= 1 || book.shuttingDown) giveBack(book, u, lease);
  else lease.idleTimer = setTimeout(() => giveBack(book, u, lease), book.settings.idleMs);
}
