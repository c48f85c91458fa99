// Checkout idempotency: the client's Idempotency-Key header (validated, scoped by user and kind), else a key
// derived from the user, the request and a 10-minute bucket, so a double click or a retry answers with the same
// Checkout Session.
import { HttpError } from "../http/errors.ts";
import type { BillingUser } from "./customer.ts";
import { sha256Hex } from "../platform/hash.ts";

export type CheckoutKind = "subscription" | "token_pack";

/** How long an identical checkout request without an Idempotency-Key returns the same session. */
export const CHECKOUT_DEDUPE_WINDOW_MS = 10 * 60 * 1000;

const CLIENT_IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{8,128}$/;

/**
 * The client's Idempotency-Key header, or null when absent. 400 unless it is 8-128 characters of
 * `A-Z a-z 0-9 . _ : -` (a UUID is a good choice).
 */
export function clientIdempotencyKey(req: Request): string | null {
  const value = req.headers.get("idempotency-key");
  if (value === null) return null;
  if (!CLIENT_IDEMPOTENCY_KEY.test(value)) {
    throw new HttpError(
      "invalid_request",
      "Idempotency-Key header: must be 8-128 characters of letters, digits, '.', '_', ':' or '-'",
    );
  }
  return value;
}

/**
 * The Stripe idempotency key of a checkout. With the client's key: `<kind>:<user>:key:<client key>`, so a
 * client's keys never collide with another user's or another kind's (and the same key with a different
 * body is a 409). Without: `<kind>:<user>:<parts…>:<10-minute bucket>:<hash of the params>`, so the same
 * request within the bucket (a double click, a retry) replays the same session, and a request with other
 * parameters (another plan, a changed price id) is a new one instead of an idempotency error.
 */
export async function checkoutIdempotencyKey(
  kind: CheckoutKind,
  user: BillingUser,
  clientKey: string | null,
  parts: readonly string[],
  params: unknown,
  now = Date.now(),
): Promise<string> {
  if (clientKey) return `${kind}:${user.id}:key:${clientKey}`;
  const bucket = Math.floor(now / CHECKOUT_DEDUPE_WINDOW_MS);
  const hash = (await sha256Hex(JSON.stringify(params))).slice(0, 16);
  return [kind, user.id, ...parts, bucket, hash].join(":");
}
